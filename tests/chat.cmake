# Chat templates: the interpreter's unit and bad-template tests, and parity with Hugging Face's
# rendering (Debian's python3-jinja2 through ../shared/tools/chat-template-ref; skips without).
t2_add_c_test(test_chat unit)
t2_add_script_test(chat_parity parity /usr/bin/python3 ${CMAKE_CURRENT_SOURCE_DIR}/chat_parity.py)
set_tests_properties(chat_parity PROPERTIES TIMEOUT 600)
t2_add_script_test(chat_cli unit bash ${CMAKE_CURRENT_SOURCE_DIR}/chat_cli.sh)
