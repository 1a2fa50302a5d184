# Kernels and thread pool (shared/kernels*.c, shared/pool.c, shared/membw.c).
t2_add_c_test(test_kernels unit)
