# No function outside tests/ and the SIMD kernels longer than 120 lines
# (scripts/long_functions.py; a function that does one step fits on a screen).
if(T2_PYTHON3)
  t2_add_script_test(long_functions unit ${T2_PYTHON3} ${CMAKE_SOURCE_DIR}/scripts/long_functions.py
    -n 120 ${CMAKE_SOURCE_DIR})
endif()
