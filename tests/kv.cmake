# The paged KV cache: the block pool and run states sharing one (engine/kvcache.h).
t2_add_c_test(test_kvpool unit)
# Bad input for the workers' KV pool: plans that cannot fit, a pool of one context under 4 long
# requests (they wait in turn, all answer), a prompt longer than the context.
t2_add_script_test(kv_deploy integration bash ${CMAKE_CURRENT_SOURCE_DIR}/kv_deploy.sh)
set_tests_properties(kv_deploy PROPERTIES TIMEOUT 200 RUN_SERIAL ON)
# Prefix reuse in a worker group: a shared system prompt reused per mixture (never across
# mixtures), answers byte-identical to worker.prefix_cache = false.
t2_add_script_test(prefix_deploy integration bash ${CMAKE_CURRENT_SOURCE_DIR}/prefix_deploy.sh)
set_tests_properties(prefix_deploy PROPERTIES TIMEOUT 200 RUN_SERIAL ON)
