/* test_gateway.c - t2-gateway's pieces without a deployment: request bodies and model strings
 * (gw_req), the Task they become, keys files, model permissions and token buckets (gw_auth),
 * the Prometheus text (gw_metrics). */
#include "t2_test.h"

#include "gw_auth.h"
#include "gw_bridge.h"
#include "gw_metrics.h"
#include "gw_req.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static gw_adapt fallback = {.mode = T2__ADAPT_MODE__ADAPT_PROMPT};
static const gw_models models = {"t2-base", &fallback};

/* Parse body; return the status (200 on success) and keep q when it parsed. */
static int parse(const char *body, int ep, gw_req *q, gw_error *e) {
    return gw_req_parse(body, strlen(body), ep, &models, q, e) == 0 ? 200 : e->status;
}

static void test_models(void) {
    gw_adapt a;
    gw_error e;
    T2_CHECK(gw_model_parse("t2-base", &models, &a, &e) == 0);
    T2_CHECK_EQ_INT(a.mode, T2__ADAPT_MODE__ADAPT_PROMPT); /* the deployment's default */
    T2_CHECK(gw_model_parse("t2-base:classifier", &models, &a, &e) == 0);
    T2_CHECK_EQ_INT(a.mode, T2__ADAPT_MODE__ADAPT_CLASSIFIER);
    T2_CHECK(gw_model_parse("t2-base:profile/stories", &models, &a, &e) == 0);
    T2_CHECK(a.mode == T2__ADAPT_MODE__ADAPT_PROFILE && !strcmp(a.profile, "stories"));
    T2_CHECK(gw_model_parse("t2-base:mix/math=0.6,code=-0.4", &models, &a, &e) == 0);
    T2_CHECK(a.n_mix == 2 && !strcmp(a.mix_name[1], "code"));
    T2_CHECK_NEAR(a.mix_alpha[1], -0.4, 1e-6);
    char name[128];
    gw_adapt_name(&a, name, sizeof name);
    T2_CHECK_MSG(!strcmp(name, "mix/math=0.6,code=-0.4"), "%s", name);
    const char *bad[] = {"t2-base:",          "t2-base:mix/",        "t2-base:mix/a",
                         "t2-base:mix/a=",    "t2-base:mix/a=1,",    "t2-base:mix/a=1,a=2",
                         "t2-base:mix/a=1e9", "t2-base:mix/a=nan",   "t2-base:mix/a b=1",
                         "t2-base:profile/",  "t2-base:profile/a b", "t2-base:x"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        memset(&e, 0, sizeof e);
        T2_CHECK_MSG(gw_model_parse(bad[i], &models, &a, &e) < 0 && e.status == 400 && e.message[0],
                     "%s", bad[i]);
    }
    T2_CHECK(gw_model_parse("gpt-4", &models, &a, &e) < 0 && e.status == 404);
    T2_CHECK(gw_model_parse("t2-basex", &models, &a, &e) < 0 && e.status == 404);
    char many[2048] = "t2-base:mix/";
    for (int i = 0; i < 65; i++)
        snprintf(many + strlen(many), sizeof many - strlen(many), "%se%d=1", i ? "," : "", i);
    T2_CHECK(gw_model_parse(many, &models, &a, &e) < 0 && strstr(e.message, "more than 64"));
}

