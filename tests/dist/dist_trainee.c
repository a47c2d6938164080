/* A small training run over tg_dist, for tests/dist/run_dist_tests.py.
 *
 * An embedding + 2-layer LSTM (dropout between layers) + linear model is
 * trained with Adam and gradient clipping on random token sequences, each
 * global batch of B rows cut into S shards; run by one process or under
 * mpirun, each rank running its share of the shards through tg_dist_run.
 * Every rank writes its final parameters (raw tg_real bytes) to
 * OUT.rank<r>.bin and "steps <n> loss <x>" to OUT.rank<r>.txt, so the driver
 * can compare them bitwise across ranks and with the one-process run.
 *
 * Fault switches (each takes a rank): --perturb-rank changes one parameter
 * there before the start-up check, --config-rank changes its configuration
 * string, --fail-read-rank makes its data "unreadable" (tg_dist_abort),
 * --stop-rank with --stop-step asks that rank to stop at that step (all must
 * stop there). --sleep-ms slows each step and --pidfile writes PREFIX.rank<r>
 * for the killed-rank case. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "tapegrad.h"
#include "tg_dist.h"
#include "tg_layers.h"
#include "tg_optim.h"

enum { VOCAB = 13, DIM = 8, HIDDEN = 16, LAYERS = 2, T = 6, B = 8, MAX_SHARDS = 8 };

typedef struct model {
    tg_embed emb;
    tg_rnn_stack rnn;
    tg_linear out;
} model;

typedef struct opts {
    int steps, shards, threads, sleep_ms;
    int perturb_rank, config_rank, fail_read_rank, stop_rank, stop_step;
    const char *out, *pidfile;
} opts;

typedef struct run {
    const opts *o;
    model shard_model[MAX_SHARDS];
    int ids[T * B], targets[T * B]; /* this step's global batch, row-major per row */
    int step;
} run;

static int model_init(model *m, tg_params *p, tg_rng *r)
{
    return tg_embed_init(&m->emb, p, "emb", VOCAB, DIM, r) ||
           tg_rnn_stack_init(&m->rnn, p, "rnn", &tg_cell_lstm, DIM, HIDDEN, LAYERS, 0.2, r) ||
           tg_linear_init(&m->out, p, "out", HIDDEN, VOCAB, r);
}

/* The same global batch on every rank: drawn from a stream seeded by the step. */
static void make_batch(run *r)
{
    tg_rng g;
    tg_rng_seed(&g, 1000u + (uint64_t)r->step);
    for (int i = 0; i < T * B; i++) r->ids[i] = (int)tg_rng_below(&g, VOCAB);
    for (int i = 0; i < T * B; i++) r->targets[i] = (r->ids[i] * 3 + 1) % VOCAB;
}

/* Shard s: rows B*s/S .. B*(s+1)/S-1, time-major inside the shard; its
 * loss scaled by rows/B so that the shards add up to the batch mean. */
static double shard_fn(int s, tg_tape *t, tg_params *p, void *ctx)
{
    (void)p;
    run *r = ctx;
    int S = r->o->shards, r0 = B * s / S, n = B * (s + 1) / S - r0;
    int *ids = tg_tape_ints(t, (size_t)(T * n)), *tg = tg_tape_ints(t, (size_t)(T * n));
    for (int k = 0; k < T; k++)
        for (int b = 0; b < n; b++) {
            ids[k * n + b] = r->ids[(r0 + b) * T + k];
            tg[k * n + b] = r->targets[(r0 + b) * T + k];
        }
    tg_rng drop; /* per step and global shard: the same on any number of ranks */
    tg_rng_seed(&drop, 77u * (uint64_t)r->step + (uint64_t)s);
    const model *m = &r->shard_model[s];
    tg_rnn_run in = {.T = T, .B = n, .emb = &m->emb, .ids = ids, .dropout_rng = &drop};
    tg_tensor *h = tg_rnn_forward(t, &m->rnn, &in);
    tg_tensor *loss = tg_scale(t, tg_softmax_xent(t, tg_linear_forward(t, &m->out, h), tg, -1),
                               (double)n / B);
    tg_backward(t, loss);
    return (double)loss->data[0];
}

static int parse(int argc, char **argv, opts *o)
{
    *o = (opts){.steps = 10, .shards = 4, .threads = 1, .perturb_rank = -1, .config_rank = -1,
                .fail_read_rank = -1, .stop_rank = -1, .stop_step = -1, .out = "dist_out"};
    for (int i = 1; i + 1 < argc; i += 2) {
        const char *k = argv[i], *v = argv[i + 1];
        int iv = atoi(v);
        if (!strcmp(k, "--steps")) o->steps = iv;
        else if (!strcmp(k, "--shards")) o->shards = iv;
        else if (!strcmp(k, "--threads")) o->threads = iv;
        else if (!strcmp(k, "--sleep-ms")) o->sleep_ms = iv;
        else if (!strcmp(k, "--perturb-rank")) o->perturb_rank = iv;
        else if (!strcmp(k, "--config-rank")) o->config_rank = iv;
        else if (!strcmp(k, "--fail-read-rank")) o->fail_read_rank = iv;
        else if (!strcmp(k, "--stop-rank")) o->stop_rank = iv;
        else if (!strcmp(k, "--stop-step")) o->stop_step = iv;
        else if (!strcmp(k, "--out")) o->out = v;
        else if (!strcmp(k, "--pidfile")) o->pidfile = v;
        else return -1;
    }
    return (argc % 2 == 1 && o->shards >= 1 && o->shards <= MAX_SHARDS) ? 0 : -1;
}

