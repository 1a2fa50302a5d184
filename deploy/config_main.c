/* t2-config - check and query a deployment file (deploy/t2.cfg), for people and for launchers.
 *
 *   t2-config check FILE [--group NAME]   validate every setting and that every file it names
 *                                         exists and is of the right kind; "FILE: ok" or the
 *                                         first error
 *   t2-config show FILE [--group NAME]    the effective configuration (defaults filled in)
 *   t2-config get FILE KEY [--group NAME] one value: router.endpoint, model.path, worker.apply, ...
 *   t2-config groups FILE                 one line per worker group: NAME RANKS HOST(or -)
 *   t2-config router-args FILE            the t2-router flags the file describes
 * Exit 0 on success, 1 on a bad file, 2 on a bad command line.
 */
#include "t2_conf.h"

#include "base/sha256.h"
#include "base/t2_err.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const char usage[] =
    "usage: t2-config check|show FILE [--group NAME]\n"
    "       t2-config get FILE KEY [--group NAME]\n"
    "       t2-config groups FILE\n"
    "       t2-config router-args FILE\n"
    "KEY: router.bind router.endpoint router.heartbeat_ms router.liveness model.path\n"
    "     model.tokenizer model.factors model.experts_dir model.profiles_dir worker.apply\n"
    "     worker.merged_type worker.prefix_cache\n"
    "     worker.capacity worker.threads dispatcher.service client.service client.timeout_ms\n"
    "     group.name group.ranks group.host gateway.enabled gateway.bind gateway.port\n";

static void out_str(const char *s) { printf("%s\n", s ? s : ""); }

/* The router's security flags: CURVE keys and allowed lists, or --insecure, and the model
 * every worker must announce (its sha256, computed here from model.path). */
static int print_security_args(const t2_conf *c) {
    const struct { const char *flag, *path; } f[] = {
        {"--curve-key", c->security.router_key},       {"--allow-clients", c->security.clients},
        {"--allow-workers", c->security.workers},      {"--allow-dispatchers", c->security.dispatchers}};
    if (c->security.curve) {
        for (size_t i = 0; i < sizeof f / sizeof f[0]; i++)
            if (f[i].path) printf(" %s %s", f[i].flag, f[i].path);
    } else if (c->security.insecure) {
        printf(" --insecure");
    }
    if (c->security.pin_model && c->model.path) {
        char hex[65];
        if (t2_sha256_file(c->model.path, hex) < 0) {
            fprintf(stderr, "t2-config: model.path: %s\n", t2_err_msg());
            return 1;
        }
        printf(" --model-sha256 %s", hex);
    }
    return 0;
}

static int get(const t2_conf *c, const char *key) {
    if (!strcmp(key, "router.bind"))
        out_str(c->router.bind);
    else if (!strcmp(key, "router.endpoint"))
        out_str(c->router.endpoint);
    else if (!strcmp(key, "router.heartbeat_ms"))
        printf("%d\n", c->router.heartbeat_ms);
    else if (!strcmp(key, "router.liveness"))
        printf("%d\n", c->router.liveness);
    else if (!strcmp(key, "model.path"))
        out_str(c->model.path);
    else if (!strcmp(key, "model.tokenizer"))
        out_str(c->model.tokenizer);
    else if (!strcmp(key, "model.factors"))
        out_str(c->model.factors);
    else if (!strcmp(key, "model.experts_dir"))
        out_str(c->model.experts_dir);
    else if (!strcmp(key, "model.profiles_dir"))
        out_str(c->model.profiles_dir);
    else if (!strcmp(key, "worker.apply"))
        out_str(t2_conf_apply_name(c->worker.apply));
    else if (!strcmp(key, "worker.merged_type"))
        out_str(t2_conf_merged_type_name(c->worker.merged_type));
    else if (!strcmp(key, "worker.prefix_cache"))
        out_str(c->worker.prefix_cache ? "true" : "false");
    else if (!strcmp(key, "worker.capacity"))
        printf("%d\n", c->worker.capacity);
    else if (!strcmp(key, "worker.threads"))
        printf("%d\n", c->worker.threads);
    else if (!strcmp(key, "dispatcher.service"))
        out_str(c->dispatcher.service);
    else if (!strcmp(key, "client.service"))
        out_str(c->client.service);
    else if (!strcmp(key, "client.timeout_ms"))
        printf("%d\n", c->client.timeout_ms);
    else if (!strcmp(key, "gateway.enabled"))
        printf("%d\n", c->gateway.enabled);
    else if (!strcmp(key, "gateway.bind"))
        out_str(c->gateway.bind);
    else if (!strcmp(key, "gateway.port"))
        printf("%d\n", c->gateway.port);
    else if (!strcmp(key, "group.name"))
        out_str(c->group.name);
    else if (!strcmp(key, "group.ranks"))
        printf("%d\n", c->group.ranks);
    else if (!strcmp(key, "group.host"))
        out_str(c->group.host);
    else {
        fprintf(stderr, "t2-config: unknown key '%s'\n%s", key, usage);
        return 2;
    }
    return 0;
}

