# Memory-bandwidth and matrix-vector / sgemm benchmarks (run by hand; see bench/README.md).
add_executable(t2-bench-membw ${CMAKE_CURRENT_LIST_DIR}/membw.c)
target_link_libraries(t2-bench-membw PRIVATE t2)
add_executable(t2-bench-matvec ${CMAKE_CURRENT_LIST_DIR}/matvec.c)
target_link_libraries(t2-bench-matvec PRIVATE t2)
