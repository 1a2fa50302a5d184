/* t2-worker - one worker group: `mpirun -np P t2-worker -c t2.cfg [--group NAME]`.
 *
 * Every rank reads the same configuration, maps the model, loads the SVD factors and computes
 * the same layer split; rank 0 (the head) serves the router (workers/README.md), the others
 * serve the pipeline until the head shuts it down. SIGTERM / SIGINT on rank 0: goodbye to the
 * router (it requeues unfinished jobs elsewhere), every rank exits 0. The other ranks ignore
 * those signals (mpirun forwards them to all ranks; the head's shutdown stops them).
 */
#include "wk.h"

#include "engine/kernels.h"
#include "base/args.h"
#include "base/platform.h"
#include "base/t2_err.h"
#include "base/t2_log.h"

#include <signal.h>
#include <sys/prctl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static volatile int stop_flag;

static void on_signal(int sig) {
    (void)sig;
    stop_flag = 1;
}

static const char usage[] =
    "usage: mpirun -np P t2-worker -c FILE [--group NAME] [--endpoint E] [--log-level L]\n"
    "                              [--pid-file F]\n"
    "  -c, --config FILE   the deployment file (deploy/t2.cfg)\n"
    "  --group NAME        take this group's overrides from the file's groups list\n"
    "  --endpoint E        the router (overrides router.endpoint)\n"
    "  --log-level L       error, warn, info, debug (overrides worker.log_level)\n"
    "  --pid-file F        rank 0 writes its pid there (SIGTERM it to stop the group)\n";

typedef struct {
    const char *cfg_path, *group, *endpoint, *level, *pid_file;
} wk_args;

/* The command line: -1 to go on, else the exit status (0 after --help, 2 after the message). */
static int parse_args(int argc, char **argv, wk_args *w) {
    const t2_arg flags[] = {{"--config", "-c", &w->cfg_path},
                            {"--group", NULL, &w->group},
                            {"--endpoint", NULL, &w->endpoint},
                            {"--log-level", NULL, &w->level},
                            {"--pid-file", NULL, &w->pid_file}};
    int ex = t2_args_main("t2-worker", usage, argc, argv, 1, flags, sizeof flags / sizeof *flags);
    if (ex >= 0) return ex;
    if (!w->cfg_path) {
        fprintf(stderr, "t2-worker: no configuration: give -c FILE\n%s", usage);
        return 2;
    }
    return -1;
}

/* What a rank holds. */
typedef struct {
    int rank, size;
    t2_conf c;
    t2_model *m;
    t2_tokenizer *tok;
    t2_factors *f;
    wk_pipe *pipe;
    wk_stage st;
    int *first, staged; /* the layer split; st initialised */
} wk_rank;

/* The deployment file, with the command line's overrides. */
static int load_conf(wk_rank *w, const wk_args *a) {
    t2_conf *c = &w->c;
    int rc = t2_conf_load(c, a->cfg_path, a->group);
    if (rc == 0 && a->endpoint) {
        free(c->router.endpoint);
        if (!(c->router.endpoint = strdup(a->endpoint)))
            rc = t2_err_set(T2_ENOMEM, "out of memory");
    }
    if (rc == 0) rc = t2_log_set_level_str(a->level ? a->level : c->worker.log_level);
    if (rc == 0 && !c->model.path)
        rc = t2_err_set(T2_EINVAL, "%s: model.path: no model given", a->cfg_path);
    if (rc == 0 && c->group.ranks != w->size && w->rank == 0)
        T2_WARN("group %s is configured with %d ranks, running with %d", c->group.name,
                c->group.ranks, w->size);
    return rc;
}

/* Rank 0 stops on SIGTERM / SIGINT; the others ignore them (the head's shutdown stops them). */
static void install_signals(int rank) {
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = rank == 0 ? on_signal : SIG_IGN;
    sigemptyset(&sa.sa_mask);
    sigaction(SIGTERM, &sa, NULL);
    sigaction(SIGINT, &sa, NULL);
    signal(SIGPIPE, SIG_IGN);
}