static void test_bodies(void) {
    gw_req q;
    gw_error e;
    T2_CHECK_EQ_INT(parse("{\"model\":\"t2-base:none\",\"prompt\":\"Hi\",\"max_tokens\":7,"
                          "\"temperature\":0.5,\"top_p\":1,\"seed\":3,\"stop\":\"\\n\","
                          "\"stream\":true,\"stream_options\":{\"include_usage\":true},"
                          "\"n\":1,\"user\":\"u\",\"presence_penalty\":0}",
                          GW_EP_COMPLETIONS, &q, &e),
                    200);
    T2_CHECK(q.max_tokens == 7 && q.has_temperature && q.has_seed && q.seed == 3);
    T2_CHECK(q.n_stop == 1 && !strcmp(q.stop[0], "\n") && q.stream && q.include_usage);
    gw_task_buf tb;
    T2_CHECK(gw_req_task(&q, &tb) == 0);
    T2_CHECK(tb.task.has_prompt && tb.task.prompt.len == 2 && tb.sampling.max_tokens == 7);
    T2_CHECK(tb.adaptation.mode == T2__ADAPT_MODE__ADAPT_NONE);
    gw_task_buf_free(&tb);
    gw_req_free(&q);
    /* chat: text parts joined, the body's t2.adapt wins over the model's suffix */
    T2_CHECK_EQ_INT(parse("{\"model\":\"t2-base:none\",\"messages\":[{\"role\":\"system\","
                          "\"content\":\"Be brief.\"},{\"role\":\"user\",\"content\":[{\"type\":"
                          "\"text\",\"text\":\"a\"},{\"type\":\"text\",\"text\":\"b\"}]}],"
                          "\"max_completion_tokens\":5,\"t2\":{\"adapt\":\"mix/x=2\"}}",
                          GW_EP_CHAT, &q, &e),
                    200);
    T2_CHECK(q.n_messages == 2 && !strcmp(q.contents[1], "ab") && q.max_tokens == 5);
    T2_CHECK(q.adapt_override && q.adapt.mode == T2__ADAPT_MODE__ADAPT_MIXTURE);
    T2_CHECK(gw_req_task(&q, &tb) == 0);
    T2_CHECK(tb.task.n_messages == 2 && !strcmp(tb.task.messages[0]->role, "system"));
    T2_CHECK(tb.task.has_add_generation_prompt && tb.task.add_generation_prompt);
    T2_CHECK(tb.mixture.n_experts == 1 && tb.ea[0].alpha == 2.0f);
    gw_task_buf_free(&tb);
    gw_req_free(&q);
    T2_CHECK_EQ_INT(parse("{\"model\":\"t2-base\",\"prompt\":[[5,6]]}", GW_EP_COMPLETIONS, &q, &e),
                    200);
    T2_CHECK(q.n_tokens == 2 && q.tokens[1] == 6);
    gw_req_free(&q);
    const struct {
        const char *body;
        int status;
        const char *param;
    } bad[] = {
        {"", 400, ""},
        {"{\"model\":\"t2-base\",\"prompt\":\"a\",\"prompt\":\"b\"}", 400, ""},
        {"{\"model\":\"t2-base\",\"prompt\":\"a\\u0000b\"}", 400, ""},
        {"{\"model\":\"t2-base\",\"prompt\":\"x\",\"max_tokens\":1048577}", 400, "max_tokens"},
        {"{\"model\":\"t2-base\",\"prompt\":\"x\",\"temperature\":null,\"top_p\":1.5}", 400,
         "top_p"},
        {"{\"model\":\"t2-base\",\"prompt\":\"x\",\"stop\":[\"\"]}", 400, "stop"},
        {"{\"model\":\"t2-base\",\"prompt\":\"x\",\"stop\":[1]}", 400, "stop"},
        {"{\"model\":\"t2-base\",\"prompt\":\"x\",\"stream_options\":{\"x\":1},"
         "\"stream\":true}",
         400, "stream_options"},
        {"{\"model\":\"t2-base\",\"prompt\":\"x\",\"frequency_penalty\":1}", 400,
         "frequency_penalty"},
        {"{\"model\":\"t2-base\",\"prompt\":\"x\",\"logprobs\":true}", 400, "logprobs"},
        {"{\"model\":\"t2-base\",\"prompt\":[1,-2]}", 400, "prompt"},
        {"{\"model\":\"t2-base\",\"messages\":[{\"role\":\"user\",\"content\":\"x\"}]}", 400,
         "messages"}, /* messages on the completions endpoint: unknown */
        {"{\"model\":\"t2-base\",\"messages\":[{\"content\":\"x\"}]}", 400, "messages"}};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        memset(&e, 0, sizeof e);
        int ep = i == sizeof bad / sizeof bad[0] - 1 ? GW_EP_CHAT : GW_EP_COMPLETIONS;
        int st = parse(bad[i].body, ep, &q, &e);
        T2_CHECK_MSG(st == bad[i].status && !strcmp(e.param, bad[i].param) && e.message[0],
                     "%s: %d param '%s' (%s)", bad[i].body, st, e.param, e.message);
        if (st == 200) gw_req_free(&q);
    }
}

static void write_file(const char *path, const char *text) {
    FILE *f = fopen(path, "w");
    fputs(text, f);
    fclose(f);
}

