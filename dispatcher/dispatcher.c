/* t2-dispatcher - two-pass inference in front of the worker groups (dispatcher/README.md).
 *
 * One process, one thread, one zmq_poll over two sockets on one ZeroMQ context: a t2_worker
 * serving `dispatcher.service` ("generate-adaptive": clients send there) and a t2_client of the
 * workers' services ("classify", "generate"). For each request:
 *   none / mixture  -> one generate job with that adaptation;
 *   prompt          -> pass 1: a classify job (base weights), its label -> an expert by
 *                      dispatcher.labels ("other" -> base), then pass 2: the generate job;
 *   classifier      -> the same, the classify job asking for the classifier expert;
 *   profile NAME    -> the mixture of profiles_dir/NAME.gguf (shared/profile.h), then generate.
 * The generate job's chunks stream through to the client; the final Result carries the label,
 * the mixture and the pass-1 / pass-2 times (wall time measured here). Nothing is kept between
 * requests but a cache of profile files: run as many dispatchers as you like.
 */
#include "svf/profile.h"
#include "t2_client.h"
#include "t2_conf.h"
#include "base/sha256.h"
#include "base/args.h"
#include "base/backoff.h"
#include "base/name.h"
#include "base/t2_err.h"
#include "base/t2_log.h"
#include "t2_wire.h"
#include "t2_worker_api.h"

#include <inttypes.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <zmq.h>

static volatile sig_atomic_t stop_flag;
static void on_signal(int sig) {
    (void)sig;
    stop_flag = 1;
}

static const char *const label_names[T2_CFG_N_LABELS] = {"code", "math", "reasoning", "other"};

/* ---- profiles (cached by name, reloaded when the file changes) ------------------------------ */

#define PROFILE_CACHE 64

typedef struct pentry {
    char name[T2_NAME_MAX + 1];
    struct timespec mtime;
    off_t size;
    t2_profile *p;
    uint64_t used;
} pentry;

typedef struct dsp dsp;

/* ---- requests -------------------------------------------------------------------------------- */

enum { PH_FREE = 0, PH_CLASSIFY, PH_GENERATE };

typedef struct dreq {
    int phase;
    t2_job *job;
    uint64_t out_id;
    double t0, t1, pass1_ms;
    int has_label;
    char label[T2_NAME_MAX + 1];
    /* the mixture sent in pass 2 (prompt / classifier / profile) */
    T2__Mixture mix;
    T2__ExpertAlpha ea[T2_PROFILE_MAX_EXPERTS];
    T2__ExpertAlpha *eap[T2_PROFILE_MAX_EXPERTS];
    float *alpha; /* per-matrix α (copied from the profile) */
} dreq;

struct dsp {
    t2_conf *c;
    t2_worker *w;
    t2_client *cl;
    dreq *r;
    int n;
    pentry prof[PROFILE_CACHE];
    uint64_t tick;
    uint64_t requests, answered, failed;
};

static double now_ms(void) { return (double)t2_wire_now_ms(); }

static const char *profiles_dir(const t2_conf *c, char *buf, size_t cap) {
    return c->model.profiles_dir ? c->model.profiles_dir : t2_conf_experts_dir(c, buf, cap);
}

