add_executable(t2-bench-decode ${CMAKE_CURRENT_SOURCE_DIR}/decode.c)
target_link_libraries(t2-bench-decode PRIVATE t2)
