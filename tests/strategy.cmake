# The Transformer² strategies (cli/strategy.c, cli/cmd_eval_tasks.c --strategy, cli/cmd_adapt.c)
# and the evaluation helper they share (shared/task_eval.c), on the bundled models/t2-base.gguf
# with random experts (skipped, 77, without it).
# test_task_eval: answer log-likelihoods vs. a token-by-token reference, per-item adaptations in
# one batch == one call per adaptation, pass 1 labels, the profile's per-matrix α layout.
# strategy_cli: t2 eval with every strategy (confusion matrix, CSV), t2 adapt per expert and per
# matrix (loadable profile, same shots accuracy through t2 eval), bad invocations.
# strategy_mpi: t2 adapt over 2 ranks writes the same profile bytes as over 1.
t2_add_c_test(test_task_eval unit ${CMAKE_SOURCE_DIR}/models/t2-base.gguf)
target_link_libraries(test_task_eval PRIVATE PkgConfig::LAPACKE)
set_tests_properties(test_task_eval PROPERTIES TIMEOUT 120)
t2_add_script_test(strategy_cli unit bash ${CMAKE_CURRENT_SOURCE_DIR}/strategy.sh)
set_tests_properties(strategy_cli PROPERTIES TIMEOUT 300)
t2_add_script_test(strategy_mpi mpi bash ${CMAKE_CURRENT_SOURCE_DIR}/strategy_mpi.sh)
set_tests_properties(strategy_mpi PROPERTIES TIMEOUT 300)

# The same commands on a real data set with a real model: GSM8K and stories260K (needs assets).
t2_add_script_test(real_smoke integration bash ${CMAKE_CURRENT_SOURCE_DIR}/real_smoke.sh)
