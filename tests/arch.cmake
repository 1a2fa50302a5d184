# Architectures and Hugging Face import: llama (Llama 2/3, Mistral), qwen2, qwen3 random models
# (t2 init, and make_hf.py folders through t2 convert) vs. the float64 reference; bad inputs.
t2_add_script_test(arch_parity parity /usr/bin/python3 ${CMAKE_CURRENT_SOURCE_DIR}/arch_parity.py)
t2_add_script_test(arch_errors unit bash ${CMAKE_CURRENT_SOURCE_DIR}/arch_errors.sh)
# Transformer² on a qwen2 Q4_K model with Qwen's real vocabulary and chat template: decompose,
# an expert in both paths, t2 svf steps, chat through router + dispatcher + a 2-rank group
# byte-identical to t2 run --chat.
if(T2_PYTHON3)
  t2_add_script_test(real_model_e2e integration bash ${CMAKE_CURRENT_SOURCE_DIR}/real_model_e2e.sh)
  set_tests_properties(real_model_e2e PROPERTIES TIMEOUT 400 RUN_SERIAL ON)
endif()
