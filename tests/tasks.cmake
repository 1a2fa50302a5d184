# Task suite, scorers, JSON parser and sandbox (shared/tasks*.c, shared/json.c, shared/sandbox.c).
# test_tasks: generators, splits, scorers, JSON, sandbox, the `t2 tasks` CLI (no assets needed).
# test_tasks_real: the loaders and scorers on the real data sets (skips, 77, without assets).
t2_add_c_test(test_tasks unit)
add_dependencies(test_tasks t2-cli)
set_tests_properties(test_tasks PROPERTIES TIMEOUT 120)
add_test(NAME test_tasks_real COMMAND test_tasks real)
set_tests_properties(test_tasks_real PROPERTIES LABELS unit SKIP_RETURN_CODE 77 TIMEOUT 120
  ENVIRONMENT "T2_ASSETS=${T2_ASSETS};T2_BIN=${CMAKE_BINARY_DIR}/bin")
