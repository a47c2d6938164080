/* rowseq's training checkpoints (--checkpoint, --every, --resume) over
 * examples/common/trainckpt.h: which settings a resume inherits and which it
 * must match, and the start-up checks of the checkpoint path. The loop's
 * state itself (step, data position, generators, running sums) is
 * registered by main.c. The conventions are charlm's (examples/charlm/
 * resume.c): same flags, same messages. */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "rowseq.h"

#define PROG "rowseq"

/* A resume must match these: they fix the model's shape, what the data
 * position points at and what the optimizer state means. (Stored as
 * config.<flag>; the image size and the training data are checked too.) */
static const char *const config_flags[] = {"cell",  "hidden", "layers", "dropout",
                                           "batch", "shards", "optim",  "momentum"};
/* Recorded and inherited, but a resume may change them. limit-train picks
 * the training images, which config 'train-data' then checks. */
static const char *const setting_flags[] = {"lr",      "weight-decay", "clip",
                                            "schedule", "epochs",      "steps",
                                            "seconds",  "seed",        "limit-train",
                                            "limit-test"};

#define COUNT(a) (sizeof(a) / sizeof((a)[0]))

/* ------------------------------------------------------------------ inheritance */

static void check_program(const tg_checkpoint *c, const char *path)
{
    const char *prog = tg_checkpoint_meta(c, "trainckpt.program");
    if (!tg_checkpoint_meta(c, "trainckpt.version"))
        tg_cli_die(PROG, "%s: not a training checkpoint (no 'trainckpt.version' metadata): "
                   "--resume takes a file written by --checkpoint (a --save file goes to --load)",
                   path);
    if (!prog || strcmp(prog, PROG) != 0)
        tg_cli_die(PROG, "%s: a training checkpoint of '%.40s', not of '%s'", path,
                   prog ? prog : "(unknown program)", PROG);
}

/* "--flag=<the file's value>" into keep, for a flag the command line left out. */
static void inherit(const tg_checkpoint *c, const char *path, const char *prefix,
                    const char *flag, rowseq_inherited *keep)
{
    char key[96];
    snprintf(key, sizeof key, "%s%s", prefix, flag);
    const char *v = tg_checkpoint_meta(c, key);
    if (!v)
        tg_cli_die(PROG, "%s: metadata '%s' is missing: not written by this version of rowseq",
                   path, key);
    size_t len = strlen(flag) + strlen(v) + 4;
    char *arg = malloc(len);
    if (!arg || keep->n >= ROWSEQ_MAX_FLAGS) tg_cli_die(PROG, "out of memory");
    snprintf(arg, len, "--%s=%s", flag, v);
    keep->arg[keep->n++] = arg;
}

void rowseq_inherit_settings(const char *path, rowseq_cmdline *cl, rowseq_inherited *keep)
{
    char err[1024];
    keep->n = 0;
    tg_checkpoint *c = tg_checkpoint_open(path, err, sizeof err);
    if (!c) tg_cli_die(PROG, "%s", err);
    check_program(c, path);
    for (size_t i = 0; i < COUNT(config_flags); i++)
        if (!rowseq_given(cl, config_flags[i])) inherit(c, path, "config.", config_flags[i], keep);
    for (size_t i = 0; i < COUNT(setting_flags); i++)
        if (!rowseq_given(cl, setting_flags[i])) inherit(c, path, "info.", setting_flags[i], keep);
    tg_checkpoint_close(c);
    /* parsed like a command line: the same types, ranges and choices */
    char *argv[ROWSEQ_MAX_FLAGS + 1];
    argv[0] = cl->argv[0];
    memcpy(argv + 1, keep->arg, (size_t)keep->n * sizeof *argv);
    if (tg_cli_parse_args(keep->n + 1, argv, cl->flags, cl->n, NULL, err, sizeof err) != TG_CLI_OK)
        tg_cli_die(PROG, "%s: a stored setting is not valid: %s", path, err);
}

