# Tokenizer tests: unit tests, the tok_encode tool and SentencePiece parity.
t2_add_c_test(test_tokenizer unit)

add_executable(tok_encode ${CMAKE_CURRENT_SOURCE_DIR}/tok_encode.c)
target_link_libraries(tok_encode PRIVATE t2)

if(T2_PYTHON3)
  t2_add_script_test(sp_parity parity ${T2_PYTHON3} ${CMAKE_CURRENT_SOURCE_DIR}/sp_parity.py)
endif()
