/* gw_metrics.c - counters, histograms and their Prometheus text form. */
#include "gw_metrics.h"

#include "gw_bridge.h"

#include "base/t2_err.h"

#include <pthread.h>
#include <stdlib.h>
#include <string.h>

static const double bounds[] = {0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5,
                                1,     2.5,  5,     10,   30,  60,   300};
#define N_BOUNDS (sizeof bounds / sizeof bounds[0])

typedef struct hist {
    uint64_t le[N_BOUNDS]; /* cumulative at render time; per bucket here */
    uint64_t count;
    double sum;
} hist;

typedef struct keyed {
    int n;
    char key[GW_METRICS_MAX_KEYS][160];
    uint64_t v[GW_METRICS_MAX_KEYS];
} keyed;

struct gw_metrics {
    pthread_mutex_t mu;
    keyed requests; /* "endpoint\tstatus" */
    keyed labels, mixtures, errors;
    uint64_t tokens_in, tokens_out;
    int64_t in_flight;
    hist ttft, total, pass1, pass2;
};

int gw_metrics_new(gw_metrics **out) {
    gw_metrics *m = calloc(1, sizeof *m);
    if (!m) return t2_err_set(T2_ENOMEM, "out of memory");
    pthread_mutex_init(&m->mu, NULL);
    *out = m;
    return 0;
}

void gw_metrics_destroy(gw_metrics **mp) {
    if (!mp || !*mp) return;
    pthread_mutex_destroy(&(*mp)->mu);
    free(*mp);
    *mp = NULL;
}

/* Count key; past GW_METRICS_MAX_KEYS - 1 distinct keys, new ones count as "other". */
static void bump(keyed *k, const char *key) {
    for (int i = 0; i < k->n; i++)
        if (!strcmp(k->key[i], key)) {
            k->v[i]++;
            return;
        }
    if (k->n >= GW_METRICS_MAX_KEYS - 1 && strcmp(key, "other")) {
        bump(k, "other");
        return;
    }
    if (k->n >= GW_METRICS_MAX_KEYS) return;
    snprintf(k->key[k->n], sizeof k->key[0], "%s", key);
    k->v[k->n++] = 1;
}

static void observe(hist *h, double x) {
    for (size_t i = 0; i < N_BOUNDS; i++)
        if (x <= bounds[i]) {
            h->le[i]++;
            break;
        }
    h->count++;
    h->sum += x;
}

void gw_metrics_request(gw_metrics *m, const char *endpoint, int status) {
    char key[160];
    snprintf(key, sizeof key, "%s\t%d", endpoint, status);
    pthread_mutex_lock(&m->mu);
    bump(&m->requests, key);
    pthread_mutex_unlock(&m->mu);
}

void gw_metrics_in_flight(gw_metrics *m, int delta) {
    pthread_mutex_lock(&m->mu);
    m->in_flight += delta;
    pthread_mutex_unlock(&m->mu);
}

void gw_metrics_generation(gw_metrics *m, uint32_t tokens_in, uint32_t tokens_out, double ttft_s,
                           double total_s, double pass1_ms, double pass2_ms, const char *label,
                           const char *mixture) {
    pthread_mutex_lock(&m->mu);
    m->tokens_in += tokens_in;
    m->tokens_out += tokens_out;
    if (ttft_s >= 0) observe(&m->ttft, ttft_s);
    observe(&m->total, total_s);
    if (pass1_ms >= 0) observe(&m->pass1, pass1_ms / 1000);
    if (pass2_ms >= 0) observe(&m->pass2, pass2_ms / 1000);
    if (label && *label) bump(&m->labels, label);
    if (mixture && *mixture) bump(&m->mixtures, mixture);
    pthread_mutex_unlock(&m->mu);
}

void gw_metrics_error(gw_metrics *m, const char *code) {
    pthread_mutex_lock(&m->mu);
    bump(&m->errors, code);
    pthread_mutex_unlock(&m->mu);
}

/* A label value with \ " and newlines escaped. */
static void label_value(FILE *f, const char *s, size_t n) {
    for (size_t i = 0; i < n && s[i]; i++) {
        if (s[i] == '\\' || s[i] == '"') fputc('\\', f);
        if (s[i] == '\n')
            fputs("\\n", f);
        else
            fputc(s[i], f);
    }
}

static void render_hist(FILE *f, const char *name, const char *help, const hist *h) {
    fprintf(f, "# HELP %s %s\n# TYPE %s histogram\n", name, help, name);
    uint64_t cum = 0;
    for (size_t i = 0; i < N_BOUNDS; i++) {
        cum += h->le[i];
        fprintf(f, "%s_bucket{le=\"%g\"} %llu\n", name, bounds[i], (unsigned long long)cum);
    }
    fprintf(f, "%s_bucket{le=\"+Inf\"} %llu\n%s_sum %.6f\n%s_count %llu\n", name,
            (unsigned long long)h->count, name, h->sum, name, (unsigned long long)h->count);
}

