/* charlm's command line: defaults, the flag table, the checks between
 * flags, defaults that follow --optim, and --resume's inherited settings
 * (resume.c). */
#include <string.h>

#include "charlm.h"
#include "trainrun.h"

#define PROG "charlm"

static const charlm_options defaults = {
    .cell = "lstm", .optim = "adam", .schedule = "constant", .prime = "",
    .hidden = 256, .embed = 256, .layers = 1, .seq_len = 64, .batch = 32, .steps = 1000,
    .threads = 0, .shards = 0, .temperature = 1.0, .lr = 0.002, .clip = 5.0, .valid_frac = 0.05,
    .seed = 1, .every = 100, .eval_every = 500,
};

/* The flag table over o; returns the number of flags. */
static int make_flags(charlm_options *o, tg_flag *f)
{
    int n = 0;
    f[n++] = (tg_flag){"text", TG_STR, &o->text, "UTF-8 training text; none: the King James "
                       "Bible from package bible-kjv", 0, 0, NULL};
    f[n++] = (tg_flag){"cell", TG_STR, &o->cell, "recurrent cell", 0, 0, tg_cell_kind_names()};
    f[n++] = (tg_flag){"hidden", TG_INT, &o->hidden, "units per recurrent layer", 1, 1 << 16, NULL};
    f[n++] = (tg_flag){"embed", TG_INT, &o->embed, "character embedding width", 1, 1 << 16, NULL};
    f[n++] = (tg_flag){"layers", TG_INT, &o->layers, "recurrent layers", 1, TG_MAX_LAYERS, NULL};
    f[n++] = (tg_flag){"dropout", TG_DOUBLE, &o->dropout, "dropout between layers and before "
                       "the output layer", 0, TG_CLI_DROPOUT_MAX, NULL};
    f[n++] = (tg_flag){"seq-len", TG_INT, &o->seq_len, "steps of backpropagation through time "
                       "per window", 1, 1 << 16, NULL};
    f[n++] = (tg_flag){"batch", TG_INT, &o->batch, "parallel streams over the text", 1, 1 << 16,
                       NULL};
    f[n++] = (tg_flag){"optim", TG_STR, &o->optim, "optimizer", 0, 0, TGX_OPTIM_CHOICES};
    f[n++] = (tg_flag){"lr", TG_DOUBLE, &o->lr, "learning rate (if not given: 0.002 for "
                       "adam/adamw, 1 for sgd, 0.1 for momentum)", 0, 100, NULL};
    f[n++] = (tg_flag){"momentum", TG_DOUBLE, &o->momentum, "SGD momentum (if not given: 0.9 "
                       "for --optim momentum, else 0)", 0, 0.999999, NULL};
    f[n++] = (tg_flag){"weight-decay", TG_DOUBLE, &o->weight_decay, "weight decay (if not "
                       "given: 0.01 for adamw, else 0)", 0, 10, NULL};
    f[n++] = (tg_flag){"schedule", TG_STR, &o->schedule, "learning-rate schedule (cosine "
                       "decays to 0 over --steps)", 0, 0, "constant,cosine"};
    f[n++] = (tg_flag){"warmup", TG_INT, &o->warmup, "linear learning-rate warm-up steps", 0,
                       1 << 30, NULL};
    f[n++] = (tg_flag){"clip", TG_DOUBLE, &o->clip, "clip the gradient's global norm to this "
                       "(0: no clipping)", 0, 1e9, NULL};
    f[n++] = (tg_flag){"steps", TG_INT, &o->steps, "training steps (0: none, or no limit with "
                       "--seconds)", 0, 1 << 30, NULL};
    f[n++] = (tg_flag){"seconds", TG_DOUBLE, &o->seconds, "stop training after this many "
                       "seconds (0: no limit)", 0, 1e9, NULL};
    f[n++] = (tg_flag){"eval-every", TG_INT, &o->eval_every, TGX_HELP_EVAL_EVERY("steps"), 0,
                       1 << 30, NULL};
    f[n++] = (tg_flag){"valid-frac", TG_DOUBLE, &o->valid_frac, "fraction of the text, at its "
                       "end, held out for validation", 0, 0.5, NULL};
    f[n++] = (tg_flag){"threads", TG_INT, &o->threads, TGX_HELP_THREADS, 0, 1024, NULL};
    f[n++] = (tg_flag){"shards", TG_INT, &o->shards, TGX_SHARDS_HELP, 0, CHARLM_MAX_SHARDS,
                       NULL};
    f[n++] = (tg_flag){"seed", TG_U64, &o->seed, "random seed", 0, 0, NULL};
    f[n++] = (tg_flag){"save", TG_STR, &o->save, TGX_HELP_SAVE("the model (parameters, "
                       "optimizer, config, vocabulary) at the end, or the best by validation "
                       "when --eval-every evaluated"), 0, 0, NULL};
    f[n++] = (tg_flag){"load", TG_STR, &o->load, TGX_HELP_LOAD("its config and vocabulary"), 0,
                       0, NULL};
    f[n++] = (tg_flag){"export-torch", TG_STR, &o->export_torch, TGX_HELP_EXPORT_TORCH("CharRNN"),
                       0, 0, NULL};
    f[n++] = (tg_flag){"import-torch", TG_STR, &o->import_torch, TGX_HELP_IMPORT_TORCH("CharRNN"),
                       0, 0, NULL};
    n += tgx_checkpoint_flags(f + n, &o->checkpoint, &o->every, &o->resume, &o->skip_nonfinite);
    f[n++] = (tg_flag){"sample", TG_INT, &o->sample, "characters to generate after training",
                       0, 1 << 30, NULL};
    f[n++] = (tg_flag){"temperature", TG_DOUBLE, &o->temperature, "sampling temperature (0: "
                       "greedy)", 0, 100, NULL};
    f[n++] = (tg_flag){"prime", TG_STR, &o->prime, "text the sample continues; not given: the "
                       "first character of the text", 0, 0, NULL};
    f[n++] = (tg_flag){"log", TG_STR, &o->log, TGX_HELP_LOG("one row per step"), 0, 0, NULL};
    return n;
}

