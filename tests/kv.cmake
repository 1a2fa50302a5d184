# The paged KV cache: the block pool and run states sharing one (engine/kvcache.h).
t2_add_c_test(test_kvpool unit)
