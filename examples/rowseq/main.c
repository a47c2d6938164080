/* rowseq: Fashion-MNIST read as 28 time steps of 28 pixels, classified from
 * the last hidden state of a recurrent stack (many-to-one).
 *
 *   rowseq                                  LSTM 128, Adam 2e-3 cosine, 12 epochs
 *   rowseq --preset seed                    the seed's tanh RNN 100, SGD 0.1, 20 epochs
 *   rowseq --seconds 600 --save m.safetensors
 *   rowseq --load m.safetensors --epochs 0  evaluate a saved model
 *   rowseq --checkpoint run.ckpt --every 200      killed in epoch 7 ...
 *   rowseq --resume run.ckpt --checkpoint run.ckpt    ... goes on exactly
 *
 * Per epoch: train loss, test loss and accuracy (no-grad evaluation in large
 * batches) on stdout; a confusion matrix at the end; last line
 *   result: test_acc=0.8912 epochs=10 seconds=612.3 tokens_per_s=41250 steps=9380 skipped=0
 * where a token is one image row (one time step) processed in training.
 * --resume continues a --checkpoint run exactly (resume.c, trainckpt.h). */
#include <errno.h>
#include <math.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "cli.h"
#include "idx.h"
#include "rowseq.h"
#include "rowseq_model.h"
#include "tg_checkpoint.h"
#include "trainckpt.h"

#define PROG "rowseq"
#define CLASSES 10

/* A run stops after this many skipped steps in a row: the model is not
 * recovering, and skipping on would only burn time. */
#define MAX_SKIP_STREAK 100

static const char *const class_names[CLASSES] = {
    "T-shirt/top", "Trouser", "Pullover", "Dress",   "Coat",
    "Sandal",      "Shirt",   "Sneaker",  "Bag",     "Ankle boot",
};

typedef rowseq_options options;
typedef tg_cmdline cmdline;

static options default_options(void)
{
    options o = {0};
    o.data = "/usr/share/datasets/fashion-mnist";
    o.preset = "none";
    o.cell = "lstm";
    o.optim = "adam";
    o.schedule = "cosine";
    o.hidden = 128;
    o.layers = 1;
    o.batch = 64;
    o.eval_batch = 1000;
    o.epochs = 12;
    o.threads = 2;
    o.shards = 2;
    o.momentum = 0.9;
    o.weight_decay = -1;
    o.clip = 5;
    o.seed = 1;
    o.every = 100;
    return o;
}

/* The seed's MNIST-RNN experiment: tanh RNN of 100, plain SGD 0.1, 20 epochs,
 * no clipping. Applied before parsing, so explicit flags still win. */
static void apply_preset(options *o, const char *name)
{
    if (strcmp(name, "seed") != 0) return;
    o->cell = "rnn";
    o->hidden = 100;
    o->layers = 1;
    o->optim = "sgd";
    o->lr = 0.1;
    o->clip = 0;
    o->schedule = "constant";
    o->epochs = 20;
}

/* The value of --preset in argv, before the full parse (NULL if absent). */
static const char *find_preset(int argc, char **argv)
{
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--") == 0) break;
        if (strcmp(argv[i], "--preset") == 0 && i + 1 < argc) return argv[i + 1];
        if (strncmp(argv[i], "--preset=", 9) == 0) return argv[i] + 9;
    }
    return NULL;
}

