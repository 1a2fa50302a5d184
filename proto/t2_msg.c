/* t2_msg.c - validation of the wire messages (see t2_msg.h). Nothing here trusts its input:
 * every pointer protobuf-c may leave NULL is checked, every count bounded, every float finite. */
#include "t2_msg.h"

#include "base/name.h"
#include "base/t2_err.h"

#include <inttypes.h>
#include <math.h>
#include <stdio.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>

#define BAD(...) t2_err_set(T2_EPROTO, __VA_ARGS__)

/* 1..T2_MSG_NAME_MAX bytes of [A-Za-z0-9._:/-]. */
static int check_name(const char *s, const char *what) {
    if (!s) return BAD("%s missing", what);
    size_t n = strnlen(s, T2_MSG_NAME_MAX + 1);
    if (n == 0) return BAD("%s is empty", what);
    if (n > T2_MSG_NAME_MAX) return BAD("%s longer than %u bytes", what, T2_MSG_NAME_MAX);
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)s[i];
        if (!t2_name_char_ok(c)) return BAD("%s has a byte 0x%02x outside [A-Za-z0-9._:/-]", what, c);
    }
    return 0;
}

/* The length of the well-formed UTF-8 sequence at s[0..n) (no overlongs, no surrogates,
 * <= U+10FFFF), or 0 if there is none. n > 0. */
static size_t utf8_seq(const unsigned char *s, size_t n) {
    unsigned c = s[0];
    if (c < 0x80) return 1;
    size_t k;
    unsigned min, cp;
    if ((c & 0xe0) == 0xc0) k = 1, min = 0x80, cp = c & 0x1f;
    else if ((c & 0xf0) == 0xe0) k = 2, min = 0x800, cp = c & 0x0f;
    else if ((c & 0xf8) == 0xf0) k = 3, min = 0x10000, cp = c & 0x07;
    else return 0;
    if (n <= k) return 0;
    for (size_t j = 1; j <= k; j++) {
        unsigned d = s[j];
        if ((d & 0xc0) != 0x80) return 0;
        cp = (cp << 6) | (d & 0x3f);
    }
    if (cp < min || cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff)) return 0;
    return k + 1;
}

static int utf8_ok(const unsigned char *s, size_t n) {
    for (size_t i = 0, k; i < n; i += k)
        if (!(k = utf8_seq(s + i, n - i))) return 0;
    return 1;
}

int t2_msg_utf8_ok(const void *s, size_t n) {
    return utf8_ok(s, n);
}

size_t t2_msg_utf8_repair(const void *in, size_t n, void *out) {
    const unsigned char *s = in;
    unsigned char *o = out;
    size_t w = 0;
    for (size_t i = 0, k; i < n; i += k) {
        if ((k = utf8_seq(s + i, n - i))) {
            memcpy(o + w, s + i, k);
            w += k;
        } else {
            memcpy(o + w, "\xef\xbf\xbd", 3);
            w += 3;
            k = 1;
        }
    }
    return w;
}

/* Optional free text: UTF-8, at most `max` bytes. */
static int check_text(const char *s, size_t max, const char *what) {
    if (!s) return 0;
    size_t n = strnlen(s, max + 1);
    if (n > max) return BAD("%s longer than %zu bytes", what, max);
    if (!utf8_ok((const unsigned char *)s, n)) return BAD("%s is not valid UTF-8", what);
    return 0;
}

static int check_id(protobuf_c_boolean has, uint64_t v, const char *what) {
    if (!has) return BAD("%s missing", what);
    if (v == 0) return BAD("%s is 0", what);
    return 0;
}

static int check_tokens(size_t n, const uint32_t *t, const char *what) {
    if (n > T2_MSG_TOKENS_MAX) return BAD("%s: %zu tokens (at most %u)", what, n, T2_MSG_TOKENS_MAX);
    if (n && !t) return BAD("%s: tokens missing", what);
    for (size_t i = 0; i < n; i++)
        if (t[i] > T2_MSG_TOKEN_ID_MAX) return BAD("%s: token %zu out of range", what, i);
    return 0;
}

static int check_bytes(protobuf_c_boolean has, const ProtobufCBinaryData *b, const char *what) {
    if (!has) return 0;
    if (b->len > T2_MSG_TEXT_MAX) return BAD("%s: %zu bytes (at most %u)", what, b->len, T2_MSG_TEXT_MAX);
    if (b->len && !b->data) return BAD("%s: data missing", what);
    return 0;
}

