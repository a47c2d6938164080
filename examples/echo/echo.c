/* echo: the smallest complete training program. A recurrent net hears a
 * stream of random symbols and must say, at every step, the symbol it heard
 * --delay steps before (symbol 0 before that): it has to remember.
 *
 *   echo --steps 2000 --checkpoint run.ck --every 100 --log run.csv
 *   echo --steps 4000 --resume run.ck --checkpoint run.ck     # goes on exactly
 *
 * Everything a long run needs comes from the training run (trainrun.h):
 * --steps/--seconds, Ctrl-C or SIGTERM (a final checkpoint, then exit 0), the
 * non-finite guard (exit 1, or --skip-nonfinite), --checkpoint/--every and
 * an exact --resume, the progress line and --log. This file holds only the
 * task: its flags, its batches, its loss and its score. The last line:
 *   result: accuracy=0.9990 loss=0.004512 steps=2000 skipped=0 params_fnv1a=...
 * (params_fnv1a identifies the trained weights bit for bit). */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "charmodel.h"
#include "cli.h"
#include "text.h"
#include "trainckpt.h"
#include "trainrun.h"

#define PROG "echo"

typedef struct options {
    const char *cell, *optim, *checkpoint, *resume, *log;
    int symbols, delay, hidden, seq_len, batch, steps, every, skip_nonfinite, threads;
    double lr, clip, seconds;
    uint64_t seed, fault_step; /* ECHO_FAULT_STEP (tests): poison a gradient at this step */
} options;

static void parse_options(int argc, char **argv, options *o, tg_cmdline *c)
{
    const tg_flag flags[] = {
        {"symbols", TG_INT, &o->symbols, "alphabet size", 2, 1000, NULL},
        {"delay", TG_INT, &o->delay, "steps between hearing a symbol and saying it", 0, 100, NULL},
        {"cell", TG_STR, &o->cell, "recurrent cell", 0, 0, tg_cell_kind_names()},
        {"hidden", TG_INT, &o->hidden, "hidden units", 1, 4096, NULL},
        {"seq-len", TG_INT, &o->seq_len, "steps per sequence", 1, 10000, NULL},
        {"batch", TG_INT, &o->batch, "sequences per training step", 1, 65536, NULL},
        {"optim", TG_STR, &o->optim, "optimizer", 0, 0, TGX_OPTIM_CHOICES},
        {"lr", TG_DOUBLE, &o->lr, "learning rate", 0, 10, NULL},
        {"clip", TG_DOUBLE, &o->clip, "clip the gradient's global norm (0: off)", 0, 1e9, NULL},
        {"steps", TG_INT, &o->steps, "train until this step, counted from the run's start "
         "(0: no limit)", 0, 1 << 30, NULL},
        {"seconds", TG_DOUBLE, &o->seconds, "train this long at most (0: no limit)", 0, 1e9, NULL},
        {"threads", TG_INT, &o->threads, "threads inside the kernels", 1, 1024, NULL},
        {"seed", TG_U64, &o->seed, "random seed", 0, 0, NULL},
        {"checkpoint", TG_STR, &o->checkpoint, TGX_HELP_CHECKPOINT, 0, 0, NULL},
        {"every", TG_INT, &o->every, TGX_HELP_EVERY, 0, 1 << 30, NULL},
        /* not TGX_HELP_RESUME: echo takes no settings from the file */
        {"resume", TG_STR, &o->resume, "continue the run in training checkpoint FILE exactly "
         "(give the same task and model flags); --steps counts from the run's start", 0, 0,
         NULL},
        {"skip-nonfinite", TG_BOOL, &o->skip_nonfinite, TGX_HELP_SKIP_NONFINITE, 0, 0, NULL},
        {"log", TG_STR, &o->log, TGX_HELP_LOG("one row per step"), 0, 0, NULL},
    };
    c->argc = argc;
    c->argv = argv;
    c->n = (int)(sizeof flags / sizeof *flags);
    memcpy(c->flags, flags, sizeof flags);
    tg_cli_parse(argc, argv, c->flags, c->n, PROG,
                 "A recurrent net learns to echo the symbol it heard --delay steps ago.", NULL);
    if (o->delay >= o->seq_len) /* every target would be symbol 0: accuracy 1 for nothing */
        tg_cli_die_usage(PROG, "--delay %d needs a --seq-len above it (%d): no step would have "
                         "a symbol to echo", o->delay, o->seq_len);
    const tg_run_files files = {.checkpoint = o->checkpoint, .resume = o->resume, .log = o->log};
    tg_trainckpt_check_flags(PROG, c, &files);
    tg_trainckpt_check_outputs(PROG, &files);
    o->fault_step = tg_cli_env_step(PROG, "ECHO_FAULT_STEP");
}