/* The flag table over o; returns the number of flags. */
static int make_flags(options *o, tg_flag *f)
{
    int n = 0;
    f[n++] = (tg_flag){"data", TG_STR, &o->data,
                       "folder with {train,t10k}-{images-idx3,labels-idx1}-ubyte[.gz]", 0, 0,
                       NULL};
    f[n++] = (tg_flag){"preset", TG_STR, &o->preset,
                       "seed = the seed's config (--cell rnn --hidden 100 --optim sgd --lr 0.1 "
                       "--clip 0 --schedule constant --epochs 20); other flags still override",
                       0, 0, "none,seed"};
    f[n++] = (tg_flag){"cell", TG_STR, &o->cell, "recurrent cell", 0, 0, tg_cell_kind_names()};
    f[n++] = (tg_flag){"hidden", TG_INT, &o->hidden, "hidden units per layer", 1, 4096, NULL};
    f[n++] = (tg_flag){"layers", TG_INT, &o->layers, "stacked recurrent layers", 1,
                       TG_MAX_LAYERS, NULL};
    f[n++] = (tg_flag){"dropout", TG_DOUBLE, &o->dropout,
                       "dropout between layers (training only)", 0, 0.95, NULL};
    f[n++] = (tg_flag){"optim", TG_STR, &o->optim, "optimizer", 0, 0, "sgd,momentum,adam,adamw"};
    f[n++] = (tg_flag){"lr", TG_DOUBLE, &o->lr,
                       "learning rate; 0 = 0.1 for sgd/momentum, 0.002 for adam(w)", 0, 100, NULL};
    f[n++] = (tg_flag){"momentum", TG_DOUBLE, &o->momentum, "momentum of --optim momentum", 0,
                       0.999, NULL};
    f[n++] = (tg_flag){"weight-decay", TG_DOUBLE, &o->weight_decay,
                       "weight decay; -1 = the optimizer's default (0.01 adamw, else 0)", -1, 10,
                       NULL};
    f[n++] = (tg_flag){"schedule", TG_STR, &o->schedule,
                       "learning-rate schedule over --epochs: constant, cosine (to lr/100), step "
                       "(halved every epoch of the second half)",
                       0, 0, "constant,cosine,step"};
    f[n++] = (tg_flag){"clip", TG_DOUBLE, &o->clip, "clip the global gradient norm; 0 = off", 0,
                       1e9, NULL};
    f[n++] = (tg_flag){"batch", TG_INT, &o->batch, "training images per step", 1, 65536, NULL};
    f[n++] = (tg_flag){"eval-batch", TG_INT, &o->eval_batch,
                       "images per no-grad evaluation pass", 1, 65536, NULL};
    f[n++] = (tg_flag){"epochs", TG_INT, &o->epochs,
                       "epochs to train (0 = evaluate only); with --resume counted from the "
                       "run's start",
                       0, 1000000, NULL};
    f[n++] = (tg_flag){"steps", TG_INT, &o->steps,
                       "stop training after this many steps, counted from the run's start; 0 = "
                       "no limit (the schedule still spans --epochs)",
                       0, 1 << 30, NULL};
    f[n++] = (tg_flag){"seconds", TG_DOUBLE, &o->seconds,
                       "stop training after this many seconds of training (all of a resumed "
                       "run's processes); 0 = no limit",
                       0, 1e9, NULL};
    f[n++] = (tg_flag){"threads", TG_INT, &o->threads, "threads running the shards", 1, 256,
                       NULL};
    f[n++] = (tg_flag){"shards", TG_INT, &o->shards,
                       "data-parallel shards per batch (fixes the arithmetic; results never "
                       "depend on --threads)",
                       1, ROWSEQ_MAX_SHARDS, NULL};
    f[n++] = (tg_flag){"seed", TG_U64, &o->seed, "random seed (init, shuffling, dropout)", 0, 0,
                       NULL};
    f[n++] = (tg_flag){"save", TG_STR, &o->save,
                       "save the model (safetensors: weights, optimizer) after every epoch", 0, 0,
                       NULL};
    f[n++] = (tg_flag){"load", TG_STR, &o->load,
                       "start from a --save or --checkpoint file (its cell, hidden and layers "
                       "replace the flags)",
                       0, 0, NULL};
    f[n++] = (tg_flag){"checkpoint", TG_STR, &o->checkpoint,
                       "write a training checkpoint (all --resume needs) to FILE every --every "
                       "steps and at the end",
                       0, 0, NULL};
    f[n++] = (tg_flag){"every", TG_INT, &o->every,
                       "steps between training checkpoints (0: at the end only)", 0, 1 << 30,
                       NULL};
    f[n++] = (tg_flag){"resume", TG_STR, &o->resume,
                       "continue the run in training checkpoint FILE exactly; settings not given "
                       "are taken from it, --epochs counts from the run's start",
                       0, 0, NULL};
    f[n++] = (tg_flag){"skip-nonfinite", TG_BOOL, &o->skip_nonfinite,
                       "skip a step whose loss or gradient is NaN or infinite, instead of "
                       "stopping with exit 1",
                       0, 0, NULL};
    f[n++] = (tg_flag){"log", TG_STR, &o->log, "CSV file: one row per epoch", 0, 0, NULL};
    f[n++] = (tg_flag){"limit-train", TG_INT, &o->limit_train,
                       "use only the first N training images; 0 = all", 0, IDX_MAX_COUNT, NULL};
    f[n++] = (tg_flag){"limit-test", TG_INT, &o->limit_test,
                       "use only the first N test images; 0 = all", 0, IDX_MAX_COUNT, NULL};
    return n;
}