int main(int argc, char **argv) {
    if (argc < 3) {
        fputs(usage, argc > 1 && !strcmp(argv[1], "--help") ? stdout : stderr);
        return argc > 1 && !strcmp(argv[1], "--help") ? 0 : 2;
    }
    const char *cmd = argv[1], *file = argv[2], *key = NULL, *group = NULL;
    for (int i = 3; i < argc; i++) {
        if (!strcmp(argv[i], "--group") && i + 1 < argc)
            group = argv[++i];
        else if (!key && !strcmp(cmd, "get"))
            key = argv[i];
        else {
            fprintf(stderr, "t2-config: unexpected argument '%s'\n%s", argv[i], usage);
            return 2;
        }
    }
    t2_conf c;
    if (t2_conf_load(&c, file, group) < 0) {
        fprintf(stderr, "t2-config: %s\n", t2_err_msg());
        t2_conf_free(&c);
        return 1;
    }
    int rc = 0;
    if (!strcmp(cmd, "check")) {
        if (t2_conf_check_files(&c, stderr) < 0) {
            fprintf(stderr, "t2-config: %s\n", t2_err_msg());
            t2_conf_free(&c);
            return 1;
        }
        printf("%s: ok (%d group%s)\n", file, c.n_groups, c.n_groups == 1 ? "" : "s");
    } else if (!strcmp(cmd, "show")) {
        t2_conf_print(&c, stdout);
    } else if (!strcmp(cmd, "get")) {
        if (!key) {
            fputs(usage, stderr);
            rc = 2;
        } else {
            rc = get(&c, key);
        }
    } else if (!strcmp(cmd, "groups")) {
        for (int i = 0; i < c.n_groups; i++)
            printf("%s %d %s\n", c.groups[i].name, c.groups[i].ranks,
                   c.groups[i].host[0] ? c.groups[i].host : "-");
    } else if (!strcmp(cmd, "router-args")) {
        printf("--bind %s --heartbeat-ms %d --liveness %d --queue-max %d --max-msg %ld "
               "--stats-ms %d --cancel-grace-ms %d --progress-ms %d --client-max %d",
               c.router.bind, c.router.heartbeat_ms, c.router.liveness, c.router.queue_max,
               c.router.max_msg, c.router.stats_ms, c.router.cancel_grace_ms,
               c.router.progress_ms, c.router.client_max);
        /* the deployment's services, declared: a request that comes before their workers have
         * (re)registered - e.g. just after a router restart - waits in the queue instead of
         * being refused ENOTFOUND */
        const char *svc[T2_CONF_MAX_SERVICES + 3];
        int n = 0;
        svc[n++] = c.dispatcher.service;
        svc[n++] = c.dispatcher.generate_service;
        svc[n++] = c.dispatcher.classify_service;
        for (int i = 0; i < c.worker.n_services; i++)
            svc[n++] = c.worker.services[i];
        for (int i = 0; i < n; i++) {
            int dup = 0;
            for (int j = 0; j < i; j++)
                dup |= !strcmp(svc[i], svc[j]);
            if (!dup) printf(" --service %s", svc[i]);
        }
        rc = print_security_args(&c);
        printf("\n");
    } else {
        fprintf(stderr, "t2-config: unknown command '%s'\n%s", cmd, usage);
        rc = 2;
    }
    t2_conf_free(&c);
    return rc;
}