/* Unknown fields (a newer peer's additions) are kept and forwarded, so they must be ones any
 * protobuf parser takes again: protobuf-c accepts a field number 0, which nobody can re-read. */
static int check_unknown_list(const ProtobufCMessage *m) {
    for (unsigned i = 0; i < m->n_unknown_fields; i++) {
        uint32_t tag = m->unknown_fields[i].tag;
        if (tag == 0 || tag > 536870911u)
            return BAD("%s: unknown field number %u is not a valid field number",
                       m->descriptor->short_name, tag);
    }
    return 0;
}

static int check_unknown(const ProtobufCMessage *m, int depth) {
    if (depth > 16) return BAD("messages nested too deep");
    int rc = check_unknown_list(m);
    if (rc < 0) return rc;
    const ProtobufCMessageDescriptor *d = m->descriptor;
    const char *base = (const char *)m;
    for (unsigned f = 0; f < d->n_fields; f++) {
        const ProtobufCFieldDescriptor *fd = &d->fields[f];
        if (fd->type != PROTOBUF_C_TYPE_MESSAGE) continue;
        if (fd->label == PROTOBUF_C_LABEL_REPEATED) {
            size_t n = *(const size_t *)(const void *)(base + fd->quantifier_offset);
            ProtobufCMessage *const *arr = *(ProtobufCMessage *const *const *)(const void *)(base + fd->offset);
            for (size_t k = 0; arr && k < n; k++)
                if (arr[k] && (rc = check_unknown(arr[k], depth + 1)) < 0) return rc;
        } else {
            if ((fd->flags & PROTOBUF_C_FIELD_FLAG_ONEOF) &&
                *(const uint32_t *)(const void *)(base + fd->quantifier_offset) != fd->id)
                continue;
            const ProtobufCMessage *sub = *(ProtobufCMessage *const *)(const void *)(base + fd->offset);
            if (sub && (rc = check_unknown(sub, depth + 1)) < 0) return rc;
        }
    }
    return 0;
}

static int check_sampling(const T2__Sampling *s) {
    if (s->has_temperature &&
        !(isfinite(s->temperature) && s->temperature >= 0 && s->temperature <= T2_MSG_TEMPERATURE_MAX))
        return BAD("sampling.temperature %g outside [0, %g]", (double)s->temperature,
                   (double)T2_MSG_TEMPERATURE_MAX);
    if (s->has_top_p && !(isfinite(s->top_p) && s->top_p > 0 && s->top_p <= 1))
        return BAD("sampling.top_p %g outside (0, 1]", (double)s->top_p);
    if (s->has_max_tokens && (s->max_tokens < 1 || s->max_tokens > T2_MSG_MAX_NEW_TOKENS))
        return BAD("sampling.max_tokens %u outside [1, %u]", s->max_tokens, T2_MSG_MAX_NEW_TOKENS);
    return 0;
}

int t2_msg_validate_mixture(const T2__Mixture *m, int allow_empty) {
    if (m->n_experts == 0 && !allow_empty) return BAD("mixture has no experts");
    if (m->n_experts > T2_MSG_MIX_EXPERTS_MAX)
        return BAD("mixture has %zu experts (at most %u)", m->n_experts, T2_MSG_MIX_EXPERTS_MAX);
    if (m->n_experts && !m->experts) return BAD("mixture experts missing");
    for (size_t i = 0; i < m->n_experts; i++) {
        const T2__ExpertAlpha *e = m->experts[i];
        if (!e) return BAD("mixture expert %zu missing", i);
        int rc = check_name(e->expert, "mixture expert name");
        if (rc < 0) return rc;
        for (size_t j = 0; j < i; j++)
            if (strcmp(m->experts[j]->expert, e->expert) == 0)
                return BAD("mixture names expert '%s' twice", e->expert);
        if (e->n_matrix_alpha == 0) {
            if (!e->has_alpha) return BAD("mixture expert '%s': alpha missing", e->expert);
            if (!(isfinite(e->alpha) && fabsf(e->alpha) <= T2_MSG_ALPHA_ABS_MAX))
                return BAD("mixture expert '%s': alpha %g not finite or above %g in magnitude",
                           e->expert, (double)e->alpha, (double)T2_MSG_ALPHA_ABS_MAX);
        } else {
            if (e->n_matrix_alpha > T2_MSG_MATRIX_ALPHA_MAX)
                return BAD("mixture expert '%s': %zu matrix alphas (at most %u)", e->expert,
                           e->n_matrix_alpha, T2_MSG_MATRIX_ALPHA_MAX);
            if (!e->matrix_alpha) return BAD("mixture expert '%s': matrix alphas missing", e->expert);
            for (size_t j = 0; j < e->n_matrix_alpha; j++)
                if (!(isfinite(e->matrix_alpha[j]) &&
                      fabsf(e->matrix_alpha[j]) <= T2_MSG_ALPHA_ABS_MAX))
                    return BAD("mixture expert '%s': matrix alpha %zu not finite or too large",
                               e->expert, j);
        }
    }
    return 0;
}

