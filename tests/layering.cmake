# The layers of shared/ and what links them (tests/layering.sh).
t2_add_script_test(layering unit ${CMAKE_CURRENT_SOURCE_DIR}/layering.sh ${CMAKE_SOURCE_DIR}
  ${CMAKE_BINARY_DIR}/bin)
