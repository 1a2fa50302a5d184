/* gw_req.h - an OpenAI-style request body, parsed and checked: what the gateway turns into a
 * T2 Task. No I/O, no threads: the libFuzzer target fuzz/fuzz_gateway.c drives it directly.
 *
 *   gw_req q;
 *   gw_error e;
 *   if (gw_req_parse(body, len, GW_EP_CHAT, &model_defaults, &q, &e) < 0)
 *       reply(e.status, e.message, e.param, e.code);          // 400 / 403 / 404 in OpenAI's shape
 *   ... gw_req_task(&q, &tb) -> const T2__Task * ...
 *   gw_req_free(&q);
 *
 * The `model` names the adaptation (gateway/README.md):
 *   BASE                       the deployment's default (gateway.adapt)
 *   BASE:none | BASE:prompt | BASE:classifier
 *   BASE:profile/NAME          a stored task profile
 *   BASE:mix/NAME=A,NAME=A...  an explicit mixture (1..64 distinct experts, |A| <= 1000)
 * and an optional body member "t2": {"adapt": "classifier"} (the same forms after the colon)
 * overrides it.
 */
#ifndef GW_REQ_H
#define GW_REQ_H

#include "t2_msg.h"

#include <stddef.h>
#include <stdint.h>

#define GW_MAX_STOP 4        /* stop strings per request (OpenAI's limit) */
#define GW_MAX_STOP_LEN 256  /* bytes per stop string */
#define GW_MAX_MIX 64        /* experts per mixture (the wire's limit) */
#define GW_MAX_MESSAGES 1024 /* turns per conversation (the wire's limit) */
#define GW_NAME_MAX 64       /* expert / profile / role names */
#define GW_MODEL_MAX 512     /* bytes of a model string */
#define GW_MAX_TOKENS (1u << 20)

enum { GW_EP_CHAT = 0, GW_EP_COMPLETIONS = 1 };

/* An error in OpenAI's shape: {"error": {"message", "type", "param", "code"}}. */
typedef struct gw_error {
    int status; /* HTTP status: 400, 401, 403, 404, 413, 429, 503, ... */
    char message[512];
    const char *type; /* "invalid_request_error", ... */
    char param[64];   /* "" = null */
    const char *code; /* NULL = null */
} gw_error;

/* Fill e and return -1 (for `return gw_fail(...)`). */
int gw_fail(gw_error *e, int status, const char *type, const char *param, const char *code,
            const char *fmt, ...) __attribute__((format(printf, 6, 7)));

/* An adaptation as the model string names it. */
typedef struct gw_adapt {
    int mode; /* T2__ADAPT_MODE__* */
    char profile[GW_NAME_MAX + 1];
    int n_mix;
    char mix_name[GW_MAX_MIX][GW_NAME_MAX + 1];
    float mix_alpha[GW_MAX_MIX];
} gw_adapt;

typedef struct gw_req {
    int endpoint;                 /* GW_EP_* */
    char model[GW_MODEL_MAX + 1]; /* as given (echoed in the answer) */
    gw_adapt adapt;
    char adapt_name[GW_MODEL_MAX + 1]; /* "classifier", "mix/math=0.6", ... for logs / metrics */
    int adapt_override;                /* the body's "t2": {"adapt"} chose it */
    /* completions: a prompt or token ids; chat: messages */
    char *prompt;
    size_t prompt_len;
    uint32_t *tokens;
    size_t n_tokens;
    int n_messages;
    char **roles, **contents; /* n_messages each, NUL-terminated */
    /* sampling: has_* = given */
    uint32_t max_tokens; /* 0: the worker's default */
    int has_temperature, has_top_p, has_seed;
    float temperature, top_p;
    uint64_t seed;
    int n_stop;
    char *stop[GW_MAX_STOP];
    int stream, include_usage;
} gw_req;

/* What a model string may name. */
typedef struct gw_models {
    const char *base;         /* "t2-base" */
    const gw_adapt *fallback; /* the deployment's default adaptation (model == base) */
} gw_models;

/* Parse a model string ("t2-base:mix/math=0.6") into *a. Returns 0 or -1 with e filled (404
 * model_not_found for another base name, 400 for a bad suffix). */
int gw_model_parse(const char *model, const gw_models *m, gw_adapt *a, gw_error *e);
/* Parse an adaptation ("none", "prompt", "classifier", "profile/NAME", "mix/N=A,..."). */
int gw_adapt_parse(const char *s, gw_adapt *a, gw_error *e, const char *param);
/* "classifier", "profile/NAME", "mix/a=0.5,b=0.5" into buf. */
void gw_adapt_name(const gw_adapt *a, char *buf, size_t cap);

/* Parse and check a request body of the given endpoint. On success q owns what it holds
 * (gw_req_free); on failure q is empty and e says why (status 400 mostly). */
int gw_req_parse(const char *body, size_t len, int endpoint, const gw_models *m, gw_req *q,
                 gw_error *e);
void gw_req_free(gw_req *q);

/* The protobuf Task of a request: every pointer inside points into q or tb, so both must
 * outlive the task's use (t2_client_submit packs it at once). */
typedef struct gw_task_buf {
    T2__Task task;
    T2__Sampling sampling;
    T2__Adaptation adaptation;
    T2__Mixture mixture;
    T2__ExpertAlpha ea[GW_MAX_MIX];
    T2__ExpertAlpha *eap[GW_MAX_MIX];
    T2__ChatMessage *msgs;  /* n_messages, allocated */
    T2__ChatMessage **msgp; /* n_messages, allocated */
} gw_task_buf;
int gw_req_task(gw_req *q, gw_task_buf *tb); /* 0 or T2_ENOMEM */
void gw_task_buf_free(gw_task_buf *tb);

#endif
