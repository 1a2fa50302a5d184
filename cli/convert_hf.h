/* convert_hf.h - `t2 convert HF_FOLDER OUT.gguf`: import a Hugging Face checkpoint. */
#ifndef T2_CLI_CONVERT_HF_H
#define T2_CLI_CONVERT_HF_H

#include "engine/t2_types.h"

/* Read dir/config.json (LlamaForCausalLM, MistralForCausalLM, Qwen2ForCausalLM,
 * Qwen3ForCausalLM), dir/model.safetensors or the shards of dir/model.safetensors.index.json
 * (F32, F16, BF16), dir/generation_config.json (eos ids) and dir/tokenizer.json when present,
 * and write a GGUF with llama.cpp's names (Q/K rows permuted to adjacent pairs for `llama`),
 * matrices as *type (NULL: the type of the checkpoint's embedding). `name` may be NULL.
 * Returns 0 or a T2_E code with the message set. */
int cli_convert_hf(const char *dir, const char *out, const t2_dtype *type, const char *name);

#endif
