# End-to-end CLI tests: llama2.c golden output, and bad files / flags through `t2`.
t2_add_script_test(golden_stories260K parity bash ${CMAKE_CURRENT_SOURCE_DIR}/golden.sh)
t2_add_script_test(cli_errors unit bash ${CMAKE_CURRENT_SOURCE_DIR}/cli_errors.sh)