/* The run's checkpoint and output files. */
static tg_run_files run_files(const options *o)
{
    return (tg_run_files){o->checkpoint, o->resume, o->load, o->save, o->log};
}

/* Flags that exclude or need each other. */
static void check_combinations(const options *o, const cmdline *c)
{
    const tg_run_files files = run_files(o);
    tg_trainckpt_check_flags(PROG, c, &files);
}

static void parse_options(int argc, char **argv, options *o, cmdline *c, tg_inherited *inh)
{
    *o = default_options();
    const char *preset = find_preset(argc, argv);
    if (preset) apply_preset(o, preset);
    c->argc = argc;
    c->argv = argv;
    c->n = make_flags(o, c->flags);
    tg_cli_parse(argc, argv, c->flags, c->n, PROG,
                 "Fashion-MNIST as 28 steps of 28 pixels: recurrent stack + linear on the last "
                 "hidden state;\ncheckpoint and resume exactly.",
                 NULL);
    check_combinations(o, c);
    inh->n = 0;
    if (o->resume) rowseq_inherit_settings(o->resume, c, inh);
    /* a test hook: poison a gradient at this step (the non-finite guard) */
    o->fault_step = tg_cli_env_step(PROG, "ROWSEQ_FAULT_STEP");
}

/* ------------------------------------------------------------------ data */

typedef struct split {
    idx_images im;
    idx_labels lb;
    rowseq_data d;
} split;

/* A data error; when the folder came from --resume's checkpoint (resume
 * != NULL, no --data) the message names the checkpoint too. */
static _Noreturn void data_error(const char *resume, const char *msg)
{
    if (resume) tg_trainckpt_die_inherited(PROG, resume, "data", "--data DIR", msg);
    tg_cli_die(PROG, "%s", msg);
}

/* DIR/name, or DIR/name.gz when only that exists. */
static void data_path(const char *dir, const char *name, const char *resume, char *out, size_t n)
{
    char msg[4096 + 256];
    snprintf(out, n, "%s/%s", dir, name);
    if (access(out, F_OK) == 0) return;
    snprintf(out, n, "%s/%s.gz", dir, name);
    if (access(out, F_OK) == 0) return;
    snprintf(msg, sizeof msg, "%s: neither %s nor %s.gz found (set --data to the folder holding "
             "the IDX files)", dir, name, name);
    data_error(resume, msg);
}

static void load_split(const char *dir, const char *prefix, int limit, const char *resume,
                       split *s)
{
    char ip[4096], lp[4096], msg[4096 + 256], name[64];
    snprintf(name, sizeof name, "%s-images-idx3-ubyte", prefix);
    data_path(dir, name, resume, ip, sizeof ip);
    snprintf(name, sizeof name, "%s-labels-idx1-ubyte", prefix);
    data_path(dir, name, resume, lp, sizeof lp);
    if (idx_read_images(ip, &s->im, msg, sizeof msg) != IDX_OK) data_error(resume, msg);
    if (idx_read_labels(lp, CLASSES, &s->lb, msg, sizeof msg) != IDX_OK) data_error(resume, msg);
    if (idx_check_pair(ip, &s->im, lp, &s->lb, msg, sizeof msg) != IDX_OK)
        data_error(resume, msg);
    s->d.count = (int)s->im.count;
    if (limit > 0 && limit < s->d.count) s->d.count = limit;
    s->d.rows = (int)s->im.rows;
    s->d.cols = (int)s->im.cols;
    s->d.pixels = s->im.pixels;
    s->d.labels = s->lb.labels;
}

/* ------------------------------------------------------------------ set-up */

static tg_optim_config optim_config(const options *o)
{
    tg_optim_kind kind = TG_OPTIM_SGD;
    if (strcmp(o->optim, "adam") == 0) kind = TG_OPTIM_ADAM;
    if (strcmp(o->optim, "adamw") == 0) kind = TG_OPTIM_ADAMW;
    tg_optim_config c = tg_optim_defaults(kind);
    if (strcmp(o->optim, "momentum") == 0) c.momentum = o->momentum;
    if (kind != TG_OPTIM_SGD) c.lr = 0.002; /* measured best for this task, see README */
    if (o->lr > 0) c.lr = o->lr;
    if (o->weight_decay >= 0) c.weight_decay = o->weight_decay;
    return c;
}