/* T x B symbols (time-major) and their targets: the symbol delay steps back. */
static void fill_batch(const options *o, tg_rng *r, int *in, int *target)
{
    int T = o->seq_len, B = o->batch, D = o->delay;
    for (int t = 0; t < T; t++)
        for (int b = 0; b < B; b++) {
            in[t * B + b] = (int)tg_rng_below(r, (uint32_t)o->symbols);
            target[t * B + b] = t >= D ? in[(t - D) * B + b] : 0;
        }
}

/* Share of right answers on one held-out batch (the same every time). */
static double accuracy(const options *o, tg_tape *tape, const charmodel *m, int *in, int *target)
{
    tg_rng r;
    tg_rng_seed(&r, o->seed ^ 0xec40ull);
    fill_batch(o, &r, in, target);
    tg_tape_reset(tape);
    tg_tape_set_grad(tape, 0);
    tg_tensor *logits = charmodel_logits(tape, m, in, o->seq_len, o->batch, NULL, NULL, NULL);
    long right = 0, n = (long)o->seq_len * o->batch;
    for (long i = 0; i < n; i++) {
        const tg_real *row = logits->data + i * o->symbols;
        int best = 0;
        for (int j = 1; j < o->symbols; j++) best = row[j] > row[best] ? j : best;
        right += best == target[i];
    }
    tg_tape_set_grad(tape, 1);
    return (double)right / (double)n;
}

/* The run over the model, its configuration (a resume must match it) and
 * the one piece of loop state the task adds: the data generator. */
static void start_run(const options *o, tgx_run *run, charmodel *m, tg_optim *opt, tg_rng *data,
                      tg_dist *dist)
{
    tgx_run_config rc = TGX_RUN_CONFIG_FROM(PROG, m->params, opt, o);
    rc.dist = dist; /* no shards here: every rank runs the whole batch, the same bits */
    tgx_run_init(run, &rc);
    tg_trainckpt *ck = tgx_run_ckpt(run);
    if (tg_trainckpt_config(ck, "cell", o->cell) || tg_trainckpt_config(ck, "optim", o->optim) ||
        tg_trainckpt_config_int(ck, "symbols", o->symbols) ||
        tg_trainckpt_config_int(ck, "delay", o->delay) ||
        tg_trainckpt_config_int(ck, "hidden", o->hidden) ||
        tg_trainckpt_config_int(ck, "seq-len", o->seq_len) ||
        tg_trainckpt_config_int(ck, "batch", o->batch) || tg_trainckpt_rng(ck, "data", data))
        tg_cli_die(PROG, "out of memory");
    tgx_run_register_loss(run, NULL, NULL, "last_loss", "recent_loss");
    tgx_run_resume(run);
    if (o->resume && tgx_run_is_root(run))
        fprintf(stderr, "%s: resumed %s at step %llu\n", PROG, o->resume,
                (unsigned long long)run->step);
    tgx_run_say_nothing_left(run);
}