static int profile_get(dsp *d, const char *name, const t2_profile **out) {
    if (strchr(name, '/') || name[0] == '.')
        return t2_err_set(T2_EINVAL, "profile name '%s' is not a file name", name);
    char dbuf[4096], path[8192];
    snprintf(path, sizeof path, "%s/%s.gguf", profiles_dir(d->c, dbuf, sizeof dbuf), name);
    struct stat sb;
    /* clients see names, never this host's paths: the path goes to the log */
    if (stat(path, &sb) != 0) {
        T2_INFO("profile '%s': no %s", name, path);
        return t2_err_set(T2_ENOTFOUND, "profile '%s' not found", name);
    }
    pentry *e = NULL, *lru = &d->prof[0];
    for (int i = 0; i < PROFILE_CACHE; i++) {
        if (d->prof[i].p && !strcmp(d->prof[i].name, name)) e = &d->prof[i];
        if (d->prof[i].used < lru->used) lru = &d->prof[i];
    }
    if (e && (e->mtime.tv_sec != sb.st_mtim.tv_sec || e->mtime.tv_nsec != sb.st_mtim.tv_nsec ||
              e->size != sb.st_size))
        t2_profile_destroy(&e->p); /* changed on disk */
    if (!e || !e->p) {
        if (!e) e = lru;
        t2_profile_destroy(&e->p);
        int rc = t2_profile_load(&e->p, path);
        if (rc < 0) {
            T2_WARN("profile '%s': %s", name, t2_err_msg());
            return t2_err_set(rc, "profile '%s' cannot be read (the dispatcher's log says why)",
                              name);
        }
        snprintf(e->name, sizeof e->name, "%s", name);
        e->mtime = sb.st_mtim;
        e->size = sb.st_size;
    }
    e->used = ++d->tick;
    *out = e->p;
    return 0;
}

/* ---- replies --------------------------------------------------------------------------------- */

static void req_free(dreq *q) {
    t2_job_destroy(&q->job);
    free(q->alpha);
    q->alpha = NULL;
    q->phase = PH_FREE;
    q->out_id = 0;
    q->has_label = 0;
}