static tg_lr_schedule lr_schedule(const options *o, double base, uint64_t steps_per_epoch)
{
    tg_lr_schedule s = {0};
    uint64_t total = steps_per_epoch * (uint64_t)(o->epochs > 0 ? o->epochs : 1);
    s.base_lr = base;
    s.kind = TG_LR_CONSTANT;
    if (strcmp(o->schedule, "cosine") == 0) {
        s.kind = TG_LR_COSINE;
        s.decay_steps = total;
        s.min_lr = base / 100;
    } else if (strcmp(o->schedule, "step") == 0) {
        s.kind = TG_LR_STEP; /* applied from the second half on, see lr_for_step */
        s.step_size = steps_per_epoch;
        s.gamma = 0.5;
    }
    return s;
}

/* Step schedule: base for the first half of the epochs, then halved at the
 * start of every later epoch. */
static double lr_for_step(const options *o, const tg_lr_schedule *s, uint64_t step,
                          uint64_t steps_per_epoch)
{
    if (s->kind != TG_LR_STEP) return tg_lr_at(s, step);
    uint64_t half = steps_per_epoch * (uint64_t)((o->epochs + 1) / 2);
    return step < half ? s->base_lr : tg_lr_at(s, step - half + steps_per_epoch);
}

/* ------------------------------------------------------------------ report */

static void print_confusion(const long *cm)
{
    printf("\nconfusion matrix (rows: true class, columns: predicted)\n%-12s", "");
    for (int j = 0; j < CLASSES; j++) printf(" %5d", j);
    printf("  recall\n");
    for (int i = 0; i < CLASSES; i++) {
        long row = 0;
        printf("%d %-10s", i, class_names[i]);
        for (int j = 0; j < CLASSES; j++) {
            printf(" %5ld", cm[i * CLASSES + j]);
            row += cm[i * CLASSES + j];
        }
        printf("  %.3f\n", row ? (double)cm[i * CLASSES + i] / row : 0.0);
    }
}

/* ------------------------------------------------------------------ the training loop */

static volatile sig_atomic_t interrupted;

static void on_interrupt(int sig)
{
    interrupted = 1;
    signal(sig, SIG_DFL); /* a second Ctrl-C (or TERM) ends the program at once */
}

typedef struct run_state {
    /* the loop's state, in training checkpoints */
    uint64_t step;         /* steps run (applied or skipped), from the run's start */
    uint64_t epoch;        /* epochs completed */
    uint64_t pos;          /* images of this epoch's permutation already trained */
    tg_rng shuffle_rng;    /* the trainer's generator before this epoch's shuffle */
    uint64_t skipped;      /* steps skipped as non-finite (--skip-nonfinite) */
    uint64_t streak;       /* of them, in a row up to now */
    double train_seconds;  /* training time, all of the run's processes */
    double epoch_loss;     /* sum of loss x images over this epoch's applied steps */
    uint64_t epoch_images; /* images in that sum */
    /* this process only */
    uint64_t start_step; /* where it started (> 0 after --resume) */
    double run_seconds;  /* its training time */
    double tokens;       /* image rows it trained */
    uint64_t saved_step; /* step of its last checkpoint save */
    int saved;           /* whether it has saved one */
} run_state;

/* What one training step needs, set up once. */
typedef struct loop {
    const options *o;
    rowseq_trainer *tr;
    const rowseq_data *train;
    uint32_t *order; /* this epoch's permutation */
    tg_lr_schedule sched;
    uint64_t steps_per_epoch;
    tg_trainckpt *ck;
    tg_progress pg;
} loop;

/* Why training stops before the next step, or NULL to go on. */
static const char *stop_reason(const options *o, const run_state *s)
{
    if (interrupted) return "interrupted";
    if (s->epoch >= (uint64_t)o->epochs) return "epochs";
    if (o->steps && s->step >= (uint64_t)o->steps) return "--steps";
    if (o->seconds > 0 && s->train_seconds >= o->seconds) return "time budget";
    return NULL;
}

static void save_checkpoint(const options *o, tg_trainckpt *ck, run_state *s)
{
    char err[1024];
    if (tg_trainckpt_save(ck, o->checkpoint, err, sizeof err) != 0) tg_cli_die(PROG, "%s", err);
    s->saved = 1;
    s->saved_step = s->step;
}

static void periodic_checkpoint(const options *o, tg_trainckpt *ck, run_state *s)
{
    if (o->checkpoint && o->every && s->step % (uint64_t)o->every == 0)
        save_checkpoint(o, ck, s);
}

