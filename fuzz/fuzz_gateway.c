/* fuzz_gateway.c - libFuzzer target for t2-gateway's request parsing (gateway/gw_req.c).
 *
 * Every input is parsed as a chat and as a completions body, and (NUL-terminated) as a model
 * string and as an adaptation. A body that parses must hold values within the documented limits
 * and turn into a Task that passes the wire validation (t2_msg_validate on a Request around it),
 * or we abort(). A failure must have an HTTP status and a message.
 */
#include "gw_req.h"

#include "base/t2_err.h"
#include "t2_msg.h"

#include <stdio.h>

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

static void check_req(gw_req *q) {
    if (q->n_stop > GW_MAX_STOP || q->max_tokens > GW_MAX_TOKENS) abort();
    if (q->adapt.n_mix > GW_MAX_MIX || q->n_messages > GW_MAX_MESSAGES) abort();
    if (q->has_temperature && !(q->temperature >= 0 && q->temperature <= 2)) abort();
    if (q->has_top_p && !(q->top_p > 0 && q->top_p <= 1)) abort();
    for (int i = 0; i < q->n_stop; i++)
        if (!q->stop[i] || !*q->stop[i] || strlen(q->stop[i]) > GW_MAX_STOP_LEN) abort();
    gw_task_buf tb;
    if (gw_req_task(q, &tb) == 0) {
        T2__Request r = T2__REQUEST__INIT;
        r.has_request_id = 1;
        r.request_id = 1;
        r.service = "generate-adaptive";
        r.task = &tb.task;
        T2__Msg m = T2__MSG__INIT;
        m.has_version = 1;
        m.version = T2_PROTO_VERSION;
        m.body_case = T2__MSG__BODY_REQUEST;
        m.request = &r;
        /* an empty prompt or token ids out of the vocabulary are the worker's to refuse */
        if (t2_msg_validate(&m) < 0 && (q->n_messages || (q->prompt && q->prompt_len))) {
            fprintf(stderr, "validate: %s\n", t2_err_msg());
            abort();
        }
    }
    gw_task_buf_free(&tb);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    gw_adapt fallback = {0};
    gw_models m = {"t2-base", &fallback};
    gw_req q;
    gw_error e;
    for (int ep = GW_EP_CHAT; ep <= GW_EP_COMPLETIONS; ep++) {
        memset(&e, 0, sizeof e);
        if (gw_req_parse((const char *)data, size, ep, &m, &q, &e) == 0) {
            check_req(&q);
            gw_req_free(&q);
        } else if (e.status < 400 || e.status > 599 || !e.message[0] || !e.type) {
            abort();
        }
    }
    char *s = malloc(size + 1);
    if (!s) return 0;
    memcpy(s, data, size);
    s[size] = 0;
    gw_adapt a;
    if (gw_model_parse(s, &m, &a, &e) == 0 && a.n_mix > GW_MAX_MIX) abort();
    if (gw_adapt_parse(s, &a, &e, "x") == 0) {
        char name[GW_MODEL_MAX + 1];
        gw_adapt_name(&a, name, sizeof name);
    }
    free(s);
    return 0;
}
