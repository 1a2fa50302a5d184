# The distributed system (workers/, dispatcher/, deploy/, t2 submit) end to end on stories260K:
# router + dispatcher + worker groups as real processes (mpirun), Python drivers with
# watchdogs. Each skips (77) without the model, mpirun or (py_generate) python3-zmq/protobuf.
if(T2_PYTHON3)
  # 32 concurrent requests, 8 adaptations, two groups (2 ranks merged, 1 rank factored): every
  # greedy answer byte-identical to `t2 run`; bad input; clean shutdown.
  t2_add_script_test(dist_system integration ${T2_PYTHON3} ${CMAKE_CURRENT_SOURCE_DIR}/dist_system.py)
  # a worker group, the dispatcher and the router killed under load.
  t2_add_script_test(dist_faults integration ${T2_PYTHON3} ${CMAKE_CURRENT_SOURCE_DIR}/dist_faults.py)
  # an independent Python client (protoc --python_out) against the real system.
  t2_add_script_test(py_generate integration ${T2_PYTHON3} ${CMAKE_CURRENT_SOURCE_DIR}/py_generate.py)
  # a greedy answer made of byte-fallback tokens (a model fine-tuned here on umlaut text) comes
  # back from a worker group byte-identical to `t2 run`.
  t2_add_script_test(dist_bytes integration ${T2_PYTHON3} ${CMAKE_CURRENT_SOURCE_DIR}/dist_bytes.py)
  # pass 1 by scoring (worker.pass1 = "score") on 1 and 2 ranks: the labels of generating.
  t2_add_script_test(dist_pass1 integration ${T2_PYTHON3} ${CMAKE_CURRENT_SOURCE_DIR}/dist_pass1.py)
  set_tests_properties(dist_system dist_faults py_generate PROPERTIES TIMEOUT 400 RUN_SERIAL ON)
  set_tests_properties(dist_pass1 PROPERTIES TIMEOUT 200 RUN_SERIAL ON)
  set_tests_properties(dist_bytes PROPERTIES TIMEOUT 200 RUN_SERIAL ON)
endif()
# the deployment file: every bad value named with FILE:LINE: setting; t2-local.sh start/stop.
t2_add_script_test(dist_config unit bash ${CMAKE_CURRENT_SOURCE_DIR}/dist_config.sh)
t2_add_script_test(dist_local integration bash ${CMAKE_CURRENT_SOURCE_DIR}/dist_local.sh)
set_tests_properties(dist_local PROPERTIES TIMEOUT 120 RUN_SERIAL ON)
# the shipped deploy/t2.cfg runs as it is; logs are appended; a failed start stops what it started.
t2_add_script_test(deploy_local integration bash ${CMAKE_CURRENT_SOURCE_DIR}/deploy_local.sh)
set_tests_properties(deploy_local PROPERTIES TIMEOUT 200 RUN_SERIAL ON)
# CurveZMQ: allowed keys served, unknown keys / plain clients / a client key as a worker / a
# worker of another model refused; secret-key modes; plain TCP off loopback.
t2_add_script_test(security security bash ${CMAKE_CURRENT_SOURCE_DIR}/security.sh)
set_tests_properties(security PROPERTIES TIMEOUT 200 RUN_SERIAL ON)
# one client's flood of 3,000 requests does not starve another client's 20.
t2_add_script_test(fairness integration bash ${CMAKE_CURRENT_SOURCE_DIR}/fairness.sh)
set_tests_properties(fairness PROPERTIES TIMEOUT 200 RUN_SERIAL ON)
