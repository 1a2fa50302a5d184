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

int main(int argc, char **argv) {
    t2_blas_autoselect(argv); /* the same OpenBLAS kernels as t2 run: same prompt numbers */
    const char *cfg_path = NULL, *group = NULL, *endpoint = NULL, *level = NULL, *pid_file = NULL;
    const t2_arg flags[] = {{"--config", "-c", &cfg_path},
                            {"--group", NULL, &group},
                            {"--endpoint", NULL, &endpoint},
                            {"--log-level", NULL, &level},
                            {"--pid-file", NULL, &pid_file}};
    int ex = t2_args_main("t2-worker", usage, argc, argv, 1, flags, sizeof flags / sizeof *flags);
    if (ex >= 0) return ex;
    if (!cfg_path) {
        fprintf(stderr, "t2-worker: no configuration: give -c FILE\n%s", usage);
        return 2;
    }
    /* short sleeps while waiting for the next rank must be short: the default timer slack
     * (50 us) would add itself to every wait of the pipeline */
    prctl(PR_SET_TIMERSLACK, 1000UL, 0, 0, 0);
    MPI_Init(&argc, &argv);
    int rank = 0, size = 1;
    MPI_Comm_rank(MPI_COMM_WORLD, &rank);
    MPI_Comm_size(MPI_COMM_WORLD, &size);
    t2_log_set_role("worker", rank);
    t2_log_level = T2_LOG_INFO;

    t2_conf c;
    t2_model *m = NULL;
    t2_tokenizer *tok = NULL;
    t2_factors *f = NULL;
    wk_pipe *pipe = NULL;
    wk_stage st;
    int *first = NULL, staged = 0;
    memset(&st, 0, sizeof st);
    int rc = t2_conf_load(&c, cfg_path, group);
    if (rc == 0 && endpoint) {
        free(c.router.endpoint);
        if (!(c.router.endpoint = strdup(endpoint))) rc = t2_err_set(T2_ENOMEM, "out of memory");
    }
    if (rc == 0) rc = t2_log_set_level_str(level ? level : c.worker.log_level);
    if (rc == 0 && !c.model.path)
        rc = t2_err_set(T2_EINVAL, "%s: model.path: no model given", cfg_path);
    if (rc == 0 && c.group.ranks != size && rank == 0)
        T2_WARN("group %s is configured with %d ranks, running with %d", c.group.name,
                c.group.ranks, size);

    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = rank == 0 ? on_signal : SIG_IGN;
    sigemptyset(&sa.sa_mask);
    sigaction(SIGTERM, &sa, NULL);
    sigaction(SIGINT, &sa, NULL);
    signal(SIGPIPE, SIG_IGN);

    double t0 = t2_now();
    if (rc == 0) rc = t2_model_load(&m, c.model.path);
    if (rc == 0 && rank == 0) rc = t2_model_load_tokenizer(&tok, m, c.model.tokenizer);
    if (rc == 0 && c.model.factors) rc = t2_factors_load(&f, c.model.factors, m);
    if (rc == 0 && !(first = calloc((size_t)size + 1, sizeof *first)))
        rc = t2_err_set(T2_ENOMEM, "out of memory");
    if (rc == 0) rc = wk_split_layers(m, size, first);
    if (rc == 0) rc = wk_pipe_new(&pipe);
    if (rc == 0) {
        staged = 1;
        rc = wk_stage_init(&st, m, f, &c, rank, size, first, pipe);
    }
    if (rc < 0) T2_ERROR("%s", t2_err_msg());
    /* every rank must be ready, or all stop */
    int worst = rc;
    MPI_Allreduce(&rc, &worst, 1, MPI_INT, MPI_MIN, MPI_COMM_WORLD);
    if (worst == 0) {
        if (rank == 0) {
            T2_INFO("%s: %d layers, %s, kernels %s, OpenBLAS %s, factors %s (%.2f s)", c.model.path,
                    m->cfg.n_layers, t2_dtype_name(t2_model_dtype(m)), t2_kern_level(),
                    t2_blas_corename(), c.model.factors ? c.model.factors : "none", t2_now() - t0);
            for (int r = 0; r < size; r++)
                T2_INFO("rank %d: layers %d..%d%s%s", r, first[r], first[r + 1] - 1,
                        r == 0 ? " + embedding" : "", r == size - 1 ? " + classifier" : "");
            if (pid_file) {
                FILE *pf = fopen(pid_file, "w");
                if (pf) {
                    fprintf(pf, "%d\n", (int)getpid());
                    fclose(pf);
                } else {
                    T2_WARN("cannot write the pid file %s", pid_file);
                }
            }
            rc = wk_head_run(&st, &c, tok, &stop_flag);
            if (rc < 0) T2_ERROR("%s", t2_err_msg());
        } else {
            rc = wk_stage_serve(&st);
            if (rc < 0) {
                T2_ERROR("%s", t2_err_msg());
                MPI_Abort(MPI_COMM_WORLD, 1);
            }
        }
    } else if (rc == 0) {
        T2_ERROR("another rank failed to start");
    }
    if (staged) wk_stage_free(&st);
    wk_pipe_destroy(&pipe);
    free(first);
    t2_factors_destroy(&f);
    t2_tok_destroy(&tok);
    t2_model_destroy(&m);
    if (rank == 0 && pid_file && worst == 0) unlink(pid_file);
    t2_conf_free(&c);
    MPI_Finalize();
    return worst < 0 || rc < 0 ? 1 : 0;
}
