# Tokenizer tests: unit tests, the tok_encode tool and SentencePiece parity.
t2_add_c_test(test_tokenizer unit)
t2_add_c_test(test_tokenizer_bpe unit)

add_executable(tok_encode ${CMAKE_CURRENT_SOURCE_DIR}/tok_encode.c)
target_link_libraries(tok_encode PRIVATE t2)

if(T2_PYTHON3)
  t2_add_script_test(sp_parity parity ${T2_PYTHON3} ${CMAKE_CURRENT_SOURCE_DIR}/sp_parity.py)
endif()

# Byte-level BPE (Llama 3, Qwen3): parity with @lenml/tokenizers run by node (tests/node; skips
# without node_modules: `npm ci --prefix tests/node`), from tokenizer.json and from a T2 GGUF.
add_executable(bpe_encode ${CMAKE_CURRENT_SOURCE_DIR}/bpe_encode.c)
target_link_libraries(bpe_encode PRIVATE t2)
t2_add_script_test(bpe_parity parity /usr/bin/python3 ${CMAKE_CURRENT_SOURCE_DIR}/bpe_parity.py
                   $<TARGET_FILE:bpe_encode>)
t2_add_script_test(tokenize_cli unit bash ${CMAKE_CURRENT_SOURCE_DIR}/tokenize_cli.sh)
