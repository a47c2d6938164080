/* Char-model checkpoints: safetensors parameters plus the configuration and
 * vocabulary in the header metadata, so a file alone rebuilds the model.
 * A charlm training checkpoint (--checkpoint, trainckpt.h) holds the same
 * fields as "config.<name>" instead of "charmodel.<name>", so it loads too. */
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "charmodel.h"
#include "cli.h"
#include "torch_io.h" /* tgx_torch_refuse_as_model: a state_dict given to --load */

int charmodel_save(const char *path, const charmodel *m, const tg_vocab *v, tg_optim *opt,
                   const tg_ckpt_meta *extra, size_t n_extra, char *err, size_t errlen)
{
    const charmodel_config *c = &m->cfg;
    if (v->size != c->vocab) {
        snprintf(err, errlen, "cannot save %s: vocabulary has %d entries, the model %d", path,
                 v->size, c->vocab);
        return -1;
    }
    char embed[16], hidden[16], layers[16], dropout[32];
    snprintf(embed, sizeof embed, "%d", c->embed);
    snprintf(hidden, sizeof hidden, "%d", c->hidden);
    snprintf(layers, sizeof layers, "%d", c->layers);
    snprintf(dropout, sizeof dropout, "%.17g", c->dropout);
    char *vocab = tg_vocab_format(v);
    tg_ckpt_meta *meta = malloc((7 + n_extra) * sizeof *meta);
    if (!vocab || !meta) {
        free(vocab);
        free(meta);
        snprintf(err, errlen, "cannot save %s: out of memory", path);
        return -1;
    }
    size_t n = 0;
    meta[n++] = (tg_ckpt_meta){CHARMODEL_KEY_FORMAT, "1"};
    meta[n++] = (tg_ckpt_meta){CHARMODEL_KEY_CELL, c->kind->name};
    meta[n++] = (tg_ckpt_meta){CHARMODEL_KEY_EMBED, embed};
    meta[n++] = (tg_ckpt_meta){CHARMODEL_KEY_HIDDEN, hidden};
    meta[n++] = (tg_ckpt_meta){CHARMODEL_KEY_LAYERS, layers};
    meta[n++] = (tg_ckpt_meta){CHARMODEL_KEY_DROPOUT, dropout};
    meta[n++] = (tg_ckpt_meta){CHARMODEL_KEY_VOCAB, vocab};
    for (size_t i = 0; i < n_extra; i++) meta[n++] = extra[i];
    int rc = tg_checkpoint_save_training(path, m->params, opt, meta, n, err, errlen);
    free(meta);
    free(vocab);
    return rc;
}

/* A metadata integer in [lo, hi]. */
/* Where the model's fields are: "charmodel.cell" ... in a model file,
 * "config.cell" ... in a charlm training checkpoint. key: a CHARMODEL_KEY_*. */
typedef struct key_map {
    int training; /* a charlm training checkpoint */
    char buf[64];
} key_map;

static const char *map_key(key_map *km, const char *key)
{
    if (!km->training) return key;
    snprintf(km->buf, sizeof km->buf, "config.%s", key + strlen("charmodel."));
    return km->buf;
}

static const char *meta_str(const tg_checkpoint *c, const char *path, const char *key, char *err,
                            size_t errlen)
{
    const char *s = tg_checkpoint_meta(c, key);
    if (!s && tgx_torch_refuse_as_model(c, path, "CharRNN", err, errlen) != 0) return NULL;
    if (!s)
        snprintf(err, errlen, "%s: metadata '%s' is missing: not a char-model checkpoint", path,
                 key);
    return s;
}

int charmodel_read_config(const tg_checkpoint *c, const char *path, charmodel_config *cfg,
                          tg_vocab *v, char *err, size_t errlen)
{
    memset(v, 0, sizeof *v);
    key_map km = {0, ""};
    const char *prog = tg_checkpoint_meta(c, "trainckpt.program");
    km.training = !tg_checkpoint_meta(c, CHARMODEL_KEY_FORMAT) && prog && !strcmp(prog, "charlm");
    const char *format = km.training ? "1" : meta_str(c, path, CHARMODEL_KEY_FORMAT, err, errlen);
    if (!format) return -1;
    if (strcmp(format, "1") != 0) {
        snprintf(err, errlen, "%s: metadata '%s' is '%.20s', this program reads format 1", path,
                 CHARMODEL_KEY_FORMAT, format);
        return -1;
    }
    const char *cell = meta_str(c, path, map_key(&km, CHARMODEL_KEY_CELL), err, errlen);
    if (!cell) return -1;
    cfg->kind = tg_cell_kind_by_name(cell);
    if (!cfg->kind) {
        snprintf(err, errlen, "%s: metadata '%s' is '%.40s', expected one of %s", path,
                 map_key(&km, CHARMODEL_KEY_CELL), cell, tg_cell_kind_names());
        return -1;
    }
    if (tg_meta_int(c, path, map_key(&km, CHARMODEL_KEY_EMBED), 1, 1 << 20, &cfg->embed, err,
                    errlen) ||
        tg_meta_int(c, path, map_key(&km, CHARMODEL_KEY_HIDDEN), 1, 1 << 20, &cfg->hidden, err,
                    errlen) ||
        tg_meta_int(c, path, map_key(&km, CHARMODEL_KEY_LAYERS), 1, TG_MAX_LAYERS, &cfg->layers,
                    err, errlen))
        return -1;
    const char *dropout = meta_str(c, path, map_key(&km, CHARMODEL_KEY_DROPOUT), err, errlen);
    if (!dropout) return -1;
    if (tg_meta_dropout(path, map_key(&km, CHARMODEL_KEY_DROPOUT), dropout, &cfg->dropout, err,
                        errlen) != 0)
        return -1;
    const char *vocab = meta_str(c, path, map_key(&km, CHARMODEL_KEY_VOCAB), err, errlen);
    char why[256];
    if (!vocab) return -1;
    if (tg_vocab_parse(v, vocab, why, sizeof why) != 0) {
        snprintf(err, errlen, "%s: metadata '%s': %s", path, map_key(&km, CHARMODEL_KEY_VOCAB),
                 why);
        return -1;
    }
    cfg->vocab = v->size;
    return 0;
}

int charmodel_load(const char *path, charmodel *m, tg_vocab *v, char *err, size_t errlen)
{
    memset(m, 0, sizeof *m);
    memset(v, 0, sizeof *v);
    tg_checkpoint *c = tg_checkpoint_open(path, err, errlen);
    if (!c) return -1;
    charmodel_config cfg;
    tg_rng r;
    tg_rng_seed(&r, 0); /* every value is overwritten by the file's */
    int rc = charmodel_read_config(c, path, &cfg, v, err, errlen);
    if (rc == 0) rc = charmodel_init(m, &cfg, &r, err, errlen);
    if (rc == 0 && (rc = tg_checkpoint_load_params(c, m->params, err, errlen)) != 0)
        charmodel_free(m);
    if (rc != 0) tg_vocab_free(v);
    tg_checkpoint_close(c);
    return rc;
}
