# Wire-message validation (proto/t2_msg.c): tasks, prompts, conversations.
t2_add_c_test(test_msg unit)
if(TARGET test_msg)
  target_link_libraries(test_msg PRIVATE t2proto)
endif()
