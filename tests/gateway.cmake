# t2-gateway (gateway/): the OpenAI-compatible HTTP server in front of a real deployment on
# stories260K (router, dispatcher, one worker group; tests/gateway_util.py). Each skips (77)
# without the model or mpirun; gateway_sdk and gateway_page also without
# tests/node-gateway/node_modules (scripts/install-deps.sh runs `npm ci` there), gateway_page
# without chromium.
if(T2_PYTHON3)
  # HTTP: answers byte-identical to t2 run, SSE, stop strings, every bad-input class, metrics,
  # slow / non-reading / vanishing clients, RSS under malformed input, rate limit, 503s.
  t2_add_script_test(gateway_http integration ${T2_PYTHON3} ${CMAKE_CURRENT_SOURCE_DIR}/gateway_http.py)
  # the official OpenAI SDK (npm `openai`, run by node) against the gateway.
  t2_add_script_test(gateway_sdk integration ${T2_PYTHON3} ${CMAKE_CURRENT_SOURCE_DIR}/gateway_sdk.py)
  # the chat page at / in Debian's chromium, headless, driven by npm's puppeteer-core.
  t2_add_script_test(gateway_page integration ${T2_PYTHON3} ${CMAKE_CURRENT_SOURCE_DIR}/gateway_page.py)
  set_tests_properties(gateway_http gateway_sdk gateway_page PROPERTIES TIMEOUT 300 RUN_SERIAL ON)
endif()
# the gateway section of the deployment file, keys files, t2-gateway's start-up checks.
t2_add_script_test(gateway_config unit bash ${CMAKE_CURRENT_SOURCE_DIR}/gateway_config.sh)
# deploy/t2-local.sh starts and stops t2-gateway when the file has a gateway section.
t2_add_script_test(gateway_local integration bash ${CMAKE_CURRENT_SOURCE_DIR}/gateway_local.sh)
set_tests_properties(gateway_local PROPERTIES TIMEOUT 120 RUN_SERIAL ON)
# the pieces without a deployment: request parsing, model strings, keys, rate buckets, metrics.
t2_add_c_test(test_gateway unit)
if(TARGET test_gateway)
  target_link_libraries(test_gateway PRIVATE gwcore)
endif()
# chat completions byte-identical to t2 run --chat (a qwen3 with Qwen's vocabulary and template;
# skips without ../shared/assets/tokenizers/qwen3).
t2_add_script_test(gateway_chat integration bash ${CMAKE_CURRENT_SOURCE_DIR}/gateway_chat.sh)
set_tests_properties(gateway_chat PROPERTIES TIMEOUT 240 RUN_SERIAL ON)