static int check_adaptation(const T2__Adaptation *a) {
    int mode = a->has_mode ? (int)a->mode : T2__ADAPT_MODE__ADAPT_NONE;
    if (mode < T2__ADAPT_MODE__ADAPT_NONE || mode > T2__ADAPT_MODE__ADAPT_MIXTURE)
        return BAD("adaptation.mode %d unknown", mode);
    int rc;
    if (mode == T2__ADAPT_MODE__ADAPT_PROFILE || a->profile)
        if ((rc = check_name(a->profile, "adaptation.profile")) < 0) return rc;
    if (mode == T2__ADAPT_MODE__ADAPT_MIXTURE && !a->mixture)
        return BAD("adaptation.mixture missing (mode is MIXTURE)");
    if (a->mixture && (rc = t2_msg_validate_mixture(a->mixture, 0)) < 0) return rc;
    return 0;
}

static int check_chat(const T2__Task *t) {
    if (t->n_messages > T2_MSG_CHAT_MAX)
        return BAD("task: %zu messages (at most %u)", t->n_messages, T2_MSG_CHAT_MAX);
    if (t->n_messages && !t->messages) return BAD("task: messages missing");
    for (size_t i = 0; i < t->n_messages; i++) {
        const T2__ChatMessage *m = t->messages[i];
        char what[48];
        int rc;
        if (!m) return BAD("task.messages[%zu] missing", i);
        snprintf(what, sizeof what, "task.messages[%zu].role", i);
        if ((rc = check_name(m->role, what)) < 0) return rc;
        snprintf(what, sizeof what, "task.messages[%zu].content", i);
        if (!m->content) return BAD("%s missing", what);
        if ((rc = check_text(m->content, T2_MSG_TEXT_MAX, what)) < 0) return rc;
    }
    if (t->has_add_generation_prompt && !t->n_messages)
        return BAD("task.add_generation_prompt without messages");
    if (t->has_chunk_tokens && (t->chunk_tokens < 1 || t->chunk_tokens > T2_MSG_CHUNK_TOKENS_MAX))
        return BAD("task.chunk_tokens %u outside [1, %u]", t->chunk_tokens,
                   T2_MSG_CHUNK_TOKENS_MAX);
    return 0;
}

int t2_msg_validate_task(const T2__Task *t) {
    int rc;
    if (t->has_kind && t->kind != T2__KIND__KIND_GENERATE && t->kind != T2__KIND__KIND_CLASSIFY)
        return BAD("task.kind %d unknown", (int)t->kind);
    if ((t->has_prompt != 0) + (t->n_tokens > 0) + (t->n_messages > 0) != 1)
        return BAD("task needs exactly one of prompt, tokens and messages");
    if ((rc = check_bytes(t->has_prompt, &t->prompt, "task.prompt")) < 0) return rc;
    if (t->has_prompt && !utf8_ok(t->prompt.data, t->prompt.len))
        return BAD("task.prompt is not valid UTF-8");
    if ((rc = check_chat(t)) < 0) return rc;
    if ((rc = check_tokens(t->n_tokens, t->tokens, "task")) < 0) return rc;
    if (t->sampling && (rc = check_sampling(t->sampling)) < 0) return rc;
    if (t->adaptation && (rc = check_adaptation(t->adaptation)) < 0) return rc;
    return 0;
}

