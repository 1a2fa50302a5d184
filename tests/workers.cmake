# The worker group's pieces without MPI processes (workers/, linked through t2wk):
# test_workers: the layer split by bytes per token against a brute force over every split, and
# the pipeline's OPEN message: pack -> unpack round trip, truncated, oversized and inconsistent
# bodies refused with a message.
t2_add_c_test(test_workers unit)
target_link_libraries(test_workers PRIVATE t2wk)