/* The model, (rank 0) its tokenizer, the factors, the layer split and this rank's stage. */
static int load_stage(wk_rank *w) {
    const t2_conf *c = &w->c;
    int rc = t2_model_load(&w->m, c->model.path);
    if (rc == 0 && w->rank == 0) rc = t2_model_load_tokenizer(&w->tok, w->m, c->model.tokenizer);
    if (rc == 0 && c->model.factors) rc = t2_factors_load(&w->f, c->model.factors, w->m);
    if (rc == 0 && !(w->first = calloc((size_t)w->size + 1, sizeof *w->first)))
        rc = t2_err_set(T2_ENOMEM, "out of memory");
    if (rc == 0) rc = wk_split_layers(w->m, w->size, w->first);
    if (rc == 0) rc = wk_pipe_new(&w->pipe);
    if (rc == 0) {
        w->staged = 1;
        rc = wk_stage_init(&w->st, w->m, w->f, c, w->rank, w->size, w->first, w->pipe);
    }
    return rc;
}

/* Rank 0: what it serves, the pid file, then the router until a signal. */
static int run_head(wk_rank *w, const char *pid_file, double t0) {
    const t2_conf *c = &w->c;
    T2_INFO("%s: %d layers, %s, kernels %s, OpenBLAS %s, factors %s (%.2f s)", c->model.path,
            w->m->cfg.n_layers, t2_dtype_name(t2_model_dtype(w->m)), t2_kern_level(),
            t2_blas_corename(), c->model.factors ? c->model.factors : "none", t2_now() - t0);
    for (int r = 0; r < w->size; r++)
        T2_INFO("rank %d: layers %d..%d%s%s", r, w->first[r], w->first[r + 1] - 1,
                r == 0 ? " + embedding" : "", r == w->size - 1 ? " + classifier" : "");
    if (pid_file) {
        FILE *pf = fopen(pid_file, "w");
        if (pf) {
            fprintf(pf, "%d\n", (int)getpid());
            fclose(pf);
        } else {
            T2_WARN("cannot write the pid file %s", pid_file);
        }
    }
    return wk_head_run(&w->st, &w->c, w->tok, &stop_flag);
}

int main(int argc, char **argv) {
    t2_blas_autoselect(argv); /* the same OpenBLAS kernels as t2 run: same prompt numbers */
    wk_args a = {0};
    int rc = parse_args(argc, argv, &a);
    if (rc >= 0) return rc;
    /* short sleeps while waiting for the next rank must be short: the default timer slack
     * (50 us) would add itself to every wait of the pipeline */
    prctl(PR_SET_TIMERSLACK, 1000UL, 0, 0, 0);
    /* FUNNELED: the head's tokenizer thread (wk_tok.c) and the compute pool never call MPI */
    int provided;
    MPI_Init_thread(&argc, &argv, MPI_THREAD_FUNNELED, &provided);
    wk_rank w;
    memset(&w, 0, sizeof w);
    MPI_Comm_rank(MPI_COMM_WORLD, &w.rank);
    MPI_Comm_size(MPI_COMM_WORLD, &w.size);
    t2_log_set_role("worker", w.rank);
    t2_log_level = T2_LOG_INFO;
    rc = load_conf(&w, &a);
    install_signals(w.rank);
    double t0 = t2_now();
    if (rc == 0) rc = load_stage(&w);
    if (rc < 0) T2_ERROR("%s", t2_err_msg());
    /* every rank must be ready, or all stop */
    int worst = rc;
    MPI_Allreduce(&rc, &worst, 1, MPI_INT, MPI_MIN, MPI_COMM_WORLD);
    if (worst == 0 && w.rank == 0) {
        if ((rc = run_head(&w, a.pid_file, t0)) < 0) T2_ERROR("%s", t2_err_msg());
    } else if (worst == 0 && (rc = wk_stage_serve(&w.st)) < 0) {
        T2_ERROR("%s", t2_err_msg());
        MPI_Abort(MPI_COMM_WORLD, 1);
    } else if (worst < 0 && rc == 0) {
        T2_ERROR("another rank failed to start");
    }
    if (w.staged) wk_stage_free(&w.st);
    wk_pipe_destroy(&w.pipe);
    free(w.first);
    t2_factors_destroy(&w.f);
    t2_tok_destroy(&w.tok);
    t2_model_destroy(&w.m);
    if (w.rank == 0 && a.pid_file && worst == 0) unlink(a.pid_file);
    t2_conf_free(&w.c);
    MPI_Finalize();
    return worst < 0 || rc < 0 ? 1 : 0;
}