int t2_msg_validate_request(const T2__Request *m) {
    int rc;
    if ((rc = check_id(m->has_request_id, m->request_id, "request.request_id")) < 0) return rc;
    if ((rc = check_name(m->service, "request.service")) < 0) return rc;
    if (!m->task) return BAD("request.task missing");
    return t2_msg_validate_task(m->task);
}

int t2_msg_validate_cancel(const T2__Cancel *m) {
    if (!(m->has_request_id && m->request_id) && !(m->has_job_id && m->job_id))
        return BAD("cancel names neither a request_id nor a job_id");
    return 0;
}

int t2_msg_validate_job(const T2__Job *m) {
    int rc;
    if ((rc = check_id(m->has_job_id, m->job_id, "job.job_id")) < 0) return rc;
    if ((rc = check_id(m->has_request_id, m->request_id, "job.request_id")) < 0) return rc;
    if ((rc = check_name(m->service, "job.service")) < 0) return rc;
    if (!m->task) return BAD("job.task missing");
    return t2_msg_validate_task(m->task);
}

int t2_msg_validate_chunk(const T2__Chunk *m) {
    int rc;
    if ((rc = check_id(m->has_request_id, m->request_id, "chunk.request_id")) < 0) return rc;
    if ((rc = check_id(m->has_job_id, m->job_id, "chunk.job_id")) < 0) return rc;
    if (!m->has_seq) return BAD("chunk.seq missing");
    if ((rc = check_bytes(m->has_text, &m->text, "chunk.text")) < 0) return rc;
    return check_tokens(m->n_tokens, m->tokens, "chunk");
}

static int check_ms(protobuf_c_boolean has, double v, const char *what) {
    if (has && !(isfinite(v) && v >= 0)) return BAD("%s %g not a finite time >= 0", what, v);
    return 0;
}

int t2_msg_validate_result(const T2__Result *m) {
    int rc;
    if ((rc = check_id(m->has_request_id, m->request_id, "result.request_id")) < 0) return rc;
    if ((rc = check_id(m->has_job_id, m->job_id, "result.job_id")) < 0) return rc;
    if ((rc = check_bytes(m->has_text, &m->text, "result.text")) < 0) return rc;
    if (m->has_finish_reason && (m->finish_reason < T2__FINISH_REASON__FINISH_STOP ||
                                 m->finish_reason > T2__FINISH_REASON__FINISH_CANCELLED))
        return BAD("result.finish_reason %d unknown", (int)m->finish_reason);
    if (m->label && (rc = check_name(m->label, "result.label")) < 0) return rc;
    if (m->mixture && (rc = t2_msg_validate_mixture(m->mixture, 1)) < 0) return rc;
    if ((rc = check_ms(m->has_pass1_ms, m->pass1_ms, "result.pass1_ms")) < 0) return rc;
    return check_ms(m->has_pass2_ms, m->pass2_ms, "result.pass2_ms");
}

int t2_msg_validate_error(const T2__Error *m) {
    if (!m->has_code) return BAD("error.code missing");
    if (m->code >= 0 || m->code < -1000) return BAD("error.code %d is not a T2_E* code", m->code);
    return check_text(m->message, T2_MSG_ERROR_TEXT_MAX, "error.message");
}

int t2_msg_validate_heartbeat(const T2__Heartbeat *m) {
    if (!m->has_role) return BAD("heartbeat.role missing");
    if (m->role < T2__ROLE__ROLE_CLIENT || m->role > T2__ROLE__ROLE_ROUTER)
        return BAD("heartbeat.role %d unknown", (int)m->role);
    return 0;
}