static void test_auth(void) {
    char path[] = "/tmp/t2_test_gateway_keysXXXXXX";
    int fd = mkstemp(path);
    T2_CHECK(fd >= 0);
    close(fd);
    write_file(path, "# keys\n\nalice sk-alice-0123456789ab\n"
                     "bob   sk-bob-0123456789abcd t2-base t2-base:mix/*  # comment\n");
    gw_auth *a = NULL;
    T2_CHECK(gw_auth_new(&a, path, 1.0, 2) == 0);
    if (a) {
        T2_CHECK(gw_auth_enabled(a));
        T2_CHECK_EQ_INT(gw_auth_find(a, "Bearer sk-alice-0123456789ab"), 0);
        T2_CHECK_EQ_INT(gw_auth_find(a, "bearer  sk-bob-0123456789abcd"), 1);
        T2_CHECK_EQ_INT(gw_auth_find(a, "Bearer sk-alice-0123456789a"), -1);
        T2_CHECK_EQ_INT(gw_auth_find(a, NULL), -1);
        T2_CHECK_EQ_INT(gw_auth_find(a, "Basic abc"), -1);
        T2_CHECK(gw_auth_model_ok(a, 0, "anything"));
        T2_CHECK(gw_auth_model_ok(a, 1, "t2-base") && gw_auth_model_ok(a, 1, "t2-base:mix/a=1"));
        T2_CHECK(!gw_auth_model_ok(a, 1, "t2-base:classifier"));
        /* a bucket of 2 refilled at 1/s */
        T2_CHECK_EQ_INT(gw_auth_take(a, 0, 1000), 0);
        T2_CHECK_EQ_INT(gw_auth_take(a, 0, 1000), 0);
        T2_CHECK_EQ_INT(gw_auth_take(a, 0, 1000), 1);
        T2_CHECK_EQ_INT(gw_auth_take(a, 0, 2100), 0);
        T2_CHECK_EQ_INT(gw_auth_take(a, 1, 2100), 0); /* another key, its own bucket */
        gw_auth_destroy(&a);
    }
    T2_CHECK(a == NULL);
    write_file(path, "alice sk-alice-0123456789ab\nbob sk-alice-0123456789ab\n");
    T2_CHECK(gw_auth_new(&a, path, 0, 1) < 0 && a == NULL);
    T2_CHECK(gw_auth_new(&a, NULL, 0, 1) == 0 && !gw_auth_enabled(a));
    T2_CHECK_EQ_INT(gw_auth_find(a, NULL), 0);
    T2_CHECK_EQ_INT(gw_auth_take(a, 0, 5), 0);
    gw_auth_destroy(&a);
    unlink(path);
}

static void test_metrics(void) {
    gw_metrics *m = NULL;
    T2_CHECK(gw_metrics_new(&m) == 0);
    gw_metrics_request(m, "/v1/completions", 200);
    gw_metrics_request(m, "/v1/completions", 200);
    gw_metrics_request(m, "/v1/completions", 400);
    gw_metrics_generation(m, 5, 7, 0.02, 0.3, 1.5, 250, "math", "math=1");
    gw_metrics_generation(m, 5, 3, -1, 2, -1, -1, "", "");
    gw_metrics_error(m, "invalid_json");
    for (int i = 0; i < 100; i++) { /* bounded label sets */
        char k[32];
        snprintf(k, sizeof k, "code%d", i);
        gw_metrics_error(m, k);
    }
    gw_router_view v = {.up = 1, .seen = 1, .requests = 9, .workers = 3};
    char *text = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&text, &len);
    gw_metrics_render(m, &v, f);
    fclose(f);
    T2_CHECK(
        strstr(text, "t2_gateway_requests_total{endpoint=\"/v1/completions\",status=\"200\"} 2\n"));
    T2_CHECK(strstr(text, "t2_gateway_completion_tokens_total 10\n"));
    T2_CHECK(strstr(text, "t2_gateway_prompt_tokens_total 10\n"));
    T2_CHECK(strstr(text, "t2_gateway_ttft_seconds_bucket{le=\"0.025\"} 1\n"));
    T2_CHECK(strstr(text, "t2_gateway_ttft_seconds_count 1\n"));
    T2_CHECK(strstr(text, "t2_gateway_request_seconds_bucket{le=\"2.5\"} 2\n"));
    T2_CHECK(strstr(text, "t2_gateway_pass2_seconds_count 1\n"));
    T2_CHECK(strstr(text, "t2_gateway_label_total{label=\"math\"} 1\n"));
    T2_CHECK(strstr(text, "t2_gateway_errors_total{code=\"other\"} 38\n"));
    T2_CHECK(strstr(text, "t2_router_requests_total 9\n") && strstr(text, "t2_router_workers 3\n"));
    free(text);
    gw_metrics_destroy(&m);
    T2_CHECK(m == NULL);
}

int main(void) {
    T2_RUN(test_models);
    T2_RUN(test_bodies);
    T2_RUN(test_auth);
    T2_RUN(test_metrics);
    return T2_TEST_END();
}