void rowseq_inherited_free(rowseq_inherited *keep)
{
    for (int i = 0; i < keep->n; i++) free(keep->arg[i]);
    keep->n = 0;
}

/* ------------------------------------------------------------------ configuration */

/* FNV-1a over the image size, every pixel and every label: another data set
 * (or the same files edited) with the same number of images would put the
 * data position somewhere else. About 0.1 s for Fashion-MNIST's 47 MB. */
static uint64_t data_hash(const rowseq_data *d)
{
    uint64_t h = 0xcbf29ce484222325ull;
    const uint32_t dims[2] = {(uint32_t)d->rows, (uint32_t)d->cols};
    for (int i = 0; i < 2; i++)
        for (int b = 0; b < 4; b++) {
            h ^= (dims[i] >> (8 * b)) & 0xFF;
            h *= 0x100000001b3ull;
        }
    size_t n = (size_t)d->count * (size_t)d->rows * (size_t)d->cols;
    for (size_t i = 0; i < n; i++) {
        h ^= d->pixels[i];
        h *= 0x100000001b3ull;
    }
    for (int i = 0; i < d->count; i++) {
        h ^= d->labels[i];
        h *= 0x100000001b3ull;
    }
    return h;
}

void rowseq_data_identity(const rowseq_data *d, char *out, size_t cap)
{
    snprintf(out, cap, "%dx%dx%d fnv1a %016llx", d->count, d->rows, d->cols,
             (unsigned long long)data_hash(d));
}

static int info_double(tg_trainckpt *ck, const char *key, double x)
{
    char s[40];
    snprintf(s, sizeof s, "%.17g", x);
    return tg_trainckpt_info(ck, key, s);
}

static int info_int(tg_trainckpt *ck, const char *key, long long x)
{
    char s[32];
    snprintf(s, sizeof s, "%lld", x);
    return tg_trainckpt_info(ck, key, s);
}

/* As given (lr 0 and weight-decay -1 mean "the optimizer's default"), so
 * that they parse back as flags. */
static int register_settings(tg_trainckpt *ck, const rowseq_options *o)
{
    char seed[32];
    snprintf(seed, sizeof seed, "%llu", (unsigned long long)o->seed);
    return info_double(ck, "lr", o->lr) || info_double(ck, "weight-decay", o->weight_decay) ||
           info_double(ck, "clip", o->clip) || tg_trainckpt_info(ck, "schedule", o->schedule) ||
           info_int(ck, "epochs", o->epochs) || info_int(ck, "steps", o->steps) ||
           info_double(ck, "seconds", o->seconds) || tg_trainckpt_info(ck, "seed", seed) ||
           info_int(ck, "limit-train", o->limit_train) ||
           info_int(ck, "limit-test", o->limit_test);
}

int rowseq_register_config(tg_trainckpt *ck, const rowseq_options *o,
                           const rowseq_trainer_config *cfg, const rowseq_data *train)
{
    char data[80];
    rowseq_data_identity(train, data, sizeof data);
    /* in the order a mismatch is reported: the model, its data, the optimizer */
    int bad = tg_trainckpt_config(ck, "cell", cfg->kind->name) ||
              tg_trainckpt_config_int(ck, "hidden", cfg->hidden) ||
              tg_trainckpt_config_int(ck, "layers", cfg->layers) ||
              tg_trainckpt_config_double(ck, "dropout", cfg->dropout) ||
              tg_trainckpt_config_int(ck, "rows", cfg->steps) ||
              tg_trainckpt_config_int(ck, "cols", cfg->in) ||
              tg_trainckpt_config(ck, "train-data", data) ||
              tg_trainckpt_config_int(ck, "batch", cfg->batch) ||
              tg_trainckpt_config_int(ck, "shards", cfg->shards) ||
              tg_trainckpt_config(ck, "optim", o->optim) ||
              tg_trainckpt_config_double(ck, "momentum", cfg->optim.momentum) ||
              register_settings(ck, o);
    return bad ? -1 : 0;
}