static void fail(dsp *d, dreq *q, int code, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
static void fail(dsp *d, dreq *q, int code, const char *fmt, ...) {
    char msg[900];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    const T2__Job *jm = t2_job_msg(q->job);
    T2_INFO("request %" PRIu64 ": error %d: %s", jm->request_id, code, msg);
    t2_worker_send_error(d->w, q->job, code, "%s", msg);
    d->failed++;
    req_free(q);
}

/* ---- the passes ------------------------------------------------------------------------------ */

static uint32_t time_left(const dreq *q, uint32_t cap) {
    const T2__Job *jm = t2_job_msg(q->job);
    uint32_t t = jm->has_timeout_ms ? jm->timeout_ms : 0;
    if (t) {
        double spent = now_ms() - q->t0;
        t = spent >= t ? 1 : t - (uint32_t)spent;
    }
    if (cap && (!t || cap < t)) t = cap;
    return t;
}

/* Pass 2 with adaptation ad (NULL: the request's own). */
static void send_generate(dsp *d, dreq *q, const T2__Adaptation *ad) {
    const T2__Job *jm = t2_job_msg(q->job);
    T2__Task t = *jm->task;
    t.has_kind = 1;
    t.kind = T2__KIND__KIND_GENERATE;
    if (ad) t.adaptation = (T2__Adaptation *)ad;
    q->t1 = now_ms();
    if (t2_client_submit(d->cl, d->c->dispatcher.generate_service, &t, time_left(q, 0),
                         &q->out_id) < 0) {
        fail(d, q, T2_EINVAL, "pass 2: %s", t2_err_msg());
        return;
    }
    q->phase = PH_GENERATE;
}

static void send_mixture(dsp *d, dreq *q) {
    T2__Adaptation ad = T2__ADAPTATION__INIT;
    ad.has_mode = 1;
    if (q->mix.n_experts) {
        ad.mode = T2__ADAPT_MODE__ADAPT_MIXTURE;
        ad.mixture = &q->mix;
    } else {
        ad.mode = T2__ADAPT_MODE__ADAPT_NONE;
    }
    send_generate(d, q, &ad);
}

static void mix_one(dreq *q, const char *expert) {
    T2__Mixture m = T2__MIXTURE__INIT;
    q->mix = m;
    if (!expert) return;
    T2__ExpertAlpha e = T2__EXPERT_ALPHA__INIT;
    q->ea[0] = e;
    q->ea[0].expert = (char *)expert;
    q->ea[0].has_alpha = 1;
    q->ea[0].alpha = 1.0f;
    q->eap[0] = &q->ea[0];
    q->mix.n_experts = 1;
    q->mix.experts = q->eap;
}

static int mix_profile(dreq *q, const t2_profile *p) {
    T2__Mixture m = T2__MIXTURE__INIT;
    q->mix = m;
    size_t nm = (size_t)p->n_matrices;
    if (nm && !(q->alpha = malloc((size_t)p->n_experts * nm * sizeof(float))))
        return t2_err_set(T2_ENOMEM, "out of memory");
    if (nm) memcpy(q->alpha, p->alpha, (size_t)p->n_experts * nm * sizeof(float));
    for (int i = 0; i < p->n_experts; i++) {
        T2__ExpertAlpha e = T2__EXPERT_ALPHA__INIT;
        q->ea[i] = e;
        q->ea[i].expert =
            (char *)p->experts[i]; /* the profile outlives the submit (packed there) */
        if (nm) {
            q->ea[i].n_matrix_alpha = nm;
            q->ea[i].matrix_alpha = q->alpha + (size_t)i * nm;
        } else {
            q->ea[i].has_alpha = 1;
            q->ea[i].alpha = p->alpha[i];
        }
        q->eap[i] = &q->ea[i];
    }
    q->mix.n_experts = (size_t)p->n_experts;
    q->mix.experts = q->eap;
    return 0;
}


/* The text pass 1 classifies: the prompt, or a conversation's last user message. */
static int pass1_text(const T2__Task *t, ProtobufCBinaryData *out) {
    if (t->has_prompt) {
        *out = t->prompt;
        return 0;
    }
    for (size_t i = t->n_messages; i-- > 0;)
        if (!strcmp(t->messages[i]->role, "user")) {
            out->data = (uint8_t *)t->messages[i]->content;
            out->len = strlen(t->messages[i]->content);
            return 0;
        }
    return t2_err_set(T2_EINVAL, t->n_messages ? "pass 1 classifies a user message: this "
                      "conversation has none" : "pass 1 classifies a text prompt: this task "
                      "has token ids");
}

static void start(dsp *d, dreq *q) {
    const T2__Job *jm = t2_job_msg(q->job);
    const T2__Task *t = jm->task;
    int mode = t->adaptation && t->adaptation->has_mode ? (int)t->adaptation->mode
                                                        : T2__ADAPT_MODE__ADAPT_NONE;
    q->t0 = now_ms();
    q->pass1_ms = 0;
    if (t->has_kind && t->kind == T2__KIND__KIND_CLASSIFY) {
        fail(d, q, T2_EINVAL, "%s serves generate tasks; send classifications to %s",
             d->c->dispatcher.service, d->c->dispatcher.classify_service);
        return;
    }
    switch (mode) {
    case T2__ADAPT_MODE__ADAPT_NONE:
    case T2__ADAPT_MODE__ADAPT_MIXTURE: send_generate(d, q, NULL); return;
    case T2__ADAPT_MODE__ADAPT_PROFILE: {
        const t2_profile *p = NULL;
        int rc = profile_get(d, t->adaptation->profile, &p);
        if (rc < 0 || (rc = mix_profile(q, p)) < 0) {
            fail(d, q, rc, "%s", t2_err_msg());
            return;
        }
        snprintf(q->label, sizeof q->label, "%s", p->name);
        send_mixture(d, q);
        return;
    }
    case T2__ADAPT_MODE__ADAPT_PROMPT:
    case T2__ADAPT_MODE__ADAPT_CLASSIFIER: {
        T2__Task ct = T2__TASK__INIT;
        ct.has_kind = 1;
        ct.kind = T2__KIND__KIND_CLASSIFY;
        ct.has_prompt = 1;
        if (pass1_text(t, &ct.prompt) < 0) {
            fail(d, q, T2_EINVAL, "%s", t2_err_msg());
            return;
        }
        T2__Sampling s = T2__SAMPLING__INIT;
        s.has_temperature = 1;
        s.temperature = 0;
        s.has_seed = 1;
        s.seed = 1;
        ct.sampling = &s;
        T2__Adaptation ad = T2__ADAPTATION__INIT;
        ad.has_mode = 1;
        ad.mode = mode == T2__ADAPT_MODE__ADAPT_CLASSIFIER ? T2__ADAPT_MODE__ADAPT_CLASSIFIER
                                                           : T2__ADAPT_MODE__ADAPT_NONE;
        ct.adaptation = &ad;
        uint32_t to = time_left(q, (uint32_t)d->c->dispatcher.classify_timeout_ms);
        if (t2_client_submit(d->cl, d->c->dispatcher.classify_service, &ct, to, &q->out_id) < 0) {
            fail(d, q, T2_EINVAL, "pass 1: %s", t2_err_msg());
            return;
        }
        q->phase = PH_CLASSIFY;
        return;
    }
    }
    fail(d, q, T2_EINVAL, "adaptation mode %d unknown", mode);
}

/* Pass 1 answered: the label picks the expert. */
static void on_label(dsp *d, dreq *q, const T2__Result *res) {
    q->pass1_ms = now_ms() - q->t0;
    const char *label = res->label ? res->label : "other";
    int l = T2_CFG_LABEL_OTHER;
    for (int i = 0; i < T2_CFG_N_LABELS; i++)
        if (!strcmp(label, label_names[i])) l = i;
    snprintf(q->label, sizeof q->label, "%s", label_names[l]);
    q->has_label = 1;
    mix_one(q, d->c->dispatcher.labels[l]);
    T2_DEBUG("request %" PRIu64 ": label %s -> %s", t2_job_msg(q->job)->request_id, q->label,
             d->c->dispatcher.labels[l] ? d->c->dispatcher.labels[l] : "base");
    send_mixture(d, q);
}

static void on_event(dsp *d, const t2_client_event *ev) {
    dreq *q = NULL;
    for (int i = 0; i < d->n && !q; i++)
        if (d->r[i].phase != PH_FREE && d->r[i].out_id == ev->request_id) q = &d->r[i];
    if (!q) return;
    const char *pass = q->phase == PH_CLASSIFY ? "pass 1 (classify)" : "pass 2 (generate)";
    if (ev->type == T2_CLIENT_ERROR) {
        fail(d, q, ev->code, "%s: %s", pass, ev->message);
        return;
    }
    if (q->phase == PH_CLASSIFY) {
        if (ev->type == T2_CLIENT_RESULT) on_label(d, q, ev->result);
        return;
    }
    if (ev->type == T2_CLIENT_CHUNK) {
        const T2__Chunk *ch = ev->chunk;
        int rc = t2_worker_send_chunk(d->w, q->job, ch->has_text ? ch->text.data : NULL,
                                      ch->has_text ? ch->text.len : 0, ch->tokens, ch->n_tokens);
        if (rc == T2_ECANCELLED) { /* our client went away: stop the work */
            t2_client_cancel(d->cl, q->out_id);
            req_free(q);
        }
        return;
    }
    if (ev->type != T2_CLIENT_RESULT) return;
    T2__Result r = *ev->result;
    const T2__Job *jm = t2_job_msg(q->job);
    if (q->has_label || q->label[0]) r.label = q->label;
    if (q->has_label) {
        r.has_pass1_ms = 1;
        r.pass1_ms = q->pass1_ms;
    }
    r.has_pass2_ms = 1;
    r.pass2_ms = now_ms() - q->t1;
    int rc = t2_worker_send_result(d->w, q->job, &r);
    if (rc < 0) T2_DEBUG("request %" PRIu64 ": result not sent: %s", jm->request_id, t2_err_msg());
    d->answered++;
    req_free(q);
}

/* Requests whose client cancelled (or that the router took back): stop their outbound work. */
static void check_cancels(dsp *d) {
    for (int i = 0; i < d->n; i++) {
        dreq *q = &d->r[i];
        if (q->phase == PH_FREE || !t2_worker_cancelled(d->w, q->job)) continue;
        if (q->out_id) t2_client_cancel(d->cl, q->out_id);
        if (t2_job_was_cancelled(q->job))
            t2_worker_send_error(d->w, q->job, T2_ECANCELLED, "cancelled");
        req_free(q);
    }
}

static const char usage[] =
    "usage: t2-dispatcher -c FILE [--endpoint E] [--log-level L] [--pid-file F]\n"
    "  -c, --config FILE   the deployment file (deploy/t2.cfg): services, labels, profiles\n"
    "  --endpoint E        the router (overrides router.endpoint)\n"
    "  --log-level L       error, warn, info, debug (overrides dispatcher.log_level)\n"
    "  --pid-file F        write the pid there (SIGTERM it to stop)\n";

typedef struct {
    const char *cfg_path, *endpoint, *level, *pid_file;
} dsp_args;

/* The command line: -1 to go on, else the exit status (0 after --help, 2 after the message). */
static int parse_args(int argc, char **argv, dsp_args *a) {
    const t2_arg flags[] = {{"--config", "-c", &a->cfg_path},
                            {"--endpoint", NULL, &a->endpoint},
                            {"--log-level", NULL, &a->level},
                            {"--pid-file", NULL, &a->pid_file}};
    int ex = t2_args_main("t2-dispatcher", usage, argc, argv, 1, flags,
                          sizeof flags / sizeof *flags);
    if (ex >= 0) return ex;
    if (!a->cfg_path) {
        fprintf(stderr, "t2-dispatcher: no configuration: give -c FILE\n%s", usage);
        return 2;
    }
    return -1;
}

static void install_signals(void) {
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_signal;
    sigemptyset(&sa.sa_mask);
    sigaction(SIGTERM, &sa, NULL);
    sigaction(SIGINT, &sa, NULL);
    signal(SIGPIPE, SIG_IGN);
}

/* The request slots, the worker serving dispatcher.service and the client of the workers'
 * services, both on zctx and the router at ep. */
static int dsp_connect(dsp *d, void *zctx, const char *ep) {
    const t2_conf *c = d->c;
    char name[128], host[64] = "host";
    gethostname(host, sizeof host - 1);
    snprintf(name, sizeof name, "dispatcher/%.40s:%d", host, (int)getpid());
    t2_name_sanitize(name); /* a name the router accepts */
    t2_worker_opts wo = t2_worker_opts_default(c->dispatcher.service);
    wo.capacity = (uint32_t)c->dispatcher.capacity;
    wo.name = name;
    wo.heartbeat_ms = c->router.heartbeat_ms;
    wo.relay = 1; /* its jobs wait on the classify and generate queues */
    wo.liveness = c->router.liveness;
    t2_backoff_schedule(c->router.heartbeat_ms, &wo.reconnect_ms, &wo.reconnect_max_ms);
    t2_client_opts co = t2_client_opts_default();
    co.heartbeat_ms = c->router.heartbeat_ms;
    co.liveness = c->router.liveness;
    /* the model the deployment serves: the router may refuse registrations of another */
    char sha[65];
    if (c->security.pin_model && c->model.path && t2_sha256_file(c->model.path, sha) == 0)
        wo.model_sha256 = sha; /* (hashing a large model takes seconds: only when it is used) */
    t2_curve_client cc;
    int rc;
    if (c->security.curve) {
        rc = t2_curve_load_client(c->security.router_public, c->security.dispatcher_key, &cc);
        if (rc < 0) return rc;
        wo.curve = co.curve = &cc;
    }
    if (!(d->r = calloc((size_t)d->n, sizeof *d->r)))
        return t2_err_set(T2_ENOMEM, "out of memory");
    if ((rc = t2_worker_new(&d->w, zctx, ep, &wo)) < 0) return rc;
    return t2_client_new(&d->cl, zctx, ep, &co);
}

/* New requests from the router: each takes a free slot and starts, or is refused busy. */
static void accept_jobs(dsp *d) {
    t2_job *job;
    while (t2_worker_recv(d->w, &job, 0) == 1) {
        dreq *q = NULL;
        for (int i = 0; i < d->n && !q; i++)
            if (d->r[i].phase == PH_FREE) q = &d->r[i];
        d->requests++;
        if (!q) {
            t2_worker_send_error(d->w, job, T2_EBUSY, "dispatcher full (%d requests)", d->n);
            t2_job_destroy(&job);
            continue;
        }
        memset(q, 0, sizeof *q);
        q->job = job;
        q->phase = PH_CLASSIFY; /* taken; start() sets the real phase or frees it */
        start(d, q);
    }
}

/* The poll loop over both sockets, until a signal. */
static void serve(dsp *d) {
    t2_client_event ev = {0};
    int poll_ms = d->c->router.heartbeat_ms / 2 > 0 ? d->c->router.heartbeat_ms / 2 : 1;
    if (poll_ms > 100) poll_ms = 100;
    while (!stop_flag) {
        zmq_pollitem_t items[2];
        int ni = 0;
        void *ws = t2_worker_socket(d->w), *cs = t2_client_socket(d->cl);
        if (ws) items[ni++] = (zmq_pollitem_t){ws, 0, ZMQ_POLLIN, 0};
        if (cs) items[ni++] = (zmq_pollitem_t){cs, 0, ZMQ_POLLIN, 0};
        if (ni)
            zmq_poll(items, ni, poll_ms);
        else
            usleep((useconds_t)poll_ms * 1000);
        accept_jobs(d);
        while (t2_client_recv(d->cl, &ev, 0) == 1)
            on_event(d, &ev);
        check_cancels(d);
    }
    t2_client_event_clear(&ev);
}

int main(int argc, char **argv) {
    dsp_args a = {0};
    int rc = parse_args(argc, argv, &a);
    if (rc >= 0) return rc;
    t2_log_set_role("dispatcher", -1);
    t2_log_level = T2_LOG_INFO;
    t2_conf c;
    if (t2_conf_load(&c, a.cfg_path, NULL) < 0 ||
        t2_log_set_level_str(a.level ? a.level : c.dispatcher.log_level) < 0) {
        fprintf(stderr, "t2-dispatcher: %s\n", t2_err_msg());
        t2_conf_free(&c);
        return 1;
    }
    install_signals();
    dsp dd, *d = &dd;
    memset(d, 0, sizeof *d);
    d->c = &c;
    d->n = c.dispatcher.capacity;
    rc = 1;
    void *zctx = zmq_ctx_new();
    const char *ep = a.endpoint ? a.endpoint : c.router.endpoint;
    if (!zctx || dsp_connect(d, zctx, ep) < 0) {
        fprintf(stderr, "t2-dispatcher: %s\n", zctx ? t2_err_msg() : "zmq_ctx_new failed");
    } else {
        if (a.pid_file) {
            FILE *pf = fopen(a.pid_file, "w");
            if (pf) {
                fprintf(pf, "%d\n", (int)getpid());
                fclose(pf);
            }
        }
        T2_INFO("serving %s at %s (capacity %d): pass 1 on %s, pass 2 on %s",
                c.dispatcher.service, ep, d->n, c.dispatcher.classify_service,
                c.dispatcher.generate_service);
        serve(d);
        T2_INFO("stopping: requests %" PRIu64 ", answered %" PRIu64 ", failed %" PRIu64,
                d->requests, d->answered, d->failed);
        rc = 0;
    }
    /* goodbyes: the router requeues our requests to another dispatcher and cancels our jobs */
    t2_worker_destroy(&d->w);
    t2_client_destroy(&d->cl);
    for (int i = 0; d->r && i < d->n; i++)
        req_free(&d->r[i]);
    free(d->r);
    for (int i = 0; i < PROFILE_CACHE; i++)
        t2_profile_destroy(&d->prof[i].p);
    if (zctx) zmq_ctx_term(zctx);
    if (a.pid_file) unlink(a.pid_file);
    t2_conf_free(&c);
    return rc;
}
