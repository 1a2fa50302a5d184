/* test_msg.c - validation of Tasks (proto/t2_msg.c): prompt, tokens or a conversation, exactly
 * one; prompts and message contents valid UTF-8; roles are names; bounded message counts; and
 * the strict reading of the wire bytes (t2_msg_decode): values too large for their field, fields
 * given twice, two bodies in one Msg; and the U+FFFD repair of a text that is not UTF-8. */
#include "t2_test.h"

#include "base/t2_err.h"
#include "t2_msg.h"

static int validate_prompt(const char *p, size_t n) {
    T2__Task t = T2__TASK__INIT;
    t.has_prompt = 1;
    t.prompt.data = (uint8_t *)p;
    t.prompt.len = n;
    return t2_msg_validate_task(&t);
}

static void test_prompt_utf8(void) {
    T2_CHECK_EQ_INT(validate_prompt("caf\xc3\xa9 \xe2\x82\xac", 9), 0);
    T2_CHECK_EQ_INT(validate_prompt("", 0), 0);
    T2_CHECK(validate_prompt("caf\xc3", 4) < 0);              /* truncated sequence */
    T2_CHECK(strstr(t2_err_msg(), "task.prompt is not valid UTF-8") != NULL);
    T2_CHECK(validate_prompt("\xff", 1) < 0);                 /* never valid */
    T2_CHECK(validate_prompt("\xc0\xaf", 2) < 0);             /* overlong */
    T2_CHECK(validate_prompt("\xed\xa0\x80", 3) < 0);         /* surrogate */
}

/* What the router does to a Result text that is not UTF-8: U+FFFD per bad byte, the rest kept. */
static void test_utf8_repair(void) {
    static const struct {
        const char *in, *out;
        size_t n;
    } cases[] = {
        {"caf\xc3\xa9", "caf\xc3\xa9", 5},                              /* valid: unchanged */
        {"ab\xff", "ab\xef\xbf\xbd", 3},                                 /* never valid */
        {"x\xe2\x82", "x\xef\xbf\xbd\xef\xbf\xbd", 3},                   /* cut mid-character */
        {"\xc0\xafz", "\xef\xbf\xbd\xef\xbf\xbdz", 3},                   /* overlong */
        {"\xed\xa0\x80", "\xef\xbf\xbd\xef\xbf\xbd\xef\xbf\xbd", 3},     /* surrogate */
    };
    for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
        char out[64];
        size_t n = t2_msg_utf8_repair(cases[i].in, cases[i].n, out);
        T2_CHECK_MSG(n == strlen(cases[i].out) && !memcmp(out, cases[i].out, n), "case %zu", i);
        T2_CHECK(t2_msg_utf8_ok(out, n));
        T2_CHECK_EQ_INT(t2_msg_utf8_ok(cases[i].in, cases[i].n), i == 0);
    }
}

static void test_chat(void) {
    T2__ChatMessage a = T2__CHAT_MESSAGE__INIT, b = T2__CHAT_MESSAGE__INIT;
    a.role = "system";
    a.content = "Be brief.";
    b.role = "user";
    b.content = "";
    T2__ChatMessage *msgs[2] = {&a, &b};
    T2__Task t = T2__TASK__INIT;
    t.n_messages = 2;
    t.messages = msgs;
    T2_CHECK_EQ_INT(t2_msg_validate_task(&t), 0);
    t.has_add_generation_prompt = 1;
    T2_CHECK_EQ_INT(t2_msg_validate_task(&t), 0);

    t.has_prompt = 1; /* prompt and messages */
    T2_CHECK(t2_msg_validate_task(&t) < 0);
    T2_CHECK(strstr(t2_err_msg(), "exactly one of prompt, tokens and messages") != NULL);
    t.has_prompt = 0;

    b.role = "us er";
    T2_CHECK(t2_msg_validate_task(&t) < 0);
    T2_CHECK(strstr(t2_err_msg(), "task.messages[1].role") != NULL);
    b.role = "user";
    b.content = "\xe2\x82";
    T2_CHECK(t2_msg_validate_task(&t) < 0);
    T2_CHECK(strstr(t2_err_msg(), "task.messages[1].content is not valid UTF-8") != NULL);
    b.content = NULL;
    T2_CHECK(t2_msg_validate_task(&t) < 0);
    T2_CHECK(strstr(t2_err_msg(), "task.messages[1].content missing") != NULL);
    b.content = "hi";

    t.n_messages = T2_MSG_CHAT_MAX + 1; /* checked before the array is read */
    T2_CHECK(t2_msg_validate_task(&t) < 0);
    T2_CHECK(strstr(t2_err_msg(), "at most") != NULL);

    T2__Task u = T2__TASK__INIT; /* add_generation_prompt alone */
    u.has_prompt = 1;
    u.prompt.data = (uint8_t *)"x";
    u.prompt.len = 1;
    u.has_add_generation_prompt = 1;
    T2_CHECK(t2_msg_validate_task(&u) < 0);
    T2_CHECK(strstr(t2_err_msg(), "add_generation_prompt without messages") != NULL);
}

