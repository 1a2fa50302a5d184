# The worker group's pieces without MPI processes (workers/, linked through t2wk):
# test_workers: the layer split by bytes per token against a brute force over every split, and
# the pipeline's OPEN message: pack -> unpack round trip, truncated, oversized and inconsistent
# bodies refused with a message.
t2_add_c_test(test_workers unit)
target_link_libraries(test_workers PRIVATE t2wk)
# test_alloc: no allocation per token after warm-up, counted by a replaced malloc
# (tests/t2_alloc_count.h) over 200 decode steps: t2_forward + sampling, t2_forward_step_multi
# with 20 sequences and SVF adaptations, and a worker rank's wk_stage_decode. Skips (77) under
# AddressSanitizer.
t2_add_c_test(test_alloc unit)
target_link_libraries(test_alloc PRIVATE t2wk PkgConfig::LAPACKE)
