# The router, its worker API and client library (router/), and the wire protocol (proto/).
# echo_worker: a worker on the worker API used by the tests below (built into bin/).
add_executable(echo_worker ${CMAKE_CURRENT_SOURCE_DIR}/echo_worker.c)
target_link_libraries(echo_worker PRIVATE t2net)

# test_router: the router as a subprocess with echo workers and clients on loopback.
t2_add_c_test(test_router integration)
target_link_libraries(test_router PRIVATE t2net Threads::Threads)
add_dependencies(test_router t2-router echo_worker)
set_tests_properties(test_router PROPERTIES TIMEOUT 180)

# py_client: an independent Python client (python3-zmq, python3-protobuf, protoc) against the
# router and an echo worker; skips (77) without them.
if(T2_PYTHON3)
  t2_add_script_test(py_client integration ${T2_PYTHON3} ${CMAKE_CURRENT_SOURCE_DIR}/py_client.py)
  set_tests_properties(py_client PROPERTIES TIMEOUT 60)
endif()

# test_router_alloc: the router's loop (t2router, in a thread) forwards 1,000 chunks with no
# allocation in its thread, counted by a replaced malloc (tests/t2_alloc_count.h); every chunk
# arrives once, in order; the same path for the client and worker API; the decoding arena
# itself. Under AddressSanitizer nothing is counted (its own malloc), the rest runs.
t2_add_c_test(test_router_alloc unit)
target_link_libraries(test_router_alloc PRIVATE t2router Threads::Threads)
set_tests_properties(test_router_alloc PROPERTIES TIMEOUT 60)
