# Training: one step full-weight vs SVF-only at 1 and 2 threads (t2-bench-train), and
# data-parallel tokens/s at 1 and 2 MPI ranks (train_mpi.sh, runs `t2 train`).
add_executable(t2-bench-train ${CMAKE_CURRENT_LIST_DIR}/train.c)
target_link_libraries(t2-bench-train PRIVATE t2 PkgConfig::LAPACKE)
target_include_directories(t2-bench-train PRIVATE ${CMAKE_SOURCE_DIR}/tests)
