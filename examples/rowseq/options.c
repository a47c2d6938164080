/* rowseq's command line (defaults, --preset, the flag table, the checks
 * between flags, --resume's inherited settings) and what it sets up: the
 * optimizer and the learning-rate schedule. */
#include <string.h>

#include "idx.h"
#include "rowseq.h"
#include "trainrun.h"

#define PROG "rowseq"

static rowseq_options default_options(void)
{
    rowseq_options o = {0};
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
    o.threads = 0; /* every core */
    o.shards = 0; /* max(2, --threads) */
    o.momentum = 0; /* 0.9 for --optim momentum: see derive_momentum */
    o.weight_decay = -1;
    o.clip = 5;
    o.seed = 1;
    o.every = 100;
    return o;
}

/* The seed's MNIST-RNN experiment: tanh RNN of 100, plain SGD 0.1, 20 epochs,
 * no clipping. Applied before parsing, so explicit flags still win. */
static void apply_preset(rowseq_options *o, const char *name)
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
static int make_flags(rowseq_options *o, tg_flag *f)
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
                       "dropout between layers (training only)", 0, TG_CLI_DROPOUT_MAX, NULL};
    f[n++] = (tg_flag){"optim", TG_STR, &o->optim, "optimizer", 0, 0, TGX_OPTIM_CHOICES};
    f[n++] = (tg_flag){"lr", TG_DOUBLE, &o->lr,
                       "learning rate; 0 = 0.1 for sgd/momentum, 0.002 for adam(w)", 0, 100, NULL};
    f[n++] = (tg_flag){"momentum", TG_DOUBLE, &o->momentum,
                       "SGD momentum (if not given: 0.9 for --optim momentum, else 0)", 0, 0.999,
                       NULL};
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
    f[n++] = (tg_flag){"threads", TG_INT, &o->threads, TGX_HELP_THREADS, 0, 256, NULL};
    f[n++] = (tg_flag){"shards", TG_INT, &o->shards, TGX_SHARDS_HELP, 0, ROWSEQ_MAX_SHARDS,
                       NULL};
    f[n++] = (tg_flag){"seed", TG_U64, &o->seed, "random seed (init, shuffling, dropout)", 0, 0,
                       NULL};
    f[n++] = (tg_flag){"save", TG_STR, &o->save,
                       TGX_HELP_SAVE("the model (weights, optimizer state) after every epoch"), 0,
                       0, NULL};
    f[n++] = (tg_flag){"load", TG_STR, &o->load,
                       TGX_HELP_LOAD("its cell, hidden and layers; a flag that says "
                                     "otherwise is refused"),
                       0, 0, NULL};
    f[n++] = (tg_flag){"export-torch", TG_STR, &o->export_torch, TGX_HELP_EXPORT_TORCH("RowRNN"),
                       0, 0, NULL};
    f[n++] = (tg_flag){"import-torch", TG_STR, &o->import_torch, TGX_HELP_IMPORT_TORCH("RowRNN"),
                       0, 0, NULL};
    n += tgx_checkpoint_flags(f + n, &o->checkpoint, &o->every, &o->resume, &o->skip_nonfinite);
    f[n++] = (tg_flag){"log", TG_STR, &o->log, TGX_HELP_LOG("one row per epoch"), 0, 0, NULL};
    f[n++] = (tg_flag){"limit-train", TG_INT, &o->limit_train,
                       "use only the first N training images; 0 = all", 0, IDX_MAX_COUNT, NULL};
    f[n++] = (tg_flag){"limit-test", TG_INT, &o->limit_test,
                       "use only the first N test images; 0 = all", 0, IDX_MAX_COUNT, NULL};
    return n;
}

/* The run's checkpoint and output files. */
tg_run_files rowseq_run_files(const rowseq_options *o)
{
    tg_run_files f = {.checkpoint = o->checkpoint, .resume = o->resume, .load = o->load,
                      .save = o->save, .log = o->log};
    tg_run_files_add(f.writes, "--export-torch", o->export_torch);
    tg_run_files_add(f.reads, "--import-torch", o->import_torch);
    return f; /* the --data files: main.c adds them */
}