static int given(const tg_cmdline *c, const char *name) { return tg_cmdline_given(c, name); }

/* The run's checkpoint and output files. */
tg_run_files charlm_run_files(const charlm_options *o)
{
    tg_run_files f = {.checkpoint = o->checkpoint, .resume = o->resume, .load = o->load,
                      .save = o->save, .log = o->log};
    tg_run_files_add(f.writes, "--export-torch", o->export_torch);
    tg_run_files_add(f.reads, "--text", o->text);
    tg_run_files_add(f.reads, "--import-torch", o->import_torch);
    return f;
}

/* Flags that exclude or need each other. */
static void check_combinations(const charlm_options *o, const tg_cmdline *c)
{
    const tg_run_files files = charlm_run_files(o);
    tg_trainckpt_check_flags(PROG, c, &files);
    if (o->import_torch && (o->load || o->resume))
        tg_cli_die_usage(PROG, "--import-torch and --%s exclude each other (both give the model)",
                         o->load ? "load" : "resume");
}

/* Defaults that depend on --optim; on --resume they come from the file. */
static void derive_defaults(charlm_options *o, const tg_cmdline *c)
{
    if (!given(c, "lr"))
        o->lr = !strcmp(o->optim, "sgd") ? 1.0 : !strcmp(o->optim, "momentum") ? 0.1 : 0.002;
    if (!given(c, "weight-decay")) o->weight_decay = !strcmp(o->optim, "adamw") ? 0.01 : 0.0;
    if (!given(c, "momentum")) o->momentum = !strcmp(o->optim, "momentum") ? 0.9 : 0.0;
}

void charlm_parse_options(int argc, char **argv, charlm_options *o, tg_cmdline *c,
                          tg_inherited *inh)
{
    *o = defaults;
    c->argc = argc;
    c->argv = argv;
    c->n = make_flags(o, c->flags);
    tg_cli_parse(argc, argv, c->flags, c->n, PROG,
                 "Train a character-level language model on a UTF-8 text; report validation "
                 "bits per character;\nsave, load and sample; checkpoint and resume exactly. "
                 "Training flags: --steps, --seconds\n(with --load or --import-torch, nothing trains unless one "
                 "is given: --sample needs no text, --text is evaluated).",
                 NULL);
    check_combinations(o, c);
    /* only a sample reads them: without one they were dropped unsaid */
    if (o->sample == 0 && (given(c, "prime") || given(c, "temperature")))
        tg_cli_die_usage(PROG, "--%s needs --sample N: only a sample reads it",
                         given(c, "prime") ? "prime" : "temperature");
    /* "0: no limit" for both: the run trained nothing and said nothing (on
     * --resume it also dropped the run's own --steps) */
    if (given(c, "seconds") && o->seconds == 0 && !given(c, "steps"))
        tg_cli_die_usage(PROG, "--seconds 0 alone sets no limit at all: give --seconds more than "
                         "0, --steps N, or --steps 0 to only evaluate");
    if (given(c, "seconds") && !given(c, "steps")) o->steps = 0; /* the clock decides */
    if ((o->load || o->import_torch) && !given(c, "steps") && !given(c, "seconds"))
        o->steps = 0; /* a loaded model trains only when a training flag asks */
    inh->n = 0;
    if (o->resume)
        charlm_inherit_settings(o->resume, c, inh);
    else
        derive_defaults(o, c);
    tgx_check_momentum(PROG, o->optim, o->momentum);
    if (!strcmp(o->schedule, "cosine") && o->steps == 0)
        tg_cli_die_usage(PROG, "--schedule cosine needs --steps N (the length of the decay)");
    o->threads = tgx_run_threads(o->threads);
    o->shards = tgx_default_shards(o->shards, o->threads, o->batch);
    if (o->shards > CHARLM_MAX_SHARDS) o->shards = CHARLM_MAX_SHARDS;
    tgx_check_shards(PROG, o->shards, o->batch, CHARLM_MAX_SHARDS); /* before the text is read */
    /* a test hook: poison a gradient at this step (the non-finite guard) */
    o->fault_step = tg_cli_env_step(PROG, "CHARLM_FAULT_STEP");
}
