/* gw_metrics.h - the gateway's counters and histograms, rendered as Prometheus text (GET
 * /metrics). Thread-safe (one mutex); label sets are bounded (at most GW_METRICS_MAX_KEYS
 * distinct values per family, more count under "other"). */
#ifndef GW_METRICS_H
#define GW_METRICS_H

#include <stdint.h>
#include <stdio.h>

#define GW_METRICS_MAX_KEYS 64

typedef struct gw_metrics gw_metrics;
struct gw_router_view;

int gw_metrics_new(gw_metrics **out);
void gw_metrics_destroy(gw_metrics **m);

/* A request answered: endpoint ("/v1/completions", ...), HTTP status. */
void gw_metrics_request(gw_metrics *m, const char *endpoint, int status);
/* In-flight generation requests: +1 / -1. */
void gw_metrics_in_flight(gw_metrics *m, int delta);
/* A generation finished: tokens, seconds (ttft < 0: no token came), pass times in ms (< 0:
 * none), label ("" none) and mixture ("" none). */
void gw_metrics_generation(gw_metrics *m, uint32_t tokens_in, uint32_t tokens_out, double ttft_s,
                           double total_s, double pass1_ms, double pass2_ms, const char *label,
                           const char *mixture);
/* An error by code name ("EUNSUPPORTED", "invalid_json", "rate_limited", ...). */
void gw_metrics_error(gw_metrics *m, const char *code);

/* Write everything, then the router's counters (router may be NULL). */
void gw_metrics_render(gw_metrics *m, const struct gw_router_view *router, FILE *f);

#endif
