# Logits parity: T2 (batch and step paths) vs. the independent float64 PyTorch reference
# tests/ref_llama.py. Needs Debian's /usr/bin/python3 with torch + numpy (skips, 77, without).
t2_add_script_test(logits_parity parity /usr/bin/python3 ${CMAKE_CURRENT_SOURCE_DIR}/logits_parity.py)
# The reference itself must reproduce llama2.c's greedy stories260K output (skips without assets).
t2_add_script_test(ref_llama_golden parity /usr/bin/python3 ${CMAKE_CURRENT_SOURCE_DIR}/ref_llama.py golden)
# KV cache types: F16 and Q8_0 logits within stated bounds of F32's; thread count and prompt
# tiling do not change results (tests/kv_parity.py; t2 init models, stories260K if present).
t2_add_script_test(kv_parity parity /usr/bin/python3 ${CMAKE_CURRENT_SOURCE_DIR}/kv_parity.py)
