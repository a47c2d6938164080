/* charlm's training checkpoints (--checkpoint, --every, --resume) over
 * examples/common/trainckpt.h: which settings a resume inherits and which it
 * must match, the check of a text taken from the checkpoint, and the run's
 * configuration. The state itself is registered by charlm.c (step, running
 * averages) and train.c (data position, dropout generators, carried
 * recurrent state). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "charlm.h"

#define PROG "charlm"

/* ------------------------------------------------------------------ inheritance */

/* A resume must match these: they fix the model's shape, what the data
 * position points at and what the optimizer state means. */
static const char *const config_flags[] = {"cell",   "embed",  "hidden", "layers",
                                           "dropout", "seq-len", "batch",  "shards",
                                           "valid-frac", "optim", "momentum", NULL};
/* Recorded and inherited, but a resume may change them. */
static const char *const setting_flags[] = {"lr",     "weight-decay", "clip", "schedule",
                                            "warmup", "seed",         NULL};
/* The stopping rule is one choice: --steps, --seconds or both. */
static const char *const stop_flags[] = {"steps", "seconds", NULL};
/* Inherited when the file has them: --text only when the run was given it
 * (else: the default corpus); --eval-every from files of this version on
 * (it decides which model --save keeps). */
static const char *const optional_flags[] = {"text", "eval-every", NULL};

void charlm_inherit_settings(const char *path, const tg_cmdline *cl, tg_inherited *keep)
{
    const tg_resume_flags which = {config_flags, setting_flags, stop_flags, optional_flags, 1};
    tg_trainckpt_inherit(PROG, path, &which, cl, keep);
}

/* ------------------------------------------------------------------ configuration */

/* "N characters, fnv1a HASH" over the code points: a different text with
 * the same vocabulary (an edited file) would put the data position
 * somewhere else. */
static void text_identity(const uint32_t *cps, size_t n, char *out, size_t cap)
{
    uint64_t h = TG_FNV1A_BASIS;
    for (size_t i = 0; i < n; i++) h = tg_fnv1a_u32(h, cps[i]);
    snprintf(out, cap, "%zu characters, fnv1a %016llx", n, (unsigned long long)h);
}

/* The first code point in one vocabulary and not the other (0 if none). */
static uint32_t first_difference(const tg_vocab *a, const tg_vocab *b)
{
    int i = 0;
    while (i < a->size && i < b->size && a->cps[i] == b->cps[i]) i++;
    if (i < a->size && (i >= b->size || a->cps[i] < b->cps[i])) return a->cps[i];
    return i < b->size ? b->cps[i] : 0;
}

void charlm_check_inherited_text(const char *path, const char *text, const tg_vocab *v,
                                 const uint32_t *cps, size_t n)
{
    char err[1024], now[80], differs[256] = "";
    tg_checkpoint *c = tg_checkpoint_open(path, err, sizeof err);
    if (!c) tg_cli_die(PROG, "%s", err);
    const char *vocab = tg_checkpoint_meta(c, "config.vocab");
    const char *ident = tg_checkpoint_meta(c, "config.text");
    char *mine = tg_vocab_format(v);
    tg_vocab theirs = {0, NULL};
    text_identity(cps, n, now, sizeof now);
    /* a file without them fails its load, which names what is missing */
    if (mine && vocab && strcmp(vocab, mine) != 0 &&
        tg_vocab_parse(&theirs, vocab, err, sizeof err) == 0)
        snprintf(differs, sizeof differs, "its vocabulary is %d characters now, %d in the "
                 "checkpoint (U+%04X is in one, not the other)", v->size, theirs.size,
                 (unsigned)first_difference(v, &theirs));
    else if (ident && strcmp(ident, now) != 0)
        snprintf(differs, sizeof differs, "%s now, %.80s in the checkpoint", now, ident);
    tg_vocab_free(&theirs);
    tg_checkpoint_close(c);
    if (!mine) tg_cli_die(PROG, "out of memory");
    free(mine);
    if (differs[0])
        tg_cli_die(PROG, "%s: the run's text %s (taken from the checkpoint) has changed: %s; "
                   "give --text FILE with the run's text", path, text, differs);
}

static int register_settings(tg_trainckpt *ck, const charlm_options *o)
{
    char seed[32];
    snprintf(seed, sizeof seed, "%llu", (unsigned long long)o->seed);
    return tg_trainckpt_info_double(ck, "lr", o->lr) ||
           tg_trainckpt_info_double(ck, "weight-decay", o->weight_decay) ||
           tg_trainckpt_info_double(ck, "clip", o->clip) ||
           tg_trainckpt_info(ck, "schedule", o->schedule) ||
           tg_trainckpt_info_int(ck, "warmup", o->warmup) ||
           tg_trainckpt_info_int(ck, "steps", o->steps) ||
           tg_trainckpt_info_double(ck, "seconds", o->seconds) ||
           tg_trainckpt_info(ck, "seed", seed) ||
           tg_trainckpt_info_int(ck, "eval-every", o->eval_every) ||
           (o->text && tg_trainckpt_info(ck, "text", o->text));
}

int charlm_register_config(tg_trainckpt *ck, const charlm_options *o,
                           const charmodel_config *m, const tg_vocab *v, const uint32_t *cps,
                           size_t n)
{
    char text[80];
    char *vocab = tg_vocab_format(v);
    text_identity(cps, n, text, sizeof text);
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
