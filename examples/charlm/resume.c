/* charlm's training checkpoints (--checkpoint, --every, --resume) over
 * examples/common/trainckpt.h: which settings a resume inherits and which it
 * must match, and the start-up checks of the checkpoint path. The state
 * itself is registered by charlm.c (step, running averages) and train.c
 * (data position, dropout generators, carried recurrent state). */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "charlm.h"

#define PROG "charlm"

/* A resume must match these: they fix the model's shape, what the data
 * position points at and what the optimizer state means. */
static const char *const config_flags[] = {"cell",   "embed",  "hidden", "layers",
                                           "dropout", "seq-len", "batch",  "shards",
                                           "valid-frac", "optim", "momentum"};
/* Recorded and inherited, but a resume may change them. */
static const char *const setting_flags[] = {"lr", "weight-decay", "clip", "schedule", "warmup",
                                            "seed"};

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
                    const char *flag, charlm_inherited *keep)
{
    char key[96];
    snprintf(key, sizeof key, "%s%s", prefix, flag);
    const char *v = tg_checkpoint_meta(c, key);
    if (!v)
        tg_cli_die(PROG, "%s: metadata '%s' is missing: not written by this version of charlm",
                   path, key);
    size_t len = strlen(flag) + strlen(v) + 4;
    char *arg = malloc(len);
    if (!arg || keep->n >= CHARLM_MAX_FLAGS) tg_cli_die(PROG, "out of memory");
    snprintf(arg, len, "--%s=%s", flag, v);
    keep->arg[keep->n++] = arg;
}

void charlm_inherit_settings(const char *path, charlm_cmdline *cl, charlm_inherited *keep)
{
    char err[1024];
    keep->n = 0;
    tg_checkpoint *c = tg_checkpoint_open(path, err, sizeof err);
    if (!c) tg_cli_die(PROG, "%s", err);
    check_program(c, path);
    for (size_t i = 0; i < COUNT(config_flags); i++)
        if (!charlm_given(cl, config_flags[i])) inherit(c, path, "config.", config_flags[i], keep);
    for (size_t i = 0; i < COUNT(setting_flags); i++)
        if (!charlm_given(cl, setting_flags[i])) inherit(c, path, "info.", setting_flags[i], keep);
    /* the stopping rule is one choice: --steps, --seconds or both */
    if (!charlm_given(cl, "steps") && !charlm_given(cl, "seconds")) {
        inherit(c, path, "info.", "steps", keep);
        inherit(c, path, "info.", "seconds", keep);
    }
    tg_checkpoint_close(c);
    /* parsed like a command line: the same types, ranges and choices */
    char *argv[CHARLM_MAX_FLAGS + 1];
    argv[0] = cl->argv[0];
    memcpy(argv + 1, keep->arg, (size_t)keep->n * sizeof *argv);
    if (tg_cli_parse_args(keep->n + 1, argv, cl->flags, cl->n, NULL, err, sizeof err) != TG_CLI_OK)
        tg_cli_die(PROG, "%s: a stored setting is not valid: %s", path, err);
}

void charlm_inherited_free(charlm_inherited *keep)
{
    for (int i = 0; i < keep->n; i++) free(keep->arg[i]);
    keep->n = 0;
}

/* ------------------------------------------------------------------ configuration */

/* FNV-1a over the code points: a different text with the same vocabulary
 * (an edited file) would put the data position somewhere else. */
static uint64_t text_hash(const uint32_t *cps, size_t n)
{
    uint64_t h = 0xcbf29ce484222325ull;
    for (size_t i = 0; i < n; i++)
        for (int b = 0; b < 4; b++) {
            h ^= (cps[i] >> (8 * b)) & 0xFF;
            h *= 0x100000001b3ull;
        }
    return h;
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

static int register_settings(tg_trainckpt *ck, const charlm_options *o)
{
    char seed[32];
    snprintf(seed, sizeof seed, "%llu", (unsigned long long)o->seed);
    return info_double(ck, "lr", o->lr) || info_double(ck, "weight-decay", o->weight_decay) ||
           info_double(ck, "clip", o->clip) || tg_trainckpt_info(ck, "schedule", o->schedule) ||
           info_int(ck, "warmup", o->warmup) || info_int(ck, "steps", o->steps) ||
           info_double(ck, "seconds", o->seconds) || tg_trainckpt_info(ck, "seed", seed);
}

int charlm_register_config(tg_trainckpt *ck, const charlm_options *o,
                           const charmodel_config *m, const tg_vocab *v, const uint32_t *cps,
                           size_t n)
{
    char text[80];
    char *vocab = tg_vocab_format(v);
    snprintf(text, sizeof text, "%zu characters, fnv1a %016llx", n,
             (unsigned long long)text_hash(cps, n));
    /* in the order a mismatch is reported: the model, its data, the optimizer */
    int bad = !vocab || tg_trainckpt_config(ck, "cell", m->kind->name) ||
              tg_trainckpt_config_int(ck, "embed", m->embed) ||
              tg_trainckpt_config_int(ck, "hidden", m->hidden) ||
              tg_trainckpt_config_int(ck, "layers", m->layers) ||
              tg_trainckpt_config_double(ck, "dropout", m->dropout) ||
              tg_trainckpt_config(ck, "vocab", vocab) || tg_trainckpt_config(ck, "text", text) ||
              tg_trainckpt_config_int(ck, "seq-len", o->seq_len) ||
              tg_trainckpt_config_int(ck, "batch", o->batch) ||
              tg_trainckpt_config_int(ck, "shards", o->shards) ||
              tg_trainckpt_config_double(ck, "valid-frac", o->valid_frac) ||
              tg_trainckpt_config(ck, "optim", o->optim) ||
              tg_trainckpt_config_double(ck, "momentum", o->momentum) ||
              register_settings(ck, o);
    free(vocab);
    return bad ? -1 : 0;
}
