add_executable(t2-bench-pass1 ${CMAKE_CURRENT_SOURCE_DIR}/pass1.c)
target_link_libraries(t2-bench-pass1 PRIVATE t2bench)
add_executable(t2-bench-genbatch ${CMAKE_CURRENT_SOURCE_DIR}/genbatch.c)
target_link_libraries(t2-bench-genbatch PRIVATE t2bench)
