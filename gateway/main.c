/* t2-gateway - an OpenAI-compatible HTTP server in front of a T2 deployment.
 *
 *   t2-gateway -c t2.cfg [--port N] [--bind ADDR] [--pid-file FILE] [--log-level L]
 *
 * Reads the deployment file (router endpoint and heartbeat, dispatcher service, model folders,
 * and its `gateway` section), listens, and serves until SIGTERM / SIGINT. --pid-file is
 * written once it listens (t2-local.sh waits for it). gateway/README.md tells the endpoints. */
#include "gw_server.h"

#include "base/t2_err.h"
#include "base/t2_log.h"
#include "t2_conf.h"

#include <errno.h>
#include <getopt.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static const char usage[] =
    "usage: t2-gateway -c t2.cfg [--port N] [--bind ADDR] [--pid-file FILE] [--log-level L]\n"
    "  -c, --config FILE   the deployment file (its gateway section: bind, port, keys, limits)\n"
    "      --port N        listen on port N (overrides gateway.port; 0 is not allowed)\n"
    "      --bind ADDR     listen address (overrides gateway.bind)\n"
    "      --pid-file F    write our pid to F once listening\n"
    "      --log-level L   error, warn, info, debug (default: gateway.log_level)\n";

int main(int argc, char **argv) {
    static const struct option opts[] = {{"config", required_argument, 0, 'c'},
                                         {"port", required_argument, 0, 'p'},
                                         {"bind", required_argument, 0, 'b'},
                                         {"pid-file", required_argument, 0, 'P'},
                                         {"log-level", required_argument, 0, 'l'},
                                         {"help", no_argument, 0, 'h'},
                                         {0, 0, 0, 0}};
    const char *cfg = NULL, *bind = NULL, *pid_file = NULL, *level = NULL;
    int port = 0, ch;
    while ((ch = getopt_long(argc, argv, "c:h", opts, NULL)) != -1) {
        char *end;
        switch (ch) {
        case 'c': cfg = optarg; break;
        case 'p':
            errno = 0;
            port = (int)strtol(optarg, &end, 10);
            if (errno || *end || port < 1 || port > 65535) {
                fprintf(stderr, "t2-gateway: --port: '%s' is not a port (1..65535)\n", optarg);
                return 2;
            }
            break;
        case 'b': bind = optarg; break;
        case 'P': pid_file = optarg; break;
        case 'l': level = optarg; break;
        case 'h': fputs(usage, stdout); return 0;
        default: fputs(usage, stderr); return 2;
        }
    }
    if (!cfg || optind < argc) {
        fputs(usage, stderr);
        return 2;
    }
    t2_log_set_role("gateway", -1);
    t2_conf c;
    int rc = t2_conf_load(&c, cfg, NULL);
    if (rc == 0 && t2_log_set_level_str(level ? level : c.gateway.log_level) < 0)
        rc = t2_err_set(T2_EINVAL, "--log-level: '%s' is not error, warn, info or debug", level);
    if (rc < 0) {
        fprintf(stderr, "t2-gateway: %s\n", t2_err_msg());
        t2_conf_free(&c);
        return 1;
    }
    /* every thread (MHD's, the bridge) inherits this mask: signals come to sigwait below */
    sigset_t set;
    sigemptyset(&set);
    sigaddset(&set, SIGTERM);
    sigaddset(&set, SIGINT);
    pthread_sigmask(SIG_BLOCK, &set, NULL);
    signal(SIGPIPE, SIG_IGN);
    gw_server *s = NULL;
    if (gw_server_new(&s, &c, port, bind) < 0) {
        fprintf(stderr, "t2-gateway: %s\n", t2_err_msg());
        t2_conf_free(&c);
        return 1;
    }
    T2_INFO("listening on http://%s:%d (router %s, service %s, model %s = %s)",
            bind ? bind : c.gateway.bind, gw_server_port(s), c.router.endpoint,
            c.dispatcher.service, c.gateway.model, c.gateway.adapt);
    if (pid_file) {
        FILE *f = fopen(pid_file, "w");
        if (f) {
            fprintf(f, "%d\n", (int)getpid());
            fclose(f);
        } else {
            T2_WARN("cannot write the pid file %s", pid_file);
        }
    }
    int sig = 0;
    sigwait(&set, &sig);
    T2_INFO("signal %d: stopping", sig);
    gw_server_destroy(&s);
    t2_conf_free(&c);
    T2_INFO("stopped");
    return 0;
}
