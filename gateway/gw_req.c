/* gw_req.c - OpenAI request bodies (jansson) into checked gw_req values; model strings into
 * adaptations; gw_req into a protobuf Task. */
#include "gw_req.h"

#include "base/t2_err.h"

#include <errno.h>
#include <jansson.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define BAD "invalid_request_error"

int gw_fail(gw_error *e, int status, const char *type, const char *param, const char *code,
            const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(e->message, sizeof e->message, fmt, ap);
    va_end(ap);
    e->status = status;
    e->type = type;
    snprintf(e->param, sizeof e->param, "%s", param ? param : "");
    e->code = code;
    return -1;
}

static int name_ok(const char *s, size_t n) {
    if (n < 1 || n > GW_NAME_MAX) return 0;
    for (size_t i = 0; i < n; i++) {
        char ch = s[i];
        if (!((ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') || (ch >= '0' && ch <= '9') ||
              ch == '.' || ch == '_' || ch == ':' || ch == '/' || ch == '-'))
            return 0;
    }
    return 1;
}

/* ---- model strings ------------------------------------------------------------------------ */

static int parse_mix(const char *s, gw_adapt *a, gw_error *e, const char *param) {
    a->mode = T2__ADAPT_MODE__ADAPT_MIXTURE;
    a->n_mix = 0;
    const char *p = s;
    if (!*p) return gw_fail(e, 400, BAD, param, NULL, "mix/: no expert (mix/NAME=A,NAME=A...)");
    while (*p) {
        const char *eq = strchr(p, '='), *comma = strchr(p, ',');
        if (!comma) comma = p + strlen(p);
        if (!eq || eq > comma)
            return gw_fail(e, 400, BAD, param, NULL, "mix/: '%.*s' is not NAME=WEIGHT",
                           (int)(comma - p), p);
        if (!name_ok(p, (size_t)(eq - p)))
            return gw_fail(e, 400, BAD, param, NULL,
                           "mix/: '%.*s' is not an expert name (1..64 of A-Z a-z 0-9 . _ : / -)",
                           (int)(eq - p), p);
        if (a->n_mix == GW_MAX_MIX)
            return gw_fail(e, 400, BAD, param, NULL, "mix/: more than %d experts", GW_MAX_MIX);
        char num[64];
        size_t nl = (size_t)(comma - eq - 1);
        if (nl == 0 || nl >= sizeof num)
            return gw_fail(e, 400, BAD, param, NULL, "mix/: weight of '%.*s' is not a number",
                           (int)(eq - p), p);
        memcpy(num, eq + 1, nl);
        num[nl] = 0;
        char *end;
        errno = 0;
        double al = strtod(num, &end);
        if (errno || *end || !isfinite(al) || fabs(al) > 1000)
            return gw_fail(e, 400, BAD, param, NULL,
                           "mix/: weight '%s' of '%.*s' is not a number in [-1000, 1000]", num,
                           (int)(eq - p), p);
        char *dst = a->mix_name[a->n_mix];
        memcpy(dst, p, (size_t)(eq - p));
        dst[eq - p] = 0;
        for (int k = 0; k < a->n_mix; k++)
            if (!strcmp(a->mix_name[k], dst))
                return gw_fail(e, 400, BAD, param, NULL, "mix/: expert '%s' named twice", dst);
        a->mix_alpha[a->n_mix++] = (float)al;
        p = *comma ? comma + 1 : comma;
        if (*comma && !*p) return gw_fail(e, 400, BAD, param, NULL, "mix/: trailing comma");
    }
    return 0;
}

int gw_adapt_parse(const char *s, gw_adapt *a, gw_error *e, const char *param) {
    memset(a, 0, sizeof *a);
    if (!strcmp(s, "none")) {
        a->mode = T2__ADAPT_MODE__ADAPT_NONE;
    } else if (!strcmp(s, "prompt")) {
        a->mode = T2__ADAPT_MODE__ADAPT_PROMPT;
    } else if (!strcmp(s, "classifier")) {
        a->mode = T2__ADAPT_MODE__ADAPT_CLASSIFIER;
    } else if (!strncmp(s, "profile/", 8)) {
        if (!name_ok(s + 8, strlen(s + 8)))
            return gw_fail(e, 400, BAD, param, NULL,
                           "profile/: '%s' is not a profile name (1..64 of A-Z a-z 0-9 . _ : / -)",
                           s + 8);
        a->mode = T2__ADAPT_MODE__ADAPT_PROFILE;
        snprintf(a->profile, sizeof a->profile, "%s", s + 8);
    } else if (!strncmp(s, "mix/", 4)) {
        return parse_mix(s + 4, a, e, param);
    } else {
        return gw_fail(e, 400, BAD, param, NULL,
                       "adaptation '%s' is not none, prompt, classifier, profile/NAME or "
                       "mix/NAME=A,...",
                       s);
    }
    return 0;
}

int gw_model_parse(const char *model, const gw_models *m, gw_adapt *a, gw_error *e) {
    size_t bl = strlen(m->base);
    if (strncmp(model, m->base, bl) || (model[bl] && model[bl] != ':'))
        return gw_fail(e, 404, BAD, "model", "model_not_found",
                       "The model '%s' does not exist: this deployment serves %s and %s:ADAPT "
                       "(see GET /v1/models)",
                       model, m->base, m->base);
    if (!model[bl]) {
        *a = *m->fallback;
        return 0;
    }
    return gw_adapt_parse(model + bl + 1, a, e, "model");
}

void gw_adapt_name(const gw_adapt *a, char *buf, size_t cap) {
    switch (a->mode) {
    case T2__ADAPT_MODE__ADAPT_NONE: snprintf(buf, cap, "none"); return;
    case T2__ADAPT_MODE__ADAPT_PROMPT: snprintf(buf, cap, "prompt"); return;
    case T2__ADAPT_MODE__ADAPT_CLASSIFIER: snprintf(buf, cap, "classifier"); return;
    case T2__ADAPT_MODE__ADAPT_PROFILE: snprintf(buf, cap, "profile/%s", a->profile); return;
    }
    size_t n = (size_t)snprintf(buf, cap, "mix/");
    for (int i = 0; i < a->n_mix && n < cap; i++)
        n += (size_t)snprintf(buf + n, cap - n, "%s%s=%g", i ? "," : "", a->mix_name[i],
                              (double)a->mix_alpha[i]);
}

/* ---- request bodies ----------------------------------------------------------------------- */

static int want_number(const json_t *v, const char *k, double lo, double hi, int lo_open,
                       double *out, gw_error *e) {
    if (!json_is_number(v))
        return gw_fail(e, 400, BAD, k, "invalid_type", "'%s' must be a number", k);
    double x = json_number_value(v);
    if (!isfinite(x) || x < lo || x > hi || (lo_open && x <= lo))
        return gw_fail(e, 400, BAD, k, "invalid_value", "'%s' = %g is out of range %c%g, %g]", k, x,
                       lo_open ? '(' : '[', lo, hi);
    *out = x;
    return 0;
}

static int want_int(const json_t *v, const char *k, long long lo, long long hi, long long *out,
                    gw_error *e) {
    if (!json_is_integer(v))
        return gw_fail(e, 400, BAD, k, "invalid_type", "'%s' must be an integer", k);
    long long x = json_integer_value(v);
    if (x < lo || x > hi)
        return gw_fail(e, 400, BAD, k, "invalid_value", "'%s' = %lld is out of range [%lld, %lld]",
                       k, x, lo, hi);
    *out = x;
    return 0;
}

static char *dup_n(const char *s, size_t n) {
    char *d = malloc(n + 1);
    if (d) {
        memcpy(d, s, n);
        d[n] = 0;
    }
    return d;
}

static int parse_stop(const json_t *v, gw_req *q, gw_error *e) {
    if (json_is_null(v)) return 0;
    const json_t *one[1] = {v};
    size_t n = 1;
    if (json_is_array(v)) {
        n = json_array_size(v);
        if (n > GW_MAX_STOP)
            return gw_fail(e, 400, BAD, "stop", "invalid_value",
                           "'stop' has %zu strings, at most %d", n, GW_MAX_STOP);
    } else if (!json_is_string(v)) {
        return gw_fail(e, 400, BAD, "stop", "invalid_type",
                       "'stop' must be a string or an array of strings");
    }
    for (size_t i = 0; i < n; i++) {
        const json_t *s = json_is_array(v) ? json_array_get(v, i) : one[0];
        if (!json_is_string(s))
            return gw_fail(e, 400, BAD, "stop", "invalid_type", "'stop' must hold strings");
        size_t len = json_string_length(s);
        if (len < 1 || len > GW_MAX_STOP_LEN)
            return gw_fail(e, 400, BAD, "stop", "invalid_value",
                           "a stop string must have 1..%d bytes", GW_MAX_STOP_LEN);
        if (!(q->stop[q->n_stop] = dup_n(json_string_value(s), len)))
            return gw_fail(e, 500, "server_error", NULL, NULL, "out of memory");
        q->n_stop++;
    }
    return 0;
}

/* A message's content: a string, or an array of {"type": "text", "text": ...} parts. */
static int content_text(const json_t *c, size_t i, char **out, gw_error *e) {
    if (json_is_string(c))
        return (*out = dup_n(json_string_value(c), json_string_length(c)))
                   ? 0
                   : gw_fail(e, 500, "server_error", NULL, NULL, "out of memory");
    if (json_is_null(c)) return (*out = dup_n("", 0)) ? 0 : -1;
    if (!json_is_array(c))
        return gw_fail(e, 400, BAD, "messages", "invalid_type",
                       "messages[%zu].content must be a string or an array of text parts", i);
    size_t total = 0;
    for (size_t k = 0; k < json_array_size(c); k++) {
        const json_t *p = json_array_get(c, k);
        const char *type = json_string_value(json_object_get(p, "type"));
        const json_t *t = json_object_get(p, "text");
        if (!json_is_object(p) || !type || strcmp(type, "text") || !json_is_string(t))
            return gw_fail(e, 400, BAD, "messages", "unsupported_content",
                           "messages[%zu].content[%zu]: only {\"type\": \"text\", \"text\": ...} "
                           "parts are supported",
                           i, k);
        total += json_string_length(t);
    }
    char *s = malloc(total + 1);
    if (!s) return gw_fail(e, 500, "server_error", NULL, NULL, "out of memory");
    size_t n = 0;
    for (size_t k = 0; k < json_array_size(c); k++) {
        const json_t *t = json_object_get(json_array_get(c, k), "text");
        memcpy(s + n, json_string_value(t), json_string_length(t));
        n += json_string_length(t);
    }
    s[n] = 0;
    *out = s;
    return 0;
}

static int parse_messages(const json_t *v, gw_req *q, gw_error *e) {
    if (!json_is_array(v))
        return gw_fail(e, 400, BAD, "messages", "invalid_type", "'messages' must be an array");
    size_t n = json_array_size(v);
    if (n < 1 || n > GW_MAX_MESSAGES)
        return gw_fail(e, 400, BAD, "messages", "invalid_value",
                       "'messages' must hold 1..%d messages, not %zu", GW_MAX_MESSAGES, n);
    q->roles = calloc(n, sizeof *q->roles);
    q->contents = calloc(n, sizeof *q->contents);
    if (!q->roles || !q->contents)
        return gw_fail(e, 500, "server_error", NULL, NULL, "out of memory");
    for (size_t i = 0; i < n; i++) {
        const json_t *m = json_array_get(v, i);
        if (!json_is_object(m))
            return gw_fail(e, 400, BAD, "messages", "invalid_type",
                           "messages[%zu] must be an object {\"role\", \"content\"}", i);
        const json_t *role = json_object_get(m, "role");
        if (!json_is_string(role) || !name_ok(json_string_value(role), json_string_length(role)))
            return gw_fail(e, 400, BAD, "messages", "invalid_value",
                           "messages[%zu].role must be a name such as \"user\"", i);
        if (!(q->roles[i] = dup_n(json_string_value(role), json_string_length(role))))
            return gw_fail(e, 500, "server_error", NULL, NULL, "out of memory");
        q->n_messages = (int)i + 1;
        if (content_text(json_object_get(m, "content"), i, &q->contents[i], e) < 0) return -1;
    }
    return 0;
}

/* prompt: a string, [string], [int...] or [[int...]] (one prompt only). */
static int parse_prompt(const json_t *v, gw_req *q, gw_error *e) {
    if (json_is_array(v) && json_array_size(v) == 1 && !json_is_integer(json_array_get(v, 0)))
        v = json_array_get(v, 0);
    if (json_is_string(v)) {
        q->prompt_len = json_string_length(v);
        if (!(q->prompt = dup_n(json_string_value(v), q->prompt_len)))
            return gw_fail(e, 500, "server_error", NULL, NULL, "out of memory");
        return 0;
    }
    if (!json_is_array(v))
        return gw_fail(e, 400, BAD, "prompt", "invalid_type",
                       "'prompt' must be a string or an array of token ids");
    size_t n = json_array_size(v);
    if (n == 0 || n > GW_MAX_TOKENS)
        return gw_fail(e, 400, BAD, "prompt", "invalid_value",
                       "'prompt' must be one prompt: a string or 1..%u token ids", GW_MAX_TOKENS);
    if (!(q->tokens = malloc(n * sizeof *q->tokens)))
        return gw_fail(e, 500, "server_error", NULL, NULL, "out of memory");
    for (size_t i = 0; i < n; i++) {
        const json_t *t = json_array_get(v, i);
        if (!json_is_integer(t) || json_integer_value(t) < 0 ||
            json_integer_value(t) > (long long)UINT32_MAX)
            return gw_fail(e, 400, BAD, "prompt", "invalid_value",
                           "'prompt' holds several prompts or a bad token id (one prompt per "
                           "request)");
        q->tokens[i] = (uint32_t)json_integer_value(t);
    }
    q->n_tokens = n;
    return 0;
}

/* Members that are accepted only with their neutral value. */
static int neutral(const char *k, const json_t *v, gw_error *e) {
    if (!strcmp(k, "frequency_penalty") || !strcmp(k, "presence_penalty")) {
        if (json_is_null(v) || (json_is_number(v) && json_number_value(v) == 0)) return 0;
        return gw_fail(e, 400, BAD, k, "unsupported_parameter", "'%s' is not supported (only 0)",
                       k);
    }
    if (!strcmp(k, "logprobs") || !strcmp(k, "echo")) {
        if (json_is_null(v) || json_is_false(v)) return 0;
        return gw_fail(e, 400, BAD, k, "unsupported_parameter", "'%s' is not supported", k);
    }
    if (!strcmp(k, "best_of")) {
        if (json_is_null(v) || (json_is_integer(v) && json_integer_value(v) == 1)) return 0;
        return gw_fail(e, 400, BAD, k, "unsupported_parameter", "'best_of' must be 1");
    }
    if (!strcmp(k, "user")) {
        if (json_is_string(v) || json_is_null(v)) return 0;
        return gw_fail(e, 400, BAD, k, "invalid_type", "'user' must be a string");
    }
    return gw_fail(e, 400, BAD, k, "unknown_parameter",
                   "Unrecognized request argument supplied: %s", k);
}

static int parse_ext(const json_t *v, gw_req *q, gw_error *e) {
    if (!json_is_object(v))
        return gw_fail(e, 400, BAD, "t2", "invalid_type",
                       "'t2' must be an object {\"adapt\": ...}");
    const char *k;
    const json_t *x;
    json_object_foreach((json_t *)v, k, x) {
        if (strcmp(k, "adapt"))
            return gw_fail(e, 400, BAD, "t2", "unknown_parameter", "t2.%s is not known (adapt)", k);
        if (!json_is_string(x))
            return gw_fail(e, 400, BAD, "t2.adapt", "invalid_type", "'t2.adapt' must be a string");
        if (gw_adapt_parse(json_string_value(x), &q->adapt, e, "t2.adapt") < 0) return -1;
        q->adapt_override = 1;
    }
    return 0;
}

static int parse_sampling(const char *k, const json_t *v, gw_req *q, gw_error *e, int *known) {
    double d;
    long long i;
    *known = 1;
    if (json_is_null(v) && strcmp(k, "model") && strcmp(k, "messages") && strcmp(k, "prompt"))
        return 0; /* null = absent */
    if (!strcmp(k, "max_tokens") || !strcmp(k, "max_completion_tokens")) {
        if (want_int(v, k, 1, GW_MAX_TOKENS, &i, e) < 0) return -1;
        q->max_tokens = (uint32_t)i;
    } else if (!strcmp(k, "temperature")) {
        if (want_number(v, k, 0, 2, 0, &d, e) < 0) return -1;
        q->has_temperature = 1;
        q->temperature = (float)d;
    } else if (!strcmp(k, "top_p")) {
        if (want_number(v, k, 0, 1, 1, &d, e) < 0) return -1;
        q->has_top_p = 1;
        q->top_p = (float)d;
    } else if (!strcmp(k, "seed")) {
        if (want_int(v, k, 0, INT64_MAX, &i, e) < 0) return -1;
        q->has_seed = 1;
        q->seed = (uint64_t)i;
    } else if (!strcmp(k, "n")) {
        if (want_int(v, k, 1, 1, &i, e) < 0)
            return gw_fail(e, 400, BAD, "n", "unsupported_value",
                           "'n' must be 1: one choice per request (send several requests)");
    } else if (!strcmp(k, "stream")) {
        if (!json_is_boolean(v))
            return gw_fail(e, 400, BAD, k, "invalid_type", "'stream' must be a boolean");
        q->stream = json_is_true(v);
    } else if (!strcmp(k, "stream_options")) {
        const json_t *u = json_object_get(v, "include_usage");
        if (!json_is_object(v) || json_object_size(v) != (u ? 1u : 0u) ||
            (u && !json_is_boolean(u)))
            return gw_fail(e, 400, BAD, k, "invalid_type",
                           "'stream_options' must be {\"include_usage\": true|false}");
        q->include_usage = 2 + (u && json_is_true(u)); /* 2: given; checked with stream */
    } else if (!strcmp(k, "stop")) {
        return parse_stop(v, q, e);
    } else if (!strcmp(k, "t2")) {
        return parse_ext(v, q, e);
    } else {
        *known = 0;
    }
    return 0;
}

static int parse_members(json_t *root, int endpoint, const gw_models *m, gw_req *q, gw_error *e) {
    const json_t *model = json_object_get(root, "model");
    if (!json_is_string(model))
        return gw_fail(e, 400, BAD, "model", model ? "invalid_type" : "missing_required_parameter",
                       "'model' must be given as a string (e.g. \"%s\")", m->base);
    if (json_string_length(model) > GW_MODEL_MAX)
        return gw_fail(e, 400, BAD, "model", "invalid_value", "'model' is too long");
    snprintf(q->model, sizeof q->model, "%s", json_string_value(model));
    if (gw_model_parse(q->model, m, &q->adapt, e) < 0) return -1;
    const char *k;
    json_t *v;
    json_object_foreach(root, k, v) {
        int known = 0;
        if (!strcmp(k, "model")) continue;
        if (parse_sampling(k, v, q, e, &known) < 0) return -1;
        if (known) continue;
        if (endpoint == GW_EP_CHAT && !strcmp(k, "messages")) {
            if (parse_messages(v, q, e) < 0) return -1;
        } else if (endpoint == GW_EP_COMPLETIONS && !strcmp(k, "prompt")) {
            if (parse_prompt(v, q, e) < 0) return -1;
        } else if (endpoint == GW_EP_COMPLETIONS && !strcmp(k, "suffix") && json_is_null(v)) {
            continue;
        } else if (neutral(k, v, e) < 0) {
            return -1;
        }
    }
    return 0;
}

int gw_req_parse(const char *body, size_t len, int endpoint, const gw_models *m, gw_req *q,
                 gw_error *e) {
    memset(q, 0, sizeof *q);
    q->endpoint = endpoint;
    json_error_t je;
    json_t *root = json_loadb(body, len, JSON_REJECT_DUPLICATES, &je);
    if (!root)
        return gw_fail(e, 400, BAD, NULL, "invalid_json",
                       "We could not parse the JSON body of your request: line %d, column %d: %s",
                       je.line, je.column, je.text);
    int rc = -1;
    if (!json_is_object(root)) {
        gw_fail(e, 400, BAD, NULL, "invalid_json", "the request body must be a JSON object");
        goto out;
    }
    if (parse_members(root, endpoint, m, q, e) < 0) goto out;
    if (endpoint == GW_EP_CHAT && !q->n_messages) {
        gw_fail(e, 400, BAD, "messages", "missing_required_parameter", "'messages' is required");
        goto out;
    }
    if (endpoint == GW_EP_COMPLETIONS && !q->prompt && !q->tokens) {
        gw_fail(e, 400, BAD, "prompt", "missing_required_parameter", "'prompt' is required");
        goto out;
    }
    if (q->include_usage && !q->stream) {
        gw_fail(e, 400, BAD, "stream_options", "invalid_value",
                "'stream_options' is only allowed when 'stream' is true");
        goto out;
    }
    q->include_usage = q->include_usage == 3;
    gw_adapt_name(&q->adapt, q->adapt_name, sizeof q->adapt_name);
    rc = 0;
out:
    json_decref(root);
    if (rc < 0) gw_req_free(q);
    return rc;
}

void gw_req_free(gw_req *q) {
    if (!q) return;
    free(q->prompt);
    free(q->tokens);
    for (int i = 0; i < q->n_messages; i++) {
        free(q->roles[i]);
        free(q->contents[i]);
    }
    free(q->roles);
    free(q->contents);
    for (int i = 0; i < q->n_stop; i++)
        free(q->stop[i]);
    int ep = q->endpoint;
    memset(q, 0, sizeof *q);
    q->endpoint = ep;
}

/* ---- the Task ----------------------------------------------------------------------------- */

static void task_adaptation(gw_req *q, gw_task_buf *tb) {
    T2__Adaptation ai = T2__ADAPTATION__INIT;
    T2__Mixture mi = T2__MIXTURE__INIT;
    tb->adaptation = ai;
    tb->mixture = mi;
    tb->adaptation.has_mode = 1;
    tb->adaptation.mode = (T2__AdaptMode)q->adapt.mode;
    if (q->adapt.mode == T2__ADAPT_MODE__ADAPT_PROFILE) tb->adaptation.profile = q->adapt.profile;
    if (q->adapt.mode == T2__ADAPT_MODE__ADAPT_MIXTURE) {
        for (int i = 0; i < q->adapt.n_mix; i++) {
            T2__ExpertAlpha ea = T2__EXPERT_ALPHA__INIT;
            tb->ea[i] = ea;
            tb->ea[i].expert = q->adapt.mix_name[i];
            tb->ea[i].has_alpha = 1;
            tb->ea[i].alpha = q->adapt.mix_alpha[i];
            tb->eap[i] = &tb->ea[i];
        }
        tb->mixture.n_experts = (size_t)q->adapt.n_mix;
        tb->mixture.experts = tb->eap;
        tb->adaptation.mixture = &tb->mixture;
    }
    tb->task.adaptation = &tb->adaptation;
}

int gw_req_task(gw_req *q, gw_task_buf *tb) {
    memset(tb, 0, sizeof *tb);
    T2__Task ti = T2__TASK__INIT;
    T2__Sampling si = T2__SAMPLING__INIT;
    tb->task = ti;
    tb->sampling = si;
    tb->task.sampling = &tb->sampling;
    tb->sampling.has_max_tokens = q->max_tokens > 0;
    tb->sampling.max_tokens = q->max_tokens;
    tb->sampling.has_temperature = q->has_temperature;
    tb->sampling.temperature = q->temperature;
    tb->sampling.has_top_p = q->has_top_p;
    tb->sampling.top_p = q->top_p;
    tb->sampling.has_seed = q->has_seed;
    tb->sampling.seed = q->seed;
    task_adaptation(q, tb);
    if (q->prompt) {
        tb->task.has_prompt = 1;
        tb->task.prompt.data = (uint8_t *)q->prompt;
        tb->task.prompt.len = q->prompt_len;
    } else if (q->tokens) {
        tb->task.tokens = q->tokens;
        tb->task.n_tokens = q->n_tokens;
    } else {
        size_t n = (size_t)q->n_messages;
        tb->msgs = calloc(n, sizeof *tb->msgs);
        tb->msgp = calloc(n, sizeof *tb->msgp);
        if (!tb->msgs || !tb->msgp) return t2_err_set(T2_ENOMEM, "out of memory");
        for (size_t i = 0; i < n; i++) {
            T2__ChatMessage cm = T2__CHAT_MESSAGE__INIT;
            tb->msgs[i] = cm;
            tb->msgs[i].role = q->roles[i];
            tb->msgs[i].content = q->contents[i];
            tb->msgp[i] = &tb->msgs[i];
        }
        tb->task.n_messages = n;
        tb->task.messages = tb->msgp;
        tb->task.has_add_generation_prompt = 1;
        tb->task.add_generation_prompt = 1;
    }
    return 0;
}

void gw_task_buf_free(gw_task_buf *tb) {
    free(tb->msgs);
    free(tb->msgp);
    tb->msgs = NULL;
    tb->msgp = NULL;
}