static void render_keyed(FILE *f, const char *name, const char *help, const char *label,
                         const keyed *k) {
    fprintf(f, "# HELP %s %s\n# TYPE %s counter\n", name, help, name);
    for (int i = 0; i < k->n; i++) {
        fprintf(f, "%s{%s=\"", name, label);
        label_value(f, k->key[i], strlen(k->key[i]));
        fprintf(f, "\"} %llu\n", (unsigned long long)k->v[i]);
    }
}

static void render_router(FILE *f, const gw_router_view *r) {
    fprintf(f,
            "# HELP t2_router_up 1 when the router answered within its liveness\n"
            "# TYPE t2_router_up gauge\nt2_router_up %d\n",
            r->up);
    if (!r->seen) return;
    const struct {
        const char *name, *help;
        uint64_t v;
    } c[] = {{"requests", "requests accepted", r->requests},
             {"replies", "final replies forwarded", r->replies},
             {"chunks", "chunks forwarded", r->chunks},
             {"decode_errors", "messages that failed validation", r->decode_errors},
             {"requeues", "jobs requeued after a worker died", r->requeues},
             {"busy", "requests refused EBUSY", r->busy},
             {"not_found", "requests for an unknown service", r->not_found},
             {"cancels", "cancels sent to workers", r->cancels},
             {"timeouts", "requests timed out", r->timeouts}};
    for (size_t i = 0; i < sizeof c / sizeof c[0]; i++)
        fprintf(f,
                "# HELP t2_router_%s_total %s\n# TYPE t2_router_%s_total counter\n"
                "t2_router_%s_total %llu\n",
                c[i].name, c[i].help, c[i].name, c[i].name, (unsigned long long)c[i].v);
    const struct {
        const char *name, *help;
        uint32_t v;
    } g[] = {{"workers", "workers registered", r->workers},
             {"clients", "clients known", r->clients},
             {"queued", "jobs waiting", r->queued},
             {"in_flight", "jobs at workers", r->in_flight}};
    for (size_t i = 0; i < sizeof g / sizeof g[0]; i++)
        fprintf(f, "# HELP t2_router_%s %s\n# TYPE t2_router_%s gauge\nt2_router_%s %u\n",
                g[i].name, g[i].help, g[i].name, g[i].name, g[i].v);
}

void gw_metrics_render(gw_metrics *m, const gw_router_view *router, FILE *f) {
    pthread_mutex_lock(&m->mu);
    fprintf(f, "# HELP t2_gateway_requests_total HTTP requests answered, by endpoint and status\n"
               "# TYPE t2_gateway_requests_total counter\n");
    for (int i = 0; i < m->requests.n; i++) {
        const char *k = m->requests.key[i], *tab = strchr(k, '\t');
        fprintf(f, "t2_gateway_requests_total{endpoint=\"");
        label_value(f, k, (size_t)(tab - k));
        fprintf(f, "\",status=\"%s\"} %llu\n", tab + 1, (unsigned long long)m->requests.v[i]);
    }
    fprintf(f,
            "# HELP t2_gateway_prompt_tokens_total prompt tokens of finished generations\n"
            "# TYPE t2_gateway_prompt_tokens_total counter\n"
            "t2_gateway_prompt_tokens_total %llu\n"
            "# HELP t2_gateway_completion_tokens_total tokens generated\n"
            "# TYPE t2_gateway_completion_tokens_total counter\n"
            "t2_gateway_completion_tokens_total %llu\n"
            "# HELP t2_gateway_in_flight generation requests in progress\n"
            "# TYPE t2_gateway_in_flight gauge\nt2_gateway_in_flight %lld\n",
            (unsigned long long)m->tokens_in, (unsigned long long)m->tokens_out,
            (long long)m->in_flight);
    render_hist(f, "t2_gateway_ttft_seconds", "time to the first token", &m->ttft);
    render_hist(f, "t2_gateway_request_seconds", "total time of a generation", &m->total);
    render_hist(f, "t2_gateway_pass1_seconds", "pass 1 (classification) time", &m->pass1);
    render_hist(f, "t2_gateway_pass2_seconds", "pass 2 (generation) time", &m->pass2);
    render_keyed(f, "t2_gateway_label_total", "generations by pass-1 label", "label", &m->labels);
    render_keyed(f, "t2_gateway_mixture_total", "generations by mixture", "mixture", &m->mixtures);
    render_keyed(f, "t2_gateway_errors_total", "errors by code", "code", &m->errors);
    pthread_mutex_unlock(&m->mu);
    if (router) render_router(f, router);
}