/* 0 when the step's loss, gradients and parameters are finite; else -1
 * with "step N: ... is not finite; stopping, last checkpoint kept" in err. */
static int check_finite(const tg_trainckpt *ck, double loss, double norm, uint64_t step,
                        char *err, size_t errlen)
{
    if (tg_trainckpt_guard(ck, loss, step, err, errlen) != 0) return -1;
    if (isfinite(norm)) return 0; /* finite values whose squares overflowed */
    snprintf(err, errlen, "step %llu: gradient norm is %g; stopping, last checkpoint kept",
             (unsigned long long)step, norm);
    return -1;
}

/* Whether to apply the step's update: yes when everything is finite; no
 * with --skip-nonfinite (said on stderr); otherwise exits 1 at once: no
 * update, no checkpoint, no --save. */
static int apply_step(loop *L, double loss, double norm, const run_state *s)
{
    char err[1024];
    if (check_finite(L->ck, loss, norm, s->step + 1, err, sizeof err) == 0) return 1;
    tg_progress_done(&L->pg);
    if (!L->o->skip_nonfinite)
        tg_cli_die(PROG, "%s (try a smaller --lr or --clip, or --skip-nonfinite)", err);
    char *why = strstr(err, "; stopping"); /* the guard's words for the stopping case */
    if (why) *why = '\0';
    if (s->streak + 1 >= MAX_SKIP_STREAK)
        tg_cli_die(PROG, "%s: %d steps in a row were not finite; stopping, last checkpoint kept",
                   err, MAX_SKIP_STREAK);
    fprintf(stderr, "%s: %s; step skipped (--skip-nonfinite)\n", PROG, err);
    return 0;
}

/* One step on the next batch of this epoch's permutation. */
static void train_step(loop *L, run_state *s)
{
    const options *o = L->o;
    rowseq_trainer *tr = L->tr;
    int left = L->train->count - (int)s->pos;
    int B = left < o->batch ? left : o->batch;
    double t0 = tg_clock_seconds();
    double lr = lr_for_step(o, &L->sched, s->step, L->steps_per_epoch);
    double loss = rowseq_train_backward(tr, L->train, L->order + s->pos, B);
    if (o->fault_step == s->step + 1) tg_params_grad(tr->params)[0] = (tg_real)NAN;
    double norm = tg_clip_grad_norm(tr->params, tr->cfg.clip);
    int applied = apply_step(L, loss, norm, s);
    if (applied) {
        tg_optim_set_lr(tr->opt, lr);
        tg_optim_step(tr->opt, tr->params);
        s->epoch_loss += loss * B;
        s->epoch_images += (uint64_t)B;
        s->streak = 0;
    } else {
        s->skipped++;
        s->streak++;
    }
    double dt = tg_clock_seconds() - t0;
    s->step++;
    s->pos += (uint64_t)B;
    s->train_seconds += dt;
    s->run_seconds += dt;
    s->tokens += (double)B * L->train->rows;
}

static double tokens_per_second(const run_state *s)
{
    return s->run_seconds > 0 ? s->tokens / s->run_seconds : 0;
}

/* Trains this epoch from s->pos on, until it ends or a stopping rule holds.
 * Returns the number of steps run. */
static uint64_t train_epoch(loop *L, run_state *s)
{
    rowseq_trainer *tr = L->tr;
    const int count = L->train->count;
    /* the epoch's permutation, drawn again from the saved state on resume */
    tr->rng = s->shuffle_rng;
    rowseq_shuffle(tr, L->order, count);
    uint64_t ran = 0;
    while (s->pos < (uint64_t)count && !stop_reason(L->o, s)) {
        train_step(L, s);
        ran++;
        tg_progress_update(&L->pg, 0, "epoch %llu  %6llu/%d  loss %.4f  lr %.2g  %.0f tokens/s",
                           (unsigned long long)s->epoch + 1, (unsigned long long)s->pos, count,
                           s->epoch_images ? s->epoch_loss / (double)s->epoch_images : NAN,
                           tg_optim_lr(tr->opt), tokens_per_second(s));
        /* at the end of the epoch: after its evaluation, in the next epoch's state */
        if (s->pos < (uint64_t)count) periodic_checkpoint(L->o, L->ck, s);
    }
    return ran;
}

/* The epoch is over: the next one starts at its first image, drawing its
 * permutation from where this one's shuffle left the generator. */
static void next_epoch(rowseq_trainer *tr, run_state *s)
{
    s->epoch++;
    s->pos = 0;
    s->shuffle_rng = tr->rng;
    s->epoch_loss = 0;
    s->epoch_images = 0;
}

