/* gw_server.h - t2-gateway's HTTP side: libmicrohttpd (one epoll thread) in front of
 * the bridge thread that owns the t2_client. Endpoints and behaviour: gateway/README.md. */
#ifndef GW_SERVER_H
#define GW_SERVER_H

#include "t2_conf.h"

typedef struct gw_server gw_server;

/* Start serving what the configuration's gateway section says (port / bind override it when
 * > 0 / not NULL). Returns 0 or a T2_E* code with t2_err_msg naming the setting. */
int gw_server_new(gw_server **out, const t2_conf *c, int port, const char *bind);
/* The port it listens on. */
int gw_server_port(const gw_server *s);
/* Stop: refuse new requests, end the streams, wait for the connection threads, free. */
void gw_server_destroy(gw_server **s);

#endif
