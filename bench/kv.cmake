# t2-bench-kv: 4,096-token prompts and generation at depth with each KV cache type (bench/kv.c).
add_executable(t2-bench-kv ${CMAKE_CURRENT_SOURCE_DIR}/kv.c)
target_link_libraries(t2-bench-kv PRIVATE t2)