int t2_msg_validate_ready(const T2__Ready *m) {
    int rc;
    if ((rc = check_name(m->service, "ready.service")) < 0) return rc;
    if (!m->has_capacity) return BAD("ready.capacity missing");
    if (m->capacity < 1 || m->capacity > T2_MSG_CAPACITY_MAX)
        return BAD("ready.capacity %u outside [1, %u]", m->capacity, T2_MSG_CAPACITY_MAX);
    if (m->model_sha256) {
        size_t n = strnlen(m->model_sha256, 65);
        if (n != 64) return BAD("ready.model_sha256 is not 64 hex digits");
        for (size_t i = 0; i < 64; i++) {
            char c = m->model_sha256[i];
            if (!((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f')))
                return BAD("ready.model_sha256 is not 64 lowercase hex digits");
        }
    }
    if (m->n_experts > T2_MSG_READY_EXPERTS_MAX)
        return BAD("ready lists %zu experts (at most %u)", m->n_experts, T2_MSG_READY_EXPERTS_MAX);
    if (m->n_experts && !m->experts) return BAD("ready.experts missing");
    for (size_t i = 0; i < m->n_experts; i++)
        if ((rc = check_name(m->experts[i], "ready.experts[]")) < 0) return rc;
    if (m->name && (rc = check_name(m->name, "ready.name")) < 0) return rc;
    return 0;
}

int t2_msg_validate_disconnect(const T2__Disconnect *m) {
    return check_text(m->reason, T2_MSG_ERROR_TEXT_MAX, "disconnect.reason");
}

int t2_msg_validate_stats(const T2__Stats *m) {
    (void)m; /* counters only: any value is fine */
    return 0;
}

const ProtobufCMessageDescriptor *t2_msg_body_descriptor(int body_case) {
    switch (body_case) {
    case T2__MSG__BODY_REQUEST: return &t2__request__descriptor;
    case T2__MSG__BODY_CANCEL: return &t2__cancel__descriptor;
    case T2__MSG__BODY_JOB: return &t2__job__descriptor;
    case T2__MSG__BODY_CHUNK: return &t2__chunk__descriptor;
    case T2__MSG__BODY_RESULT: return &t2__result__descriptor;
    case T2__MSG__BODY_ERROR: return &t2__error__descriptor;
    case T2__MSG__BODY_HEARTBEAT: return &t2__heartbeat__descriptor;
    case T2__MSG__BODY_READY: return &t2__ready__descriptor;
    case T2__MSG__BODY_DISCONNECT: return &t2__disconnect__descriptor;
    case T2__MSG__BODY_STATS_REQUEST: return &t2__stats_request__descriptor;
    case T2__MSG__BODY_STATS: return &t2__stats__descriptor;
    }
    return NULL;
}

int t2_msg_validate_body(int body_case, const ProtobufCMessage *b) {
    if (!b) return BAD("%s body missing", t2_msg_body_name(body_case));
    if (b->descriptor != t2_msg_body_descriptor(body_case))
        return t2_err_set(T2_EINVAL, "body is not a %s", t2_msg_body_name(body_case));
    int rc = check_unknown(b, 0);
    if (rc < 0) return rc;
    switch (body_case) {
    case T2__MSG__BODY_REQUEST: return t2_msg_validate_request((const T2__Request *)b);
    case T2__MSG__BODY_CANCEL: return t2_msg_validate_cancel((const T2__Cancel *)b);
    case T2__MSG__BODY_JOB: return t2_msg_validate_job((const T2__Job *)b);
    case T2__MSG__BODY_CHUNK: return t2_msg_validate_chunk((const T2__Chunk *)b);
    case T2__MSG__BODY_RESULT: return t2_msg_validate_result((const T2__Result *)b);
    case T2__MSG__BODY_ERROR: return t2_msg_validate_error((const T2__Error *)b);
    case T2__MSG__BODY_HEARTBEAT: return t2_msg_validate_heartbeat((const T2__Heartbeat *)b);
    case T2__MSG__BODY_READY: return t2_msg_validate_ready((const T2__Ready *)b);
    case T2__MSG__BODY_DISCONNECT: return t2_msg_validate_disconnect((const T2__Disconnect *)b);
    case T2__MSG__BODY_STATS_REQUEST: return 0;
    case T2__MSG__BODY_STATS: return t2_msg_validate_stats((const T2__Stats *)b);
    }
    return t2_err_set(T2_EINVAL, "unknown body case %d", body_case);
}

const char *t2_msg_body_name(int body_case) {
    switch (body_case) {
    case T2__MSG__BODY__NOT_SET: return "none";
    case T2__MSG__BODY_REQUEST: return "request";
    case T2__MSG__BODY_CANCEL: return "cancel";
    case T2__MSG__BODY_JOB: return "job";
    case T2__MSG__BODY_CHUNK: return "chunk";
    case T2__MSG__BODY_RESULT: return "result";
    case T2__MSG__BODY_ERROR: return "error";
    case T2__MSG__BODY_HEARTBEAT: return "heartbeat";
    case T2__MSG__BODY_READY: return "ready";
    case T2__MSG__BODY_DISCONNECT: return "disconnect";
    case T2__MSG__BODY_STATS_REQUEST: return "stats_request";
    case T2__MSG__BODY_STATS: return "stats";
    }
    return "unknown";
}

/* The body as a generic message (all union members are pointers). */
static const ProtobufCMessage *body_of(const T2__Msg *m) {
    if (!t2_msg_body_descriptor(m->body_case)) return NULL;
    return (const ProtobufCMessage *)m->request;
}

int t2_msg_validate(const T2__Msg *m) {
    if (!m->has_version) return BAD("message has no version");
    if (m->version != T2_PROTO_VERSION)
        return BAD("protocol version %u not supported (this peer speaks %u)", m->version,
                   T2_PROTO_VERSION);
    if (m->body_case == T2__MSG__BODY__NOT_SET) return BAD("message has no body");
    if (check_unknown_list(&m->base) < 0) return T2_EPROTO;
    if (!t2_msg_body_descriptor(m->body_case))
        return BAD("message body %d unknown", (int)m->body_case);
    int rc = t2_msg_validate_body(m->body_case, body_of(m));
    if (rc < 0) return t2_err_prefix(T2_EPROTO, "bad %s", t2_msg_body_name(m->body_case));
    return 0;
}

uint64_t t2_msg_request_id(const T2__Msg *m) {
    switch (m->body_case) {
    case T2__MSG__BODY_REQUEST: return m->request && m->request->has_request_id ? m->request->request_id : 0;
    case T2__MSG__BODY_CANCEL: return m->cancel && m->cancel->has_request_id ? m->cancel->request_id : 0;
    case T2__MSG__BODY_JOB: return m->job && m->job->has_request_id ? m->job->request_id : 0;
    case T2__MSG__BODY_CHUNK: return m->chunk && m->chunk->has_request_id ? m->chunk->request_id : 0;
    case T2__MSG__BODY_RESULT: return m->result && m->result->has_request_id ? m->result->request_id : 0;
    case T2__MSG__BODY_ERROR: return m->error && m->error->has_request_id ? m->error->request_id : 0;
    default: return 0;
    }
}

uint64_t t2_msg_job_id(const T2__Msg *m) {
    switch (m->body_case) {
    case T2__MSG__BODY_CANCEL: return m->cancel && m->cancel->has_job_id ? m->cancel->job_id : 0;
    case T2__MSG__BODY_JOB: return m->job && m->job->has_job_id ? m->job->job_id : 0;
    case T2__MSG__BODY_CHUNK: return m->chunk && m->chunk->has_job_id ? m->chunk->job_id : 0;
    case T2__MSG__BODY_RESULT: return m->result && m->result->has_job_id ? m->result->job_id : 0;
    case T2__MSG__BODY_ERROR: return m->error && m->error->has_job_id ? m->error->job_id : 0;
    default: return 0;
    }
}

/* ---- the wire bytes themselves ----
 * protobuf-c accepts what a strict reader should not: a varint too large for its uint32 field is
 * cut to its low 32 bits (max_tokens 2^32 + 5 would read as 5), a field given twice keeps the
 * last value (or merges two sub-messages), and two members of Msg's `body` oneof leave only the
 * last. This walk over the encoded bytes refuses all three before unpacking. */

#define SCAN_DEPTH_MAX 16

static int read_varint(const uint8_t *p, size_t n, size_t *at, uint64_t *v) {
    uint64_t x = 0;
    for (int i = 0; i < 10; i++) {
        if (*at >= n) return BAD("truncated varint");
        const uint8_t b = p[(*at)++];
        if (i == 9 && b > 1) return BAD("varint longer than 64 bits");
        x |= (uint64_t)(b & 0x7f) << (7 * i);
        if (!(b & 0x80)) {
            *v = x;
            return 0;
        }
    }
    return BAD("varint longer than 10 bytes");
}

/* A varint value v of field f fits its declared type. */
static int varint_fits(const ProtobufCFieldDescriptor *f, uint64_t v) {
    switch (f->type) {
    case PROTOBUF_C_TYPE_UINT32:
    case PROTOBUF_C_TYPE_SINT32: return v <= 0xffffffffu;
    case PROTOBUF_C_TYPE_INT32:
    case PROTOBUF_C_TYPE_ENUM: return (int64_t)v >= INT32_MIN && (int64_t)v <= INT32_MAX;
    case PROTOBUF_C_TYPE_BOOL: return v <= 1;
    default: return 1;
    }
}

static int is_varint_type(ProtobufCType t) {
    return t == PROTOBUF_C_TYPE_UINT32 || t == PROTOBUF_C_TYPE_SINT32 ||
           t == PROTOBUF_C_TYPE_INT32 || t == PROTOBUF_C_TYPE_ENUM || t == PROTOBUF_C_TYPE_BOOL;
}

static int scan_message(const ProtobufCMessageDescriptor *d, const uint8_t *p, size_t n,
                        int depth);

/* The length-delimited payload of field f: a sub-message, a packed list, or bytes. */
static int scan_payload(const ProtobufCFieldDescriptor *f, const uint8_t *p, size_t n,
                        int depth) {
    if (f->type == PROTOBUF_C_TYPE_MESSAGE)
        return scan_message(f->descriptor, p, n, depth + 1);
    if (f->label == PROTOBUF_C_LABEL_REPEATED && is_varint_type(f->type)) {
        for (size_t at = 0; at < n;) {
            uint64_t v;
            if (read_varint(p, n, &at, &v) < 0) return T2_EPROTO;
            if (!varint_fits(f, v))
                return BAD("field %s: value %" PRIu64 " does not fit its type", f->name, v);
        }
    }
    return 0;
}

static int scan_message(const ProtobufCMessageDescriptor *d, const uint8_t *p, size_t n,
                        int depth) {
    if (depth > SCAN_DEPTH_MAX) return BAD("messages nested deeper than %d", SCAN_DEPTH_MAX);
    uint64_t seen = 0; /* non-repeated fields 1..63 already given */
    unsigned oneof_seen = 0;
    for (size_t at = 0; at < n;) {
        uint64_t key, v;
        if (read_varint(p, n, &at, &key) < 0) return T2_EPROTO;
        const uint64_t num = key >> 3;
        const unsigned wt = (unsigned)(key & 7);
        const ProtobufCFieldDescriptor *f =
            num && num <= 0x1fffffff ? protobuf_c_message_descriptor_get_field(d, (unsigned)num)
                                     : NULL;
        if (f && f->label != PROTOBUF_C_LABEL_REPEATED && num < 64) {
            if (seen & (1ull << num)) return BAD("%s.%s given twice", d->short_name, f->name);
            seen |= 1ull << num;
        }
        if (f && (f->flags & PROTOBUF_C_FIELD_FLAG_ONEOF) && ++oneof_seen > 1)
            return BAD("%s has more than one body", d->short_name);
        switch (wt) {
        case 0:
            if (read_varint(p, n, &at, &v) < 0) return T2_EPROTO;
            if (f && !varint_fits(f, v))
                return BAD("%s.%s: value %" PRIu64 " does not fit its type", d->short_name,
                           f->name, v);
            break;
        case 1:
        case 5:
            if (n - at < (wt == 1 ? 8u : 4u)) return BAD("truncated fixed-width field");
            at += wt == 1 ? 8 : 4;
            break;
        case 2:
            if (read_varint(p, n, &at, &v) < 0) return T2_EPROTO;
            if (v > n - at) return BAD("a length of %" PRIu64 " bytes runs past the message", v);
            if (f && scan_payload(f, p + at, (size_t)v, depth) < 0) return T2_EPROTO;
            at += (size_t)v;
            break;
        default: return BAD("wire type %u is not used by T2", wt);
        }
    }
    return 0;
}

/* t2_msg_decode with protobuf-c's allocator al (NULL: malloc). */
static int decode_with(ProtobufCAllocator *al, const void *buf, size_t len, T2__Msg **out,
                       t2_msg_ids *ids) {
    *out = NULL;
    if (ids) memset(ids, 0, sizeof *ids);
    if (len && !buf) return t2_err_set(T2_EINVAL, "no buffer");
    if (scan_message(&t2__msg__descriptor, buf, len, 0) < 0)
        return t2_err_prefix(T2_EPROTO, "undecodable message (%zu bytes)", len);
    T2__Msg *m = t2__msg__unpack(al, len, (const uint8_t *)buf);
    if (!m) return BAD("undecodable message (%zu bytes): not a t2.Msg protobuf", len);
    if (ids) {
        ids->body_case = m->body_case;
        ids->request_id = t2_msg_request_id(m);
        ids->job_id = t2_msg_job_id(m);
    }
    int rc = t2_msg_validate(m);
    if (rc < 0) {
        t2__msg__free_unpacked(m, al);
        return rc;
    }
    *out = m;
    return 0;
}

int t2_msg_decode(const void *buf, size_t len, T2__Msg **out, t2_msg_ids *ids) {
    return decode_with(NULL, buf, len, out, ids);
}

void t2_msg_free(T2__Msg *m) {
    if (m) t2__msg__free_unpacked(m, NULL);
}

size_t t2_msg_prepare(T2__Msg *m) {
    m->has_version = 1;
    m->version = T2_PROTO_VERSION;
    return t2__msg__get_packed_size(m);
}

int t2_msg_pack_alloc(T2__Msg *m, uint8_t **buf, size_t *len) {
    size_t n = t2_msg_prepare(m);
    uint8_t *b = malloc(n ? n : 1);
    if (!b) return t2_err_set(T2_ENOMEM, "out of memory packing a %zu-byte message", n);
    *len = t2__msg__pack(m, b);
    *buf = b;
    return 0;
}

/* ---- decoding into an arena ----------------------------------------------------------------- */

/* What did not fit in the block: freed at the next reset, which then grows the block. */
typedef struct arena_spill {
    struct arena_spill *next;
    max_align_t data[];
} arena_spill;

struct t2_msg_arena {
    ProtobufCAllocator al;
    unsigned char *block;
    size_t cap, used, demand; /* demand: bytes asked since the last reset */
    arena_spill *spill;
};

#define ARENA_ALIGN 16
#define ARENA_GROW_MAX (1u << 20)

static void *arena_alloc(void *data, size_t size) {
    t2_msg_arena *a = data;
    size_t n = (size + ARENA_ALIGN - 1) & ~(size_t)(ARENA_ALIGN - 1);
    if (n < size) return NULL;
    a->demand += n;
    if (n <= a->cap - a->used) {
        void *p = a->block + a->used;
        a->used += n;
        return p;
    }
    arena_spill *s = malloc(sizeof *s + n);
    if (!s) return NULL;
    s->next = a->spill;
    a->spill = s;
    return s->data;
}

static void arena_free(void *data, void *p) {
    (void)data; /* everything goes at the next reset */
    (void)p;
}

int t2_msg_arena_new(t2_msg_arena **out, size_t initial) {
    t2_msg_arena *a = calloc(1, sizeof *a);
    if (a) a->block = malloc(initial ? initial : 1);
    if (!a || !a->block) {
        free(a);
        *out = NULL;
        return t2_err_set(T2_ENOMEM, "out of memory for a %zu-byte message arena", initial);
    }
    a->cap = initial ? initial : 1;
    a->al.alloc = arena_alloc;
    a->al.free = arena_free;
    a->al.allocator_data = a;
    *out = a;
    return 0;
}

void t2_msg_arena_reset(t2_msg_arena *a) {
    int spilled = a->spill != NULL;
    while (a->spill) {
        arena_spill *s = a->spill;
        a->spill = s->next;
        free(s);
    }
    /* grow once to what the last message needed; a huge one (a long prompt, not a chunk) only
     * spills, so that one big message does not pin its size for the arena's life */
    if (spilled && a->demand > a->cap && a->demand <= ARENA_GROW_MAX) {
        size_t cap = a->demand + a->demand / 4;
        unsigned char *b = realloc(a->block, cap);
        if (b) {
            a->block = b;
            a->cap = cap;
        }
    }
    a->used = a->demand = 0;
}

void t2_msg_arena_destroy(t2_msg_arena **ap) {
    t2_msg_arena *a = ap ? *ap : NULL;
    if (!a) return;
    t2_msg_arena_reset(a);
    free(a->block);
    free(a);
    *ap = NULL;
}

int t2_msg_decode_in(t2_msg_arena *a, const void *buf, size_t len, T2__Msg **out,
                     t2_msg_ids *ids) {
    t2_msg_arena_reset(a);
    return decode_with(&a->al, buf, len, out, ids);
}

int t2_msg_dup(T2__Msg *m, T2__Msg **out) {
    uint8_t *buf;
    size_t len;
    *out = NULL;
    int rc = t2_msg_pack_alloc(m, &buf, &len);
    if (rc < 0) return rc;
    rc = t2_msg_decode(buf, len, out, NULL);
    free(buf);
    return rc;
}
