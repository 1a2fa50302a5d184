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
  # rank 1 of a 2-rank group stopped (SIGSTOP) under load: the group's watchdog requeues its
  # jobs to the other group and aborts; every answer once, byte-identical to `t2 run`.
  t2_add_script_test(dist_watchdog integration ${T2_PYTHON3} ${CMAKE_CURRENT_SOURCE_DIR}/dist_watchdog.py)
  # 20 prompts of 4 MB in a row: each refused ERANGE before tokenizing, no registration
  # expires (bench/oversized.py also prints the others' p50/p99 with and without them).
  t2_add_script_test(oversized integration ${T2_PYTHON3} ${CMAKE_SOURCE_DIR}/bench/oversized.py --check --rounds 1)
  # prompts of 1 MB that take long to tokenize (Llama 3's vocabulary, a context of 16,384)
  # beside short requests, router heartbeats of 100 ms: no registration expires, every short
  # request completes, each long one is refused ERANGE (the head tokenizes on its own thread).
  t2_add_script_test(tok_heartbeat integration ${T2_PYTHON3} ${CMAKE_CURRENT_SOURCE_DIR}/tok_heartbeat.py)
  set_tests_properties(tok_heartbeat PROPERTIES TIMEOUT 200 RUN_SERIAL ON)
  # a prompt chunk of several seconds on the head (worker.batch = 4096, 48 layers) beside
  # router heartbeats of 100 ms: the head pumps its connections between layers, nothing expires.
  t2_add_script_test(prefill_heartbeat integration ${T2_PYTHON3} ${CMAKE_CURRENT_SOURCE_DIR}/prefill_heartbeat.py)
  set_tests_properties(prefill_heartbeat PROPERTIES TIMEOUT 300 RUN_SERIAL ON)
  # pass 1 by scoring (worker.pass1 = "score") on 1 and 2 ranks: the labels of generating.
  t2_add_script_test(dist_pass1 integration ${T2_PYTHON3} ${CMAKE_CURRENT_SOURCE_DIR}/dist_pass1.py)
  set_tests_properties(dist_system dist_faults py_generate dist_watchdog oversized PROPERTIES TIMEOUT 400 RUN_SERIAL ON)
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
# bench/soak.py for 2 minutes: mixed load (generate with mixtures, two-pass, classify) while
# ranks, groups, the dispatcher and the router are killed or stopped every 8 s; nothing lost,
# duplicated or wrong (the 20-minute run: bench/soak.py --minutes 20, see bench/README.md).
if(T2_PYTHON3)
  t2_add_script_test(soak soak ${T2_PYTHON3} ${CMAKE_SOURCE_DIR}/bench/soak.py --minutes 2 --every 8)
  set_tests_properties(soak PROPERTIES TIMEOUT 420 RUN_SERIAL ON)
endif()
# Several hosts for real: four network namespaces on a bridge (ctl, gpu-a, gpu-b, gpu-c),
# deploy/multihost/start.sh with an agent that enters a namespace instead of ssh; a group over
# two namespaces (Open MPI on the veth addresses only), CURVE on; answers byte-identical to
# t2 run; a namespace's link taken down is survived like a kill. Skips without root / netns.
t2_add_script_test(netns_cluster integration bash ${CMAKE_CURRENT_SOURCE_DIR}/netns_cluster.sh)
set_tests_properties(netns_cluster PROPERTIES TIMEOUT 300 RUN_SERIAL ON)
