# `t2 eval --score loglik` (shared/tasks/task_mc.c, cli/cmd_eval_mc.c): each choice's log-likelihood
# against the float64 PyTorch reference tests/ref_llama.py (skips, 77, without torch); with
# ../shared/assets also ARC-Easy on stories260K.
t2_add_script_test(mc_loglik_parity parity /usr/bin/python3
  ${CMAKE_CURRENT_SOURCE_DIR}/mc_loglik_parity.py)
set_tests_properties(mc_loglik_parity PROPERTIES TIMEOUT 300)
# bench/paired.py: McNemar's exact test and Wilson intervals against hand-computed values, the
# per-item CSV join and its errors (standard library only).
t2_add_script_test(paired_stats unit /usr/bin/python3 ${CMAKE_CURRENT_SOURCE_DIR}/paired_stats.py)