static void write_outputs(const opts *o, int rank, tg_params *p, int steps, double loss)
{
    char path[512];
    snprintf(path, sizeof path, "%s.rank%d.bin", o->out, rank);
    FILE *f = fopen(path, "wb");
    if (!f || fwrite(tg_params_data(p), sizeof(tg_real), tg_params_numel(p), f) !=
                  tg_params_numel(p) || fclose(f) != 0) {
        fprintf(stderr, "cannot write %s\n", path);
        exit(1);
    }
    snprintf(path, sizeof path, "%s.rank%d.txt", o->out, rank);
    f = fopen(path, "w");
    if (!f) exit(1);
    fprintf(f, "steps %d loss %.17g\n", steps, loss);
    fclose(f);
}

static void sleep_ms(int ms)
{
    struct timespec ts = {ms / 1000, (long)(ms % 1000) * 1000000L};
    nanosleep(&ts, NULL);
}

/* Start-up: the same parameters and configuration on every rank. */
static void check_same(tg_dist *d, const opts *o, tg_params *p)
{
    char err[256], config[128];
    int rank = tg_dist_rank(d);
    if (rank == o->perturb_rank) tg_params_data(p)[3] += (tg_real)0.5; /* byte 12 in float */
    snprintf(config, sizeof config, "shards=%d hidden=%d%s", o->shards, HIDDEN,
             rank == o->config_rank ? " lr=0.5" : "");
    if (tg_dist_check_same(d, tg_params_data(p), tg_params_numel(p) * sizeof(tg_real), "parameters",
                           err, sizeof err) != 0 ||
        tg_dist_check_same(d, config, strlen(config), "configuration", err, sizeof err) != 0) {
        if (rank == 0) fprintf(stderr, "dist_trainee: %s\n", err);
        tg_dist_finalize(d);
        exit(2);
    }
}

int main(int argc, char **argv)
{
    char err[256];
    tg_dist *d = tg_dist_init(&argc, &argv, err, sizeof err);
    if (!d) {
        fprintf(stderr, "dist_trainee: %s\n", err);
        return 1;
    }
    opts o;
    if (parse(argc, argv, &o) != 0) tg_dist_abort(d, 64, "usage: dist_trainee [--steps K] ...");
    int rank = tg_dist_rank(d);
    if (o.pidfile) {
        char path[512];
        snprintf(path, sizeof path, "%s.rank%d", o.pidfile, rank);
        FILE *f = fopen(path, "w");
        if (!f) tg_dist_abort(d, 1, "cannot write %s", path);
        fprintf(f, "%ld\n", (long)getpid());
        fclose(f);
    }
    if (rank == o.fail_read_rank) tg_dist_abort(d, 3, "cannot read the data file 'no/such/file'");

    run r = {.o = &o};
    tg_params *p = tg_params_new();
    tg_rng init;
    tg_rng_seed(&init, 42);
    model master;
    if (!p || model_init(&master, p, &init)) tg_dist_abort(d, 1, "out of memory");
    tg_workers *w = tg_workers_new(p, o.shards, 1u << 20);
    if (!w) tg_dist_abort(d, 1, "out of memory (workers)");
    for (int s = 0; s < o.shards; s++)
        if (model_init(&r.shard_model[s], tg_workers_params(w, s), &init))
            tg_dist_abort(d, 1, "out of memory (shard %d)", s);
    tg_blas_set_threads(1);
    if (tg_dist_attach(d, w, err, sizeof err) != 0) tg_dist_abort(d, 2, "%s", err);
    check_same(d, &o, p);

    tg_optim_config oc = tg_optim_defaults(TG_OPTIM_ADAM);
    oc.lr = 1e-2;
    tg_optim *opt = tg_optim_new(&oc, tg_params_numel(p), err, sizeof err);
    if (!opt) tg_dist_abort(d, 1, "%s", err);
    double loss = NAN;
    int done = 0;
    for (r.step = 0; r.step < o.steps; r.step++) {
        int stop_here = rank == o.stop_rank && r.step == o.stop_step;
        if (tg_dist_any(d, stop_here)) break; /* any rank's request stops all here */
        make_batch(&r);
        /* tg_dist_run sets the gradient: what it held must not matter */
        for (size_t i = 0; i < tg_params_numel(p); i++) tg_params_grad(p)[i] = (tg_real)NAN;
        loss = tg_dist_run(d, w, o.threads, shard_fn, &r);
        if (tg_dist_any(d, !isfinite(loss))) tg_dist_abort(d, 4, "non-finite loss at step %d", r.step);
        tg_clip_grad_norm(p, 1.0);
        tg_optim_step(opt, p);
        done++;
        if (o.sleep_ms) sleep_ms(o.sleep_ms);
    }
    write_outputs(&o, rank, p, done, loss);
    if (rank == 0)
        printf("steps %d loss %.9g comm %.6f s\n", done, loss, tg_dist_comm_seconds(d));
    tg_optim_free(opt);
    tg_workers_free(w);
    tg_params_free(p);
    tg_dist_finalize(d);
    return 0;
}
