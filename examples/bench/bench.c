/* bench: training throughput of a recurrent model on synthetic data.
 *
 * One step = forward over the sequence, softmax cross-entropy on every step,
 * backward, then the programs' end of a step (trainrun.h: the non-finite
 * guard, the gradient norm) and a plain SGD update (lr 0.05, like the
 * PyTorch anchor ../shared/anchors/torch_rnn_bench.py). After a warm-up the step loop is
 * timed in --windows windows filling --seconds; figures are the median
 * window's. Tokens of a step: batch * seq (seq2seq: batch * (src + tgt)).
 *
 * The model is built from public API only, the way the programs build theirs
 * (tg_rnn_forward fed by ids, the library's cells); --fold-embed=0 and the
 * *-composed cells switch off levers BENCHMARKS.md measures.
 *
 * Threads: the minibatch is split into --shards shards (default max(2,
 * threads), at most one per row), each trained by a worker with its own tape
 * and arena; gradients are added in shard order, so for a fixed --shards the
 * trained weights do not depend on --threads (the default gives 1 and 2
 * threads the same weights). With one shard, only large element-wise loops
 * go parallel, and OpenBLAS's own pool on request (--blas-threads).
 *
 * --attention general trains the seq2seq program's attention model (Luong
 * general, input feeding: config g of BENCHMARKS.md).
 *
 * --task overhead measures the engine's fixed cost per op: recording a tiny
 * (1x1) op on the tape and replaying its VJP in backward, in nanoseconds. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>
#include <unistd.h>

#include "bench_model.h"
#include "cli.h"
#include "peak.h"
#include "tg_optim.h"
#include "trainrun.h"

static const char *prog = "bench";

typedef struct bench_opts {
    const char *task, *cell, *log, *attention;
    int vocab, embed, hidden, layers, seq, batch, threads, shards, windows, blas_threads;
    int src_vocab, tgt_vocab, src_len, tgt_len, fold_embed;
    double seconds, warmup, lr, max_wait;
    uint64_t seed;
} bench_opts;

static double peak_rss_mb(void)
{
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    return ru.ru_maxrss / 1024.0; /* Linux: kilobytes */
}

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

static double median(double *v, int n)
{
    qsort(v, (size_t)n, sizeof *v, cmp_double);
    return n % 2 ? v[n / 2] : 0.5 * (v[n / 2 - 1] + v[n / 2]);
}

/* ------------------------------------------------------------------ machine load */

/* On a shared machine, how many CPUs *other* processes keep busy: busy
 * ticks of /proc/stat minus this process's own (the method of the PyTorch
 * anchor script, so both sides report load the same way). */
typedef struct load_sample {
    double t;
    long long busy, own;
} load_sample;

static load_sample load_now(void)
{
    load_sample s = {tg_clock_seconds(), 0, 0};
    long long v[8] = {0};
    FILE *f = fopen("/proc/stat", "r");
    if (f) {
        if (fscanf(f, "cpu %lld %lld %lld %lld %lld %lld %lld %lld", &v[0], &v[1], &v[2], &v[3],
                   &v[4], &v[5], &v[6], &v[7]) == 8)
            s.busy = v[0] + v[1] + v[2] + v[5] + v[6] + v[7]; /* user nice sys irq softirq steal */
        fclose(f);
    }
    f = fopen("/proc/self/stat", "r");
    if (f) {
        char buf[1024];
        size_t n = fread(buf, 1, sizeof buf - 1, f);
        buf[n] = '\0';
        const char *p = strrchr(buf, ')');
        long long ut = 0, st = 0;
        /* after the command name: state, then 10 fields, then utime stime */
        if (p &&
            sscanf(p + 1, " %*c %*d %*d %*d %*d %*d %*u %*u %*u %*u %*u %lld %lld", &ut, &st) == 2)
            s.own = ut + st;
        fclose(f);
    }
    return s;
}

static double other_cpus(load_sample a, load_sample b)
{
    double dt = b.t - a.t, hz = (double)sysconf(_SC_CLK_TCK);
    double v = dt > 0 ? ((double)(b.busy - a.busy) - (double)(b.own - a.own)) / hz / dt : 0;
    return v > 0 ? v : 0;
}

