#include "bench_util.h"

#include "engine/model.h"

#include <stdio.h>
#include <sys/stat.h>

int bench_ensure_134m(const char *path, t2_dtype type) {
    struct stat st;
    if (stat(path, &st) == 0) return 0;
    fprintf(stderr, "writing %s ...\n", path);
    t2_config cfg = {.dim = 768, .hidden_dim = 2048, .n_layers = 12, .n_heads = 12,
                     .n_kv_heads = 12, .vocab_size = 32000, .seq_len = 1024};
    t2_model *m = NULL;
    int rc = t2_model_init_random(&m, &cfg, 0, 42);
    if (rc == 0) rc = t2_model_save_gguf(m, NULL, type, "t2-bench-134m", path);
    t2_model_destroy(&m);
    return rc;
}
