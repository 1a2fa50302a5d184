# SVF: factors, experts, mixtures, multi-sequence batches; PyTorch parity; bad inputs.
t2_add_c_test(test_svf unit)
t2_add_script_test(svf_parity parity /usr/bin/python3 ${CMAKE_CURRENT_SOURCE_DIR}/svf_parity.py)
t2_add_script_test(svf_errors unit bash ${CMAKE_CURRENT_SOURCE_DIR}/svf_errors.sh)