/* Waits (at most max_wait seconds, probing each second) until other
 * processes leave `threads` CPUs free; returns the last load seen. */
static double wait_idle(double max_wait, int threads)
{
    long ncpu = sysconf(_SC_NPROCESSORS_ONLN);
    double limit = (double)ncpu - threads + 0.15, load = 0;
    if (limit < 0.15) limit = 0.15;
    double end = tg_clock_seconds() + max_wait;
    do {
        load_sample a = load_now();
        struct timespec ts = {0, 500000000};
        nanosleep(&ts, NULL);
        load = other_cpus(a, load_now());
    } while (load >= limit && tg_clock_seconds() < end);
    return load;
}

/* ------------------------------------------------------------------ training */

typedef struct trainer {
    bench_model model;
    tg_optim *opt;
    tgx_run run; /* the programs' step: guard, norm, update (trainrun.h) */
    int threads;
    double tokens; /* per step */
    double last_loss;
} trainer;

static void train_step(trainer *tr)
{
    tgx_run_begin_step(&tr->run);
    tr->last_loss = bench_forward_backward(&tr->model, tr->threads);
    tgx_run_end_step(&tr->run, tr->last_loss, NAN, 1, tr->tokens);
}

/* CPU seconds of every thread of the process: on a shared machine a
 * single-thread run's CPU time per step is steadier than its wall time. */
