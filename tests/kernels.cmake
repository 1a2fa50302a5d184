# Kernels and thread pool (shared/kernels*.c, shared/pool.c, shared/membw.c).
t2_add_c_test(test_kernels unit)
# llama.cpp's quantized formats against llama.cpp's own files (shared/engine/quants*.c).
t2_add_c_test(test_quants parity)
# The float matrix-matrix kernels (shared/engine/gemm*.c) per type and level, odd shapes, threads.
t2_add_c_test(test_gemm unit)
