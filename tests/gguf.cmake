# GGUF reader/writer (shared/gguf.c).
t2_add_c_test(test_gguf unit)