static double cpu_seconds(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

/* Runs steps for at least `seconds`; returns the wall seconds per step and
 * the CPU seconds per step in *cpu. */
static double timed_window(trainer *tr, double seconds, long *steps_out, double *cpu)
{
    double t0 = tg_clock_seconds(), c0 = cpu_seconds(), el;
    long steps = 0;
    do {
        train_step(tr);
        steps++;
        el = tg_clock_seconds() - t0;
    } while (el < seconds);
    *steps_out = steps;
    *cpu = (cpu_seconds() - c0) / steps;
    return el / steps;
}

/* The library's cells by name, plus the composed (unfused) LSTM and GRU the
 * library keeps as references: the "before" of the fused-gate lever. */
static const tg_cell_kind *cell_kind(const char *name)
{
    if (strcmp(name, "lstm-composed") == 0) return &tg_cell_lstm_composed;
    if (strcmp(name, "gru-composed") == 0) return &tg_cell_gru_composed;
    return tg_cell_kind_by_name(name);
}

static void config_from_opts(bench_config *c, const bench_opts *o)
{
    memset(c, 0, sizeof *c);
    c->task = strcmp(o->task, "seq2seq") == 0 ? BENCH_SEQ2SEQ : BENCH_CHAR;
    c->cell = cell_kind(o->cell);
    c->vocab = o->vocab;
    c->embed = o->embed;
    c->hidden = o->hidden;
    c->layers = o->layers;
    c->seq = o->seq;
    c->batch = o->batch;
    /* the programs' default: max(2, threads) shards, at most one per row, so
     * that 1 and 2 threads train bitwise the same weights */
    c->shards = tgx_default_shards(o->shards, o->threads, o->batch);
    c->src_vocab = o->src_vocab;
    c->tgt_vocab = o->tgt_vocab;
    c->src_len = o->src_len;
    c->tgt_len = o->tgt_len;
    c->seed = o->seed;
    c->fold_embed = o->fold_embed;
    if (tg_attn_kind_by_name(o->attention, &c->attention) != 0)
        tg_cli_die_usage(prog, "--attention %s: not one of %s", o->attention, tg_attn_kind_names());
    if (c->task != BENCH_SEQ2SEQ && c->attention != TG_ATTN_NONE)
        tg_cli_die_usage(prog, "--attention needs --task seq2seq");
    if (c->task == BENCH_SEQ2SEQ && c->embed == 0)
        tg_cli_die_usage(prog, "--task seq2seq needs --embed > 0 (embedded source and target)");
    if (c->shards > c->batch)
        tg_cli_die_usage(prog, "--shards %d exceeds --batch %d (a shard needs a row)", c->shards,
                         c->batch);
}

static int run_training(const bench_opts *o)
{
    bench_config c;
    config_from_opts(&c, o);
    /* BLAS's own pool only on request, and only under a single shard: pools
     * never nest, and OpenBLAS's threads cost more than they give on the
     * small per-step products of these models (measured: BENCHMARKS.md) */
    if (o->blas_threads > 1 && c.shards > 1)
        tg_cli_die_usage(prog, "--blas-threads > 1 needs --shards 1 (thread pools would nest)");
    tg_blas_set_threads(o->blas_threads);
    trainer tr = {.threads = o->threads};
    char err[256];
    if (bench_model_init(&tr.model, &c) != 0) tg_cli_die(prog, "out of memory building the model");
    tg_optim_config oc = tg_optim_defaults(TG_OPTIM_SGD);
    oc.lr = o->lr;
    tr.opt = tg_optim_new(&oc, tg_params_numel(tr.model.params), err, sizeof err);
    if (!tr.opt) tg_cli_die_usage(prog, "%s", err);
    tgx_run_config rc = tgx_run_defaults(prog, tr.model.params, tr.opt);
    rc.threads = o->threads; /* the programs' end of step (TGX_RUN_CONFIG_FROM) */
    rc.workers = tr.model.workers; /* as the programs: the norm of the gradient they set */
    tgx_run_init(&tr.run, &rc); /* no limits, no files: the step only */
    tr.tokens = bench_step_tokens(&c);
    tg_csv log;
    if (tg_csv_open(&log, o->log, "window,steps,ms_per_step,tokens_per_s,loss", err, sizeof err))
        tg_cli_die(prog, "%s", err);

    fprintf(stderr,
            "%s: %s %s attention=%s vocab=%d embed=%d hidden=%d layers=%d seq=%d batch=%d "
            "threads=%d shards=%d fold_embed=%d params=%zu arena/shard=%.1f MB\n",
            prog, o->task, o->cell, o->attention, o->vocab, o->embed, o->hidden, o->layers, o->seq,
            o->batch, o->threads, c.shards, c.fold_embed, tg_params_numel(tr.model.params),
            tg_tape_arena_capacity(tg_workers_tape(tr.model.workers, 0)) / 1048576.0);
    long steps;
    double cpu_step;
    train_step(&tr); /* first touch of every arena page */
    timed_window(&tr, o->warmup, &steps, &cpu_step);

    double tokens = bench_step_tokens(&c), flops = bench_step_flops(&c);
    double *per = calloc((size_t)o->windows, sizeof *per);
    double *cpu = calloc((size_t)o->windows, sizeof *cpu);
    if (!per || !cpu) tg_cli_die(prog, "out of memory");
    if (o->max_wait > 0) wait_idle(o->max_wait, o->threads);
    tg_progress pr;
    tg_progress_init(&pr, stderr, 0);
    load_sample l0 = load_now();
    for (int w = 0; w < o->windows; w++) {
        per[w] = timed_window(&tr, o->seconds / o->windows, &steps, &cpu[w]);
        tg_csv_row(&log, "%d,%ld,%.4f,%.1f,%.5f", w, steps, per[w] * 1e3, tokens / per[w],
                   tr.last_loss);
        tg_progress_update(&pr, 1,
                           "window %d/%d: %ld steps, %.3f ms/step, %.0f tokens/s, loss %.4f", w + 1,
                           o->windows, steps, per[w] * 1e3, tokens / per[w], tr.last_loss);
    }
    double bg = other_cpus(l0, load_now());
    tg_progress_done(&pr);
    double lo = per[0], hi = per[0];
    for (int w = 1; w < o->windows; w++) {
        lo = per[w] < lo ? per[w] : lo;
        hi = per[w] > hi ? per[w] : hi;
    }
    double sec = median(per, o->windows);
    if (tg_csv_close(&log, err, sizeof err)) tg_cli_die(prog, "%s", err);
    if (!isfinite(tr.last_loss)) tg_cli_die(prog, "loss is not finite (%g)", tr.last_loss);
    double cpu_sec = median(cpu, o->windows);
    tg_result(
        "tokens_per_s=%.0f ms_per_step=%.3f gflops=%.1f peak_rss_mb=%.1f ms_min=%.3f "
        "ms_max=%.3f cpu_ms_per_step=%.3f threads=%d shards=%d loss=%.4f bg_cpus=%.2f blas=%s "
        "panels=%s",
        tokens / sec, sec * 1e3, flops / sec / 1e9, peak_rss_mb(), lo * 1e3, hi * 1e3,
        cpu_sec * 1e3, o->threads, c.shards, tr.last_loss, bg, tg_blas_core(), tg_panel_kernel());
    free(per);
    free(cpu);
    tgx_run_free(&tr.run);
    tg_optim_free(tr.opt);
    bench_model_free(&tr.model);
    return 0;
}

/* ------------------------------------------------------------------ overhead */

#define OVH_OPS 4096 /* ops per tape */
#define OVH_REPS 41

/* One chain of n tiny scale ops on a 1x1 leaf: pure bookkeeping, no math. */
static tg_tensor *tiny_chain(tg_tape *t, tg_tensor *x, int n)
{
    for (int i = 0; i < n; i++) x = tg_scale(t, x, 1.0);
    return x;
}

static int run_overhead(const bench_opts *o)
{
    tg_tape *t = tg_tape_new((size_t)OVH_OPS * 1024);
    tg_tensor *x = tg_tensor_alloc(1, 1, 1);
    double rec[OVH_REPS], rep[OVH_REPS], nog[OVH_REPS];
    if (!t || !x) tg_cli_die(prog, "out of memory");
    x->data[0] = 1;
    for (int r = 0; r < OVH_REPS; r++) {
        tg_tape_reset(t);
        x->grad[0] = 0;
        double t0 = tg_clock_seconds();
        tg_tensor *y = tiny_chain(t, x, OVH_OPS);
        double t1 = tg_clock_seconds();
        tg_backward(t, y);
        double t2 = tg_clock_seconds();
        tg_tape_reset(t);
        tg_tape_set_grad(t, 0);
        double t3 = tg_clock_seconds();
        tiny_chain(t, x, OVH_OPS);
        double t4 = tg_clock_seconds();
        tg_tape_set_grad(t, 1);
        rec[r] = (t1 - t0) / OVH_OPS * 1e9;
        rep[r] = (t2 - t1) / OVH_OPS * 1e9;
        nog[r] = (t4 - t3) / OVH_OPS * 1e9;
    }
    if (x->grad[0] != 1)
        tg_cli_die(prog, "overhead chain: gradient %g, expected 1", (double)x->grad[0]);
    (void)o;
    tg_result("record_ns=%.1f replay_ns=%.1f nograd_ns=%.1f ops=%d peak_rss_mb=%.1f",
              median(rec, OVH_REPS), median(rep, OVH_REPS), median(nog, OVH_REPS), OVH_OPS,
              peak_rss_mb());
    tg_tensor_free(x);
    tg_tape_free(t);
    return 0;
}

/* ------------------------------------------------------------------ peak */

static int run_peak(const bench_opts *o)
{
    const char *isa = "";
    double g = bench_peak_gflops(o->threads, o->seconds, &isa);
    tg_result("peak_gflops=%.1f per_thread=%.1f isa=%s threads=%d", g, g / o->threads, isa,
              o->threads);
    return 0;
}

/* ------------------------------------------------------------------ main */

int main(int argc, char **argv)
{
    tg_cli_adopt_blas_core(argv); /* first: it may start the program again */
    bench_opts o = {
        .task = "char",
        .cell = "lstm",
        .log = NULL,
        .attention = "none",
        .vocab = 65,
        .embed = 256,
        .hidden = 256,
        .layers = 1,
        .seq = 64,
        .batch = 32,
        .threads = 1,
        .shards = 0,
        .windows = 5,
        .blas_threads = 1,
        .src_vocab = 1000,
        .tgt_vocab = 1000,
        .src_len = 12,
        .tgt_len = 12,
        .fold_embed = 1,
        .seconds = 5,
        .warmup = 1,
        .lr = 0.05,
        .seed = 1,
    };
    const tg_flag flags[] = {
        {"task", TG_STR, &o.task,
         "char, seq2seq (LSTM-style encoder -> decoder) or overhead "
         "(ns per recorded/replayed tiny op) or peak (the CPU's FP32 FMA GFLOP/s on --threads "
         "threads for --seconds)",
         .choices = "char,seq2seq,overhead,peak"},
        {"cell", TG_STR, &o.cell, "recurrent cell (*-composed: without the fused gate op)",
         .choices = "rnn,lstm,gru,mgu,peephole,lstm-composed,gru-composed"},
        {"vocab", TG_INT, &o.vocab, "char task: vocabulary (input and output)", 2, 1 << 20, NULL},
        {"embed", TG_INT, &o.embed, "embedding width (0 = one-hot input, char task only)", 0, 65536,
         NULL},
        {"hidden", TG_INT, &o.hidden, "hidden units per layer", 1, 65536, NULL},
        {"layers", TG_INT, &o.layers, "stacked recurrent layers", 1, TG_MAX_LAYERS, NULL},
        {"seq", TG_INT, &o.seq, "char task: steps per sequence", 1, 1 << 16, NULL},
        {"batch", TG_INT, &o.batch, "sequences per step", 1, 1 << 16, NULL},
        {"attention", TG_STR, &o.attention,
         "seq2seq: the program's attention decoder with input feeding (general: config g)",
         .choices = tg_attn_kind_names()},
        {"src-vocab", TG_INT, &o.src_vocab, "seq2seq: source vocabulary", 2, 1 << 20, NULL},
        {"tgt-vocab", TG_INT, &o.tgt_vocab, "seq2seq: target vocabulary", 2, 1 << 20, NULL},
        {"src-len", TG_INT, &o.src_len, "seq2seq: source steps", 1, 1 << 16, NULL},
        {"tgt-len", TG_INT, &o.tgt_len, "seq2seq: target (decoder) steps", 1, 1 << 16, NULL},
        {"threads", TG_INT, &o.threads, "threads", 1, 256, NULL},
        {"shards", TG_INT, &o.shards,
         "data-parallel shards of the batch (0 = max(2, threads), at most --batch; "
         "fix it to make weights independent of --threads)",
         0, 4096, NULL},
        {"fold-embed", TG_BOOL, &o.fold_embed,
         "embedded input through tg_rnn_forward fed by ids (projects the embedding table instead "
         "of the embedded sequence when vocab < seq*batch); 0 = embed, then tg_rnn_forward",
         0, 0, NULL},
        {"blas-threads", TG_INT, &o.blas_threads,
         "OpenBLAS's own threads inside each GEMM "
         "(intra-op parallelism; needs --shards 1)",
         1, 256, NULL},
        {"seconds", TG_DOUBLE, &o.seconds, "timed seconds (after warm-up)", 0.01, 86400, NULL},
        {"windows", TG_INT, &o.windows, "timing windows; figures are the median window's", 1, 1000,
         NULL},
        {"warmup", TG_DOUBLE, &o.warmup, "warm-up seconds before timing", 0, 3600, NULL},
        {"max-wait", TG_DOUBLE, &o.max_wait,
         "shared machine: wait up to this many seconds for "
         "other processes to leave --threads CPUs free before timing (load during timing is "
         "reported as bg_cpus)",
         0, 3600, NULL},
        {"lr", TG_DOUBLE, &o.lr, "SGD learning rate", 0, 100, NULL},
        {"seed", TG_U64, &o.seed, "seed of weights and synthetic data", 0, 0, NULL},
        {"log", TG_STR, &o.log, "CSV file: one row per timing window", 0, 0, NULL},
    };
    tg_cli_parse(argc, argv, flags, (int)(sizeof flags / sizeof flags[0]), prog,
                 "Training throughput (tokens/s) of a recurrent model on synthetic data.", NULL);
    if (strcmp(o.task, "overhead") == 0) return run_overhead(&o);
    if (strcmp(o.task, "peak") == 0) return run_peak(&o);
    return run_training(&o);
}