/* ------------------------------------------------------------------ checkpoints */

/* Every piece of state the loop reads, for --checkpoint and --resume; also
 * the non-finite guard's view of the parameters. */
static tg_trainckpt *make_trainckpt(const options *o, rowseq_trainer *tr,
                                    const rowseq_data *train, run_state *s)
{
    tg_trainckpt *ck = tg_trainckpt_new(PROG, tr->params, tr->opt);
    int bad = !ck || rowseq_register_config(ck, o, &tr->cfg, train) != 0 ||
              tg_trainckpt_u64(ck, "step", &s->step) != 0 ||
              tg_trainckpt_u64(ck, "epoch", &s->epoch) != 0 ||
              tg_trainckpt_u64(ck, "epoch_pos", &s->pos) != 0 ||
              tg_trainckpt_rng(ck, "shuffle", &s->shuffle_rng) != 0 ||
              tg_trainckpt_u64(ck, "skipped", &s->skipped) != 0 ||
              tg_trainckpt_u64(ck, "skip_streak", &s->streak) != 0 ||
              tg_trainckpt_f64(ck, "train_seconds", &s->train_seconds) != 0 ||
              tg_trainckpt_f64(ck, "epoch_loss", &s->epoch_loss) != 0 ||
              tg_trainckpt_u64(ck, "epoch_images", &s->epoch_images) != 0;
    for (int i = 0; !bad && i < tr->cfg.shards; i++) {
        char name[32];
        snprintf(name, sizeof name, "dropout.%d", i);
        bad = tg_trainckpt_rng(ck, name, &tr->shard_rng[i]) != 0;
    }
    if (bad) tg_cli_die(PROG, "out of memory");
    return ck;
}

/* After a load: what the file could not check by itself — the data
 * position lies inside the training set, on a batch boundary, at the step
 * it claims. Exits 1 naming the file. */
static void check_position(const char *path, const run_state *s, uint64_t steps_per_epoch,
                           int count, int batch)
{
    if (s->pos >= (uint64_t)count || s->pos % (uint64_t)batch != 0 ||
        s->epoch > s->step / steps_per_epoch ||
        s->step != s->epoch * steps_per_epoch + s->pos / (uint64_t)batch ||
        s->skipped > s->step || s->streak > s->skipped || s->epoch_images > s->pos)
        tg_cli_die(PROG, "%s: data position 'u64.epoch' %llu, 'u64.epoch_pos' %llu does not fit "
                   "'u64.step' %llu with %d images in batches of %d", path,
                   (unsigned long long)s->epoch, (unsigned long long)s->pos,
                   (unsigned long long)s->step, count, batch);
}

/* Loads everything registered; exits 1 naming the file and field (the file
 * is only read). */
static void resume_run(const options *o, tg_trainckpt *ck, const loop *L, run_state *s)
{
    char err[1024];
    if (tg_trainckpt_load(ck, o->resume, err, sizeof err) != 0) tg_cli_die(PROG, "%s", err);
    check_position(o->resume, s, L->steps_per_epoch, L->train->count, o->batch);
    s->start_step = s->step;
    fprintf(stderr, "%s: resumed %s at step %llu (epoch %llu, image %llu of %d)\n", PROG,
            o->resume, (unsigned long long)s->step, (unsigned long long)s->epoch + 1,
            (unsigned long long)s->pos, L->train->count);
    const char *why = stop_reason(o, s);
    if (why && !strcmp(why, "epochs"))
        fprintf(stderr, "%s: already at epoch %llu of --epochs %d: nothing to train\n", PROG,
                (unsigned long long)s->epoch, o->epochs);
    else if (why && !strcmp(why, "--steps"))
        fprintf(stderr, "%s: already at step %llu of --steps %d: nothing to train\n", PROG,
                (unsigned long long)s->step, o->steps);
    else if (why)
        fprintf(stderr, "%s: already trained %.1f s of --seconds %g: nothing to train\n", PROG,
                s->train_seconds, o->seconds);
}

/* --log FILE; a resumed run appends to the log it continues. */
static void open_log(const options *o, tg_csv *log)
{
    char err[1024];
    if (tg_csv_open_run(log, o->log, "epoch,step,seconds,lr,train_loss,test_loss,test_acc,"
                        "tokens_per_s", o->resume != NULL, err, sizeof err) != 0)
        tg_cli_die(PROG, "%s", err);
}

