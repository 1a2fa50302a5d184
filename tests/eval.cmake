# Batched generation (shared/generate.c) and `t2 eval` (cli/cmd_eval_tasks.c).
# test_generate: batched == alone (t2 run semantics) over batch sizes, threads, adaptations;
# every stop condition. eval_cli: t2 eval on a tiny byte-level model (table, CSV, errors) and
# on stories260K with tok512 (gsm8k; skipped, 77, without ../shared/assets).
t2_add_c_test(test_generate unit)
target_link_libraries(test_generate PRIVATE PkgConfig::LAPACKE)
set_tests_properties(test_generate PROPERTIES TIMEOUT 120)
t2_add_script_test(eval_cli unit bash ${CMAKE_CURRENT_SOURCE_DIR}/eval.sh)
set_tests_properties(eval_cli PROPERTIES TIMEOUT 300)