/* ---- a tiny protobuf encoder, to write what a well-behaved packer never would ---- */
typedef struct {
    uint8_t b[512];
    size_t n;
} enc;
static void put_varint(enc *e, uint64_t v) {
    do {
        e->b[e->n++] = (uint8_t)((v & 0x7f) | (v > 0x7f ? 0x80 : 0));
        v >>= 7;
    } while (v);
}
static void put_uint(enc *e, unsigned field, uint64_t v) {
    put_varint(e, (uint64_t)field << 3);
    put_varint(e, v);
}
static void put_bytes(enc *e, unsigned field, const void *p, size_t n) {
    put_varint(e, (uint64_t)field << 3 | 2);
    put_varint(e, n);
    memcpy(e->b + e->n, p, n);
    e->n += n;
}
/* Msg{version 1, request{id, "generate", task{prompt "hi", sampling{max_tokens}}}} */
static void request_msg(enc *msg, uint64_t max_tokens, int id_twice) {
    enc samp = {0}, task = {0}, req = {0};
    put_uint(&samp, 4, max_tokens);
    put_bytes(&task, 2, "hi", 2);
    put_bytes(&task, 4, samp.b, samp.n);
    put_uint(&req, 1, 7);
    if (id_twice) put_uint(&req, 1, 8);
    put_bytes(&req, 2, "generate", 8);
    put_bytes(&req, 3, task.b, task.n);
    memset(msg, 0, sizeof *msg);
    put_uint(msg, 1, 1);
    put_bytes(msg, 2, req.b, req.n);
}

static int decode(const enc *e) {
    T2__Msg *m = NULL;
    int rc = t2_msg_decode(e->b, e->n, &m, NULL);
    t2_msg_free(m);
    return rc;
}

static void test_strict_wire(void) {
    enc e;
    request_msg(&e, 5, 0);
    T2_CHECK_EQ_INT(decode(&e), 0); /* the control */
    request_msg(&e, (1ull << 32) + 5, 0);
    T2_CHECK(decode(&e) < 0);
    T2_CHECK_MSG(strstr(t2_err_msg(), "max_tokens: value 4294967301 does not fit") != NULL, "%s",
                 t2_err_msg());
    request_msg(&e, 5, 1);
    T2_CHECK(decode(&e) < 0);
    T2_CHECK_MSG(strstr(t2_err_msg(), "request_id given twice") != NULL, "%s", t2_err_msg());
    /* two bodies: the request, then a cancel */
    request_msg(&e, 5, 0);
    enc cancel = {0};
    put_uint(&cancel, 1, 7);
    put_bytes(&e, 3, cancel.b, cancel.n);
    T2_CHECK(decode(&e) < 0);
    T2_CHECK_MSG(strstr(t2_err_msg(), "more than one body") != NULL, "%s", t2_err_msg());
    /* a packed token id beyond 32 bits */
    enc task = {0}, req = {0}, toks = {0};
    put_varint(&toks, 3);
    put_varint(&toks, 1ull << 32);
    put_bytes(&task, 3, toks.b, toks.n);
    put_uint(&req, 1, 7);
    put_bytes(&req, 2, "generate", 8);
    put_bytes(&req, 3, task.b, task.n);
    memset(&e, 0, sizeof e);
    put_uint(&e, 1, 1);
    put_bytes(&e, 2, req.b, req.n);
    T2_CHECK(decode(&e) < 0);
    T2_CHECK_MSG(strstr(t2_err_msg(), "tokens: value 4294967296 does not fit") != NULL, "%s",
                 t2_err_msg());
    /* a length that runs past the end */
    enc bad = {0};
    put_uint(&bad, 1, 1);
    put_varint(&bad, 2 << 3 | 2);
    put_varint(&bad, 100);
    T2_CHECK(decode(&bad) < 0);
}

static void test_nothing(void) {
    T2__Task t = T2__TASK__INIT;
    T2_CHECK(t2_msg_validate_task(&t) < 0);
}

int main(void) {
    T2_RUN(test_prompt_utf8);
    T2_RUN(test_utf8_repair);
    T2_RUN(test_chat);
    T2_RUN(test_strict_wire);
    T2_RUN(test_nothing);
    return T2_TEST_END();
}