/* ------------------------------------------------------------------ main */

static rowseq_trainer_config trainer_config(const options *o, const rowseq_data *train)
{
    rowseq_trainer_config cfg = {0};
    cfg.kind = tg_cell_kind_by_name(o->cell);
    cfg.steps = train->rows;
    cfg.in = train->cols;
    cfg.hidden = o->hidden;
    cfg.layers = o->layers;
    cfg.classes = CLASSES;
    cfg.dropout = o->dropout;
    cfg.optim = optim_config(o);
    cfg.clip = o->clip;
    cfg.batch = o->batch;
    cfg.eval_batch = o->eval_batch;
    cfg.shards = o->shards;
    cfg.threads = o->threads;
    cfg.seed = o->seed;
    return cfg;
}

/* Evaluation after training in an epoch: the epoch line and the log row. */
typedef struct epoch_report {
    double test_loss, test_acc;
    long confusion[CLASSES * CLASSES];
    int evaluated;
} epoch_report;

static void report_epoch(const loop *L, const run_state *s, const rowseq_data *test,
                         tg_csv *log, const char *partial, double t_start, epoch_report *r)
{
    rowseq_trainer *tr = L->tr;
    rowseq_evaluate(tr, test, test->count, &r->test_loss, &r->test_acc, r->confusion);
    r->evaluated = 1;
    double train_loss = s->epoch_images ? s->epoch_loss / (double)s->epoch_images : NAN;
    double epochs_run = (double)s->step / (double)L->steps_per_epoch;
    double elapsed = tg_clock_seconds() - t_start, tps = tokens_per_second(s);
    char label[64] = "";
    if (partial) snprintf(label, sizeof label, " (partial, %s)", partial);
    printf("epoch %3llu%s  train_loss %.4f  test_loss %.4f  test_acc %.4f  %.1fs  %.0f tokens/s\n",
           (unsigned long long)s->epoch + 1, label, train_loss, r->test_loss, r->test_acc, elapsed,
           tps);
    fflush(stdout);
    tg_csv_row(log, "%.4f,%llu,%.2f,%.6g,%.6f,%.6f,%.6f,%.0f", epochs_run,
               (unsigned long long)s->step, elapsed, tg_optim_lr(tr->opt), train_loss,
               r->test_loss, r->test_acc, tps);
}

/* Epochs until a stopping rule holds: train, evaluate, report, --save, and
 * checkpoint every --every steps. */
static void train_run(loop *L, run_state *s, const rowseq_data *test, tg_csv *log,
                      uint64_t epochs_loaded, double t_start, epoch_report *r)
{
    const options *o = L->o;
    tg_progress_init(&L->pg, stderr, 10.0);
    while (!stop_reason(o, s)) {
        train_epoch(L, s);
        tg_progress_done(&L->pg);
        int ended = s->pos >= (uint64_t)L->train->count;
        report_epoch(L, s, test, log, ended ? NULL : stop_reason(o, s), t_start, r);
        if (ended) next_epoch(L->tr, s);
        if (o->save) rowseq_save_model(o->save, L->tr, epochs_loaded + s->epoch);
        if (ended) periodic_checkpoint(o, L->ck, s);
    }
    tg_progress_done(&L->pg);
}

static void describe(const options *o, const rowseq_trainer *tr, const rowseq_data *train,
                     const rowseq_data *test)
{
    const rowseq_trainer_config *c = &tr->cfg;
    fprintf(stderr,
            "%s: %s %dx%d, %zu parameters, %s lr %g (%s), clip %g, batch %d, %d shards on %d "
            "threads; train %d, test %d images of %dx%d\n",
            PROG, c->kind->name, c->layers, c->hidden, tg_params_numel(tr->params), o->optim,
            c->optim.lr, o->schedule, c->clip, c->batch, c->shards, c->threads, train->count,
            test->count, c->steps, c->in);
}

