# Architectures and Hugging Face import: llama (Llama 2/3, Mistral), qwen2, qwen3 random models
# (t2 init, and make_hf.py folders through t2 convert) vs. the float64 reference; bad inputs.
t2_add_script_test(arch_parity parity /usr/bin/python3 ${CMAKE_CURRENT_SOURCE_DIR}/arch_parity.py)
t2_add_script_test(arch_errors unit bash ${CMAKE_CURRENT_SOURCE_DIR}/arch_errors.sh)