/* Flags that exclude or need each other. */
static void check_combinations(const rowseq_options *o, const tg_cmdline *c)
{
    const tg_run_files files = rowseq_run_files(o);
    tg_trainckpt_check_flags(PROG, c, &files);
    if (o->import_torch && (o->load || o->resume))
        tg_cli_die_usage(PROG, "--import-torch and --%s exclude each other (both give the model)",
                         o->load ? "load" : "resume");
}

/* --momentum when not given, as charlm's: 0.9 for --optim momentum, else 0
 * (a 0.9 default for every optimizer was dropped silently by Adam, and
 * made a given value look accepted). A resume takes the file's instead. */
static void derive_momentum(rowseq_options *o, const tg_cmdline *c)
{
    if (!o->resume && !tg_cmdline_given(c, "momentum"))
        o->momentum = strcmp(o->optim, "momentum") == 0 ? 0.9 : 0;
}

/* Checks between the values once every default and inherited one is in. */
static void check_values(const rowseq_options *o)
{
    tgx_check_momentum(PROG, o->optim, o->momentum);
    /* -1 is the sentinel; -0.5 read as "the default" too, where it is a typo */
    if (o->weight_decay < 0 && o->weight_decay != -1)
        tg_cli_die_usage(PROG, "--weight-decay %g: a weight decay is 0 or more (-1: the "
                         "optimizer's default)", o->weight_decay);
    tgx_check_shards(PROG, o->shards, o->batch, ROWSEQ_MAX_SHARDS);
}

void rowseq_parse_options(int argc, char **argv, rowseq_options *o, tg_cmdline *c,
                          tg_inherited *inh)
{
    *o = default_options();
    const char *preset = find_preset(argc, argv);
    if (preset) apply_preset(o, preset);
    c->argc = argc;
    c->argv = argv;
    c->n = make_flags(o, c->flags);
    tg_cli_parse(argc, argv, c->flags, c->n, PROG,
                 "Fashion-MNIST as 28 steps of 28 pixels: recurrent stack + linear on the last "
                 "hidden state;\ncheckpoint and resume exactly. Training flags: --epochs, "
                 "--steps, --seconds\n(with --load or --import-torch, nothing trains unless one "
                 "is given: the loaded model is evaluated).",
                 NULL);
    check_combinations(o, c);
    if ((o->load || o->import_torch) && !tg_cmdline_given(c, "epochs") &&
        !tg_cmdline_given(c, "steps") && !tg_cmdline_given(c, "seconds"))
        o->epochs = 0; /* a loaded model trains only when a training flag asks */
    inh->n = 0;
    if (o->resume) rowseq_inherit_settings(o->resume, c, inh);
    o->threads = tgx_run_threads(o->threads);
    o->shards = tgx_default_shards(o->shards, o->threads, o->batch);
    if (o->shards > ROWSEQ_MAX_SHARDS) o->shards = ROWSEQ_MAX_SHARDS;
    derive_momentum(o, c);
    check_values(o);
    /* a test hook: poison a gradient at this step (the non-finite guard) */
    o->fault_step = tg_cli_env_step(PROG, "ROWSEQ_FAULT_STEP");
}

/* ------------------------------------------------------------------ set-up */

tg_optim_config rowseq_optim_config(const rowseq_options *o)
{
    tg_optim_config c;
    if (tgx_optim_from_flag(o->optim, &c) != 0)
        tg_cli_die_usage(PROG, "--optim: unknown '%s'", o->optim);
    if (c.kind == TG_OPTIM_SGD) c.momentum = o->momentum; /* --optim sgd --momentum M too */
    if (c.kind != TG_OPTIM_SGD) c.lr = 0.002; /* measured best for this task, see README */
    if (o->lr > 0) c.lr = o->lr;
    if (o->weight_decay >= 0) c.weight_decay = o->weight_decay;
    return c;
}

tg_lr_schedule rowseq_lr_schedule(const rowseq_options *o, double base, uint64_t steps_per_epoch)
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
double rowseq_lr_for_step(const rowseq_options *o, const tg_lr_schedule *s, uint64_t step,
                          uint64_t steps_per_epoch)
{
    if (s->kind != TG_LR_STEP) return tg_lr_at(s, step);
    uint64_t half = steps_per_epoch * (uint64_t)((o->epochs + 1) / 2);
    return step < half ? s->base_lr : tg_lr_at(s, step - half + steps_per_epoch);
}
