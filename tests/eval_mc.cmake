# `t2 eval --score loglik` (shared/tasks/task_mc.c, cli/cmd_eval_mc.c): each choice's log-likelihood
# against the float64 PyTorch reference tests/ref_llama.py (skips, 77, without torch); with
# ../shared/assets also ARC-Easy on stories260K.
t2_add_script_test(mc_loglik_parity parity /usr/bin/python3
  ${CMAKE_CURRENT_SOURCE_DIR}/mc_loglik_parity.py)
set_tests_properties(mc_loglik_parity PROPERTIES TIMEOUT 300)
# bench/paired.py: McNemar's exact test and Wilson intervals against hand-computed values, the
# per-item CSV join and its errors (standard library only); bench/controls_table.py's paired rows
# on a made-up controls folder.
t2_add_script_test(paired_stats unit /usr/bin/python3 ${CMAKE_CURRENT_SOURCE_DIR}/paired_stats.py)
# Task suite v2 (shared/tasks/tasks_v2.c): train / validation / test disjoint in templates,
# contents and names; the v1 families' documents unchanged (a hash taken before v2 existed).
t2_add_script_test(tasks_v2 unit /usr/bin/python3 ${CMAKE_CURRENT_SOURCE_DIR}/tasks_v2.py)
set_tests_properties(tasks_v2 PROPERTIES TIMEOUT 120)
# bench/paper.sh end to end at tiny size on a random qwen2 model with Qwen's vocabulary, and its
# --dry-run plan of a 1 B shape (skips, 77, without ../shared/assets).
t2_add_script_test(paper_tiny integration bash ${CMAKE_CURRENT_SOURCE_DIR}/paper_tiny.sh)
set_tests_properties(paper_tiny PROPERTIES TIMEOUT 600)
# The controls (bench/controls.sh): `t2 expert init --shuffle` (random expert of the same
# spread) and `t2 eval --prompts cued|shots:K` on the bundled model (skips, 77, without it).
t2_add_script_test(eval_controls unit bash ${CMAKE_CURRENT_SOURCE_DIR}/eval_controls.sh)
set_tests_properties(eval_controls PROPERTIES TIMEOUT 120)
