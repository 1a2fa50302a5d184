# shared/base: RNGs and hashes against published vectors, names, backoff, flags, buffers,
# per-thread scratch buffers.
t2_add_c_test(test_base unit)