int main(int argc, char **argv)
{
    options o;
    cmdline cl;
    tg_inherited inherited;
    char err[1024];
    parse_options(argc, argv, &o, &cl, &inherited);
    const tg_run_files files = run_files(&o);
    tg_trainckpt_check_outputs(PROG, &files); /* before any work */
    uint64_t epochs_loaded = 0;
    int load_training = 0;
    tg_checkpoint *model_file = o.load ? rowseq_open_model(&o, &epochs_loaded, &load_training) : NULL;

    split train = {0}, test = {0};
    /* the run's data folder, when --resume took it from the checkpoint */
    const char *data_from = tg_inherited_has(&inherited, "data") ? o.resume : NULL;
    load_split(o.data, "train", o.limit_train, data_from, &train);
    load_split(o.data, "t10k", o.limit_test, data_from, &test);
    if (train.d.rows != test.d.rows || train.d.cols != test.d.cols)
        tg_cli_die(PROG, "%s: training images are %dx%d but test images are %dx%d", o.data,
                   train.d.rows, train.d.cols, test.d.rows, test.d.cols);

    rowseq_trainer_config cfg = trainer_config(&o, &train.d);
    if (model_file) rowseq_check_model_shape(&o, model_file, load_training, cfg.steps, cfg.in);
    rowseq_trainer tr;
    if (rowseq_trainer_init(&tr, &cfg, err, sizeof err) != 0) tg_cli_die(PROG, "%s", err);
    if (model_file) {
        rowseq_restore_model(&o, model_file, &tr);
        tg_checkpoint_close(model_file);
    }

    loop L = {&o, &tr, &train.d, NULL, {0}, 0, NULL, {0}};
    L.order = malloc((size_t)train.d.count * sizeof *L.order);
    if (!L.order) tg_cli_die(PROG, "out of memory for %d indices", train.d.count);
    L.steps_per_epoch = (uint64_t)(train.d.count + o.batch - 1) / (uint64_t)o.batch;
    L.sched = lr_schedule(&o, cfg.optim.lr, L.steps_per_epoch);
    run_state s = {0};
    s.shuffle_rng = tr.rng; /* after the init draws, or as a --save file left it */
    L.ck = make_trainckpt(&o, &tr, &train.d, &s);
    if (o.resume) resume_run(&o, L.ck, &L, &s);
    tg_csv log;
    open_log(&o, &log);
    describe(&o, &tr, &train.d, &test.d);

    signal(SIGINT, on_interrupt);
    signal(SIGTERM, on_interrupt);
    double t_start = tg_clock_seconds();
    epoch_report r = {0};
    train_run(&L, &s, &test.d, &log, epochs_loaded, t_start, &r);
    if (interrupted)
        fprintf(stderr, "%s: interrupted at step %llu\n", PROG, (unsigned long long)s.step);
    if (o.checkpoint && !(s.saved && s.saved_step == s.step)) save_checkpoint(&o, L.ck, &s);
    if (o.checkpoint)
        fprintf(stderr, "%s: checkpoint %s at step %llu\n", PROG, o.checkpoint,
                (unsigned long long)s.step);
    signal(SIGINT, SIG_DFL);
    signal(SIGTERM, SIG_DFL);
    if (!r.evaluated) {
        rowseq_evaluate(&tr, &test.d, test.d.count, &r.test_loss, &r.test_acc, r.confusion);
        printf("evaluation  test_loss %.4f  test_acc %.4f\n", r.test_loss, r.test_acc);
    }
    print_confusion(r.confusion);
    if (tg_csv_close(&log, err, sizeof err) != 0) tg_cli_die(PROG, "%s", err);

    size_t high = 0;
    for (int sh = 0; sh < cfg.shards; sh++) {
        size_t h = tg_tape_arena_high_water(tg_workers_tape(tr.workers, sh));
        high = h > high ? h : high;
    }
    fprintf(stderr, "%s: step arena high water %.1f MiB of %.1f MiB per shard\n", PROG,
            high / 1048576.0, rowseq_arena_bytes(&cfg) / 1048576.0);
    double seconds = tg_clock_seconds() - t_start;
    double epochs_run = (double)s.step / (double)L.steps_per_epoch;
    char epochs_text[32];
    if (epochs_run == floor(epochs_run)) snprintf(epochs_text, sizeof epochs_text, "%.0f", epochs_run);
    else snprintf(epochs_text, sizeof epochs_text, "%.2f", epochs_run);
    tg_result("test_acc=%.4f epochs=%s seconds=%.1f tokens_per_s=%.0f steps=%llu skipped=%llu",
              r.test_acc, epochs_text, seconds, tokens_per_second(&s),
              (unsigned long long)s.step, (unsigned long long)s.skipped);
    tg_trainckpt_free(L.ck);
    free(L.order);
    rowseq_trainer_free(&tr);
    idx_images_free(&train.im);
    idx_labels_free(&train.lb);
    idx_images_free(&test.im);
    idx_labels_free(&test.lb);
    tg_inherited_free(&inherited);
    return 0;
}
