# Task suite, scorers, JSON on jansson and sandbox (shared/tasks, shared/base/json.c, sandbox).
# test_tasks: generators, splits, scorers, JSON, sandbox, the `t2 tasks` CLI (no assets needed).
# test_tasks_real: the loaders and scorers on the real data sets (skips, 77, without assets).
# Groups of test_tasks with a precondition are entries of their own, so that each one reports
# SKIP (77) when its precondition is missing: sandbox (Python), cli (bin/t2), real (assets),
# real_code (assets and Python).
t2_add_c_test(test_tasks unit)
add_dependencies(test_tasks t2-cli)
set_tests_properties(test_tasks PROPERTIES TIMEOUT 120)
foreach(group sandbox cli real real-code)
  string(REPLACE "-" "_" tname "test_tasks_${group}")
  add_test(NAME ${tname} COMMAND test_tasks ${group})
  set_tests_properties(${tname} PROPERTIES LABELS unit SKIP_RETURN_CODE 77 TIMEOUT 120
    ENVIRONMENT "T2_ASSETS=${T2_ASSETS};T2_BIN=${CMAKE_BINARY_DIR}/bin")
endforeach()
# test_label_score: pass 1 by scoring (shared/tasks/label_score.c): the labels' prefix and tails
# against llama2.c vocabularies (skips without the assets), the walk over shared tokens.
t2_add_c_test(test_label_score unit)
