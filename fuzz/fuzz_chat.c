/* fuzz_chat.c - libFuzzer target for the chat-template interpreter (engine/chat.h).
 *
 * The input is a template; it is parsed, then rendered with a few conversations (none, system +
 * user, a multi-turn one with non-ASCII text and an extra variable), with small limits so that
 * runaway templates fail fast. A parse or render may fail, but must then leave *out NULL and a
 * message; a success must give a NUL-terminated buffer of the reported length.
 *
 * Seeds: fuzz/corpus/fuzz_chat (small templates written for T2) and, copied at start-up into
 * the first corpus folder given on the command line, the real templates of the shared assets
 * (T2_ASSETS/templates, the .jinja files), which are not part of the repository.
 */
#include "base/t2_err.h"
#include "engine/chat.h"

#include <dirent.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const char *const conversations[] = {
    "{\"messages\": []}",
    "{\"messages\": [{\"role\": \"system\", \"content\": \"S\"}, {\"role\": \"user\", "
    "\"content\": \" hi \"}]}",
    "{\"messages\": [{\"role\": \"user\", \"content\": \"caf\\u00e9 \\u2603\"}, {\"role\": "
    "\"assistant\", \"content\": \"<think>x</think>y\", \"tool_calls\": [{\"function\": "
    "{\"name\": \"f\", \"arguments\": {\"a\": [1, 2.5, null]}}}]}, {\"role\": \"user\", "
    "\"content\": \"\"}], \"tools\": [{\"type\": \"function\"}], \"date_string\": \"1 Jan\"}",
};

/* Copy the shared assets' real templates into `dir` (a corpus folder) once. */
static void seed_real_templates(const char *dir) {
    const char *assets = getenv("T2_ASSETS");
    char src[1024], dst[1024];
    snprintf(src, sizeof src, "%s/templates", assets ? assets : "../shared/assets");
    DIR *d = opendir(src);
    if (!d) return;
    struct dirent *e;
    while ((e = readdir(d))) {
        size_t n = strlen(e->d_name);
        if (n < 7 || strcmp(e->d_name + n - 6, ".jinja")) continue;
        snprintf(src, sizeof src, "%s/templates/%s", assets ? assets : "../shared/assets",
                 e->d_name);
        snprintf(dst, sizeof dst, "%s/real-%s", dir, e->d_name);
        FILE *in = fopen(src, "rb"), *out = in ? fopen(dst, "wb") : NULL;
        char buf[8192];
        size_t k;
        while (in && out && (k = fread(buf, 1, sizeof buf, in)) > 0) fwrite(buf, 1, k, out);
        if (in) fclose(in);
        if (out) fclose(out);
    }
    closedir(d);
}

int LLVMFuzzerInitialize(int *argc, char ***argv) {
    for (int i = 1; i < *argc; i++)
        if ((*argv)[i][0] != '-') {
            seed_real_templates((*argv)[i]);
            break;
        }
    return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    t2_chat_template *t = NULL;
    if (t2_chat_template_new(&t, (const char *)data, size, "fuzz") < 0) {
        if (t || !t2_err_msg()[0]) abort();
        return 0;
    }
    t2_chat_opts o = {.add_generation_prompt = 1, .bos_token = "<s>", .eos_token = "</s>",
                      .year = 2026, .month = 1, .day = 1, .max_output = 1u << 20,
                      .max_memory = 32u << 20, .max_iterations = 100000};
    for (size_t i = 0; i < sizeof conversations / sizeof conversations[0]; i++) {
        char *out = (char *)1;
        size_t n = 12345;
        int rc = t2_chat_render_json(t, conversations[i], strlen(conversations[i]), &o, &out, &n);
        if (rc < 0) {
            if (out || !t2_err_msg()[0]) abort();
            continue;
        }
        if (!out || out[n] != 0 || n > o.max_output) abort();
        free(out);
        o.add_generation_prompt = !o.add_generation_prompt;
    }
    t2_chat_template_destroy(&t);
    if (t) abort();
    return 0;
}