static void train(const options *o, tgx_run *run, tg_tape *tape, charmodel *m, tg_rng *data,
                  int *in, int *target)
{
    tgx_run_open_log(run, "step,seconds,loss");
    tgx_run_start(run);
    while (!tgx_run_stop(run)) {
        tgx_run_begin_step(run);
        fill_batch(o, data, in, target);
        tg_tape_reset(tape);
        tg_params_zero_grad(m->params);
        tg_tensor *loss = charmodel_loss(tape, m, in, target, o->seq_len, o->batch, NULL, NULL,
                                         NULL);
        tg_backward(tape, loss);
        tgx_run_end_step(run, loss->data[0], NAN, 1, (double)o->seq_len * o->batch);
        tg_progress_update(&run->pg, 0, "step %llu  loss %.4f  %.0f tok/s",
                           (unsigned long long)run->step, run->recent_loss,
                           tgx_run_tokens_per_second(run));
        tg_csv_row(&run->csv, "%llu,%.3f,%.6f", (unsigned long long)run->step,
                   run->train_seconds, run->last_loss);
        tgx_run_periodic_checkpoint(run);
    }
    tgx_run_finish(run);
}

int main(int argc, char **argv)
{
    tg_cli_adopt_blas_core(argv); /* first: it may start the program again */
    options o = {.cell = "gru", .optim = "adam", .symbols = 4, .delay = 2, .hidden = 32,
                 .seq_len = 16, .batch = 16, .steps = 300, .every = 100, .threads = 1,
                 .lr = 0.01, .clip = 5, .seed = 1};
    tg_cmdline cl;
    parse_options(argc, argv, &o, &cl);
    char err[512];
    tg_dist *dist = tgx_dist_init(PROG, &argc, &argv); /* NULL without mpirun */
    tg_rng init, data;
    tg_rng_seed(&init, o.seed);
    tg_rng_seed(&data, o.seed + 1);
    charmodel_config cfg = {tg_cell_kind_by_name(o.cell), o.symbols, o.symbols, o.hidden, 1, 0};
    charmodel m;
    if (charmodel_init(&m, &cfg, &init, err, sizeof err) != 0) tg_cli_die(PROG, "%s", err);
    tg_optim_config oc;
    tgx_optim_from_flag(o.optim, &oc); /* the flag's choices are the parser's */
    oc.lr = o.lr;
    tg_optim *opt = tg_optim_new(&oc, tg_params_numel(m.params), err, sizeof err);
    size_t arena = charmodel_arena_bytes(&cfg, o.seq_len, o.batch);
    if (tgx_arena_problem(arena, "--hidden, --batch or --seq-len", err, sizeof err))
        tg_cli_die(PROG, "%s", err);
    tg_tape *tape = tg_tape_new(arena);
    size_t n = (size_t)o.seq_len * (size_t)o.batch;
    int *in = malloc(n * sizeof *in), *target = malloc(n * sizeof *target);
    if (!opt || !tape || !in || !target) tg_cli_die(PROG, "%s", opt ? "out of memory" : err);
    tg_tape_set_threads(tape, o.threads);

    tgx_run run;
    start_run(&o, &run, &m, opt, &data, dist);
    train(&o, &run, tape, &m, &data, in, target);
    double acc = accuracy(&o, tape, &m, in, target);
    if (tg_csv_close(&run.csv, err, sizeof err) != 0) tg_cli_die(PROG, "%s", err);
    uint64_t weights = tg_fnv1a(TG_FNV1A_BASIS, tg_params_data(m.params),
                                tg_params_numel(m.params) * sizeof(tg_real));
    if (tgx_run_is_root(&run))
        tg_result("accuracy=%.4f loss=%.6f steps=%llu skipped=%llu params_fnv1a=%016llx", acc,
              run.recent_loss, (unsigned long long)run.step, (unsigned long long)run.skipped,
              (unsigned long long)weights);

    tgx_run_free(&run);
    free(in);
    free(target);
    tg_tape_free(tape);
    tg_optim_free(opt);
    charmodel_free(&m);
    tg_dist_finalize(dist);
    return 0;
}
