/* gw_auth.h - API keys (a keys file) and a per-key token-bucket rate limit.
 *
 * Keys file: one key per line, blank lines and '#' comments ignored:
 *   NAME TOKEN [MODEL...]
 * NAME (1..64 of [A-Za-z0-9._:/-]) names the key in logs and metrics, TOKEN (16..256 printable
 * bytes, no space) is what clients send as "Authorization: Bearer TOKEN", and each MODEL is a
 * model string the key may use: exact ("t2-base:classifier") or a prefix ending in '*'
 * (t2-base:mix/ followed by a star; a lone star: every model); none = every model. A bad line fails
 * the load with "FILE:LINE: why".
 */
#ifndef GW_AUTH_H
#define GW_AUTH_H

#include <stdint.h>

typedef struct gw_auth gw_auth;

/* path NULL: no keys (every request allowed, one shared rate bucket). rate: requests per second
 * per key (0: no limit), burst: bucket size (>= 1). Returns 0 or T2_EINVAL / T2_EIO / T2_ENOMEM. */
int gw_auth_new(gw_auth **out, const char *path, double rate, int burst);
void gw_auth_destroy(gw_auth **a);

/* 1 if keys are required. */
int gw_auth_enabled(const gw_auth *a);
/* The key index of "Bearer TOKEN" (header may be NULL), or -1. Without keys: 0. */
int gw_auth_find(const gw_auth *a, const char *authorization);
const char *gw_auth_name(const gw_auth *a, int key);
/* 1 if the key may use model. */
int gw_auth_model_ok(const gw_auth *a, int key, const char *model);
/* Take one request from the key's bucket: 0, or the seconds to wait (>= 1) when empty. */
int gw_auth_take(gw_auth *a, int key, uint64_t now_ms);

#endif
