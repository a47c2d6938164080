/* seq2seq checkpoints (see model_io.h). */
#include "model_io.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "tg_checkpoint.h"
#include "torch_io.h" /* tgx_torch_refuse_as_model: a state_dict given to --load */
#include "torch_s2s.h" /* S2S_TORCH_MODULE */
#include "trainrun.h"

int s2s_save(const char *path, const s2s_model *m, tg_optim *opt, const s2s_vocab *src,
             const s2s_vocab *tgt, const s2s_tokenize_options *tok, char *err, size_t errlen)
{
    return s2s_save_with_pieces(path, m, opt, src, tgt, tok, NULL, NULL, 0, err, errlen);
}

void s2s_meta_free(s2s_meta *mm)
{
    free(mm->sv);
    free(mm->tv);
    free(mm->sp);
    free(mm->tp);
    memset(mm, 0, sizeof *mm);
}

int s2s_meta_make(s2s_meta *mm, const s2s_config *c, const s2s_vocab *src, const s2s_vocab *tgt,
                  const s2s_tokenize_options *tok, const s2s_pieces *pieces, const char *path,
                  char *err, size_t errlen)
{
    memset(mm, 0, sizeof *mm);
    char(*num)[32] = mm->num;
    snprintf(num[0], sizeof num[0], "%d", c->embed);
    snprintf(num[1], sizeof num[1], "%d", c->hidden);
    snprintf(num[2], sizeof num[2], "%d", c->layers);
    snprintf(num[3], sizeof num[3], "%.17g", c->dropout);
    snprintf(num[4], sizeof num[4], "%d", c->feed_context);
    snprintf(num[5], sizeof num[5], "%d", c->reverse_source);
    snprintf(num[6], sizeof num[6], "%d", tok->lowercase);
    snprintf(num[7], sizeof num[7], "%d", tok->split_punct);
    snprintf(num[8], sizeof num[8], "%d", c->bidirectional);
    int on = pieces && s2s_pieces_on(pieces);
    mm->sv = s2s_vocab_join(src);
    mm->tv = s2s_vocab_join(tgt);
    if (on) {
        mm->sp = s2s_subword_to_text(pieces->src, err, errlen);
        mm->tp = mm->sp ? s2s_subword_to_text(pieces->tgt, err, errlen) : NULL;
        if (!mm->sp || !mm->tp) {
            s2s_meta_free(mm);
            return -1;
        }
    }
    if (!mm->sv || !mm->tv) {
        s2s_meta_free(mm);
        return snprintf(err, errlen, "%s: out of memory", path), -1;
    }
    const tg_ckpt_meta kv[] = {
        {"s2s.cell", c->cell->name},    {"s2s.embed", num[0]},
        {"s2s.hidden", num[1]},         {"s2s.layers", num[2]},
        {"s2s.dropout", num[3]},        {"s2s.feed_context", num[4]},
        {"s2s.reverse_source", num[5]}, {"s2s.lowercase", num[6]},
        {"s2s.split_punct", num[7]},    {"s2s.src_vocab", mm->sv},
        {"s2s.tgt_vocab", mm->tv},
        {"s2s.attention", tg_attn_kind_name(c->attention)},
        {"s2s.bidirectional", num[8]},
        {"s2s.src_pieces", mm->sp},     {"s2s.tgt_pieces", mm->tp}, /* last: absent in word mode */
    };
    _Static_assert(sizeof kv / sizeof *kv <= S2S_META_MAX, "raise S2S_META_MAX");
    mm->n = sizeof kv / sizeof *kv - (on ? 0 : 2);
    memcpy(mm->kv, kv, mm->n * sizeof *kv);
    return 0;
}

int s2s_save_with_pieces(const char *path, const s2s_model *m, tg_optim *opt,
                         const s2s_vocab *src, const s2s_vocab *tgt,
                         const s2s_tokenize_options *tok, const s2s_pieces *pieces,
                         const tg_ckpt_meta *extra, size_t n_extra, char *err, size_t errlen)
{
    s2s_meta mm;
    tg_ckpt_meta kv[S2S_META_MAX + S2S_META_EXTRA];
    if (n_extra > S2S_META_EXTRA)
        return snprintf(err, errlen, "%s: %zu metadata entries past the model's", path, n_extra),
               -1;
    if (s2s_meta_make(&mm, &m->cfg, src, tgt, tok, pieces, path, err, errlen) != 0) return -1;
    memcpy(kv, mm.kv, mm.n * sizeof *kv);
    if (n_extra) memcpy(kv + mm.n, extra, n_extra * sizeof *kv);
    tgx_write_begin(path); /* a second Ctrl-C during it leaves no temporary */
    int rc = tg_checkpoint_save_training(path, m->params, opt, kv, mm.n + n_extra, err, errlen);
    tgx_write_end();
    s2s_meta_free(&mm);
    return rc;
}

static int read_config(const tg_checkpoint *ck, const char *path, s2s_config *c,
                       s2s_tokenize_options *tok, char *err, size_t errlen)
{
    const char *cell = tg_checkpoint_meta(ck, "s2s.cell"), *drop = tg_checkpoint_meta(ck, "s2s.dropout");
    memset(c, 0, sizeof *c);
    if (!cell) /* the first key read: another program's model, or no model at all */
        return snprintf(err, errlen, "%s: metadata 's2s.cell' missing: not a seq2seq model", path),
               -1;
    c->cell = tg_cell_kind_by_name(cell);
    if (!c->cell)
        return snprintf(err, errlen, "%s: metadata 's2s.cell' = '%s' is not one of %s", path, cell,
                        tg_cell_kind_names()), -1;
    if (drop && tg_meta_dropout(path, "s2s.dropout", drop, &c->dropout, err, errlen) != 0)
        return -1;
    if (tg_meta_int(ck, path, "s2s.embed", 1, S2S_MAX_WIDTH, &c->embed, err, errlen) ||
        tg_meta_int(ck, path, "s2s.hidden", 1, S2S_MAX_WIDTH, &c->hidden, err, errlen) ||
        tg_meta_int(ck, path, "s2s.layers", 1, TG_MAX_LAYERS, &c->layers, err, errlen) ||
        tg_meta_int(ck, path, "s2s.feed_context", 0, 1, &c->feed_context, err, errlen) ||
        tg_meta_int(ck, path, "s2s.reverse_source", 0, 1, &c->reverse_source, err, errlen) ||
        tg_meta_int(ck, path, "s2s.lowercase", 0, 1, &tok->lowercase, err, errlen) ||
        tg_meta_int(ck, path, "s2s.split_punct", 0, 1, &tok->split_punct, err, errlen))
        return -1;
    /* optional: a model saved before attention has neither (none, one direction) */
    const char *attn = tg_checkpoint_meta(ck, "s2s.attention");
    if (attn && tg_attn_kind_by_name(attn, &c->attention) != 0)
        return snprintf(err, errlen, "%s: metadata 's2s.attention' = '%s' is not one of %s", path,
                        attn, tg_attn_kind_names()), -1;
    if (tg_checkpoint_meta(ck, "s2s.bidirectional") &&
        tg_meta_int(ck, path, "s2s.bidirectional", 0, 1, &c->bidirectional, err, errlen))
        return -1;
    if (c->bidirectional && c->hidden % 2 != 0)
        return snprintf(err, errlen, "%s: bidirectional with an odd hidden size %d", path,
                        c->hidden), -1;
    return 0;
}

static int read_vocab(const tg_checkpoint *ck, const char *path, const char *key, s2s_vocab *v,
                      char *err, size_t errlen)
{
    const char *s = tg_checkpoint_meta(ck, key);
    if (!s) return snprintf(err, errlen, "%s: metadata '%s' missing", path, key), -1;
    int rc = s2s_vocab_split(v, s);
    if (rc < 0) return snprintf(err, errlen, "%s: out of memory reading '%s'", path, key), -1;
    if (rc > 0)
        return snprintf(err, errlen, "%s: metadata '%s' is not a vocabulary (a word repeated, "
                        "empty or holding white space)", path, key), -1;
    return 0;
}

/* The metadata sets the model's size before any tensor is read, so a small
 * crafted file could ask for a model of many GiB (tgx_model_meta_fits). */
static int check_fits(const tg_checkpoint *ck, const s2s_config *c, const char *path, char *err,
                      size_t errlen)
{
    char what[160];
    snprintf(what, sizeof what, "embed %d, hidden %d, layers %d, vocabularies %d and %d", c->embed,
             c->hidden, c->layers, c->src_vocab, c->tgt_vocab);
    return tgx_model_meta_fits("seq2seq", ck, path, s2s_config_numel_floor(c),
                               s2s_config_numel_bound(c), what, err, errlen);
}

int s2s_build_from_meta(const tg_checkpoint *ck, const char *path, s2s_model *m,
                        s2s_vocab *src, s2s_vocab *tgt, s2s_tokenize_options *tok, char *err,
                        size_t errlen)
{
    s2s_config c;
    memset(m, 0, sizeof *m);
    if (read_config(ck, path, &c, tok, err, errlen) != 0) return -1;
    if (read_vocab(ck, path, "s2s.src_vocab", src, err, errlen) != 0) return -1;
    if (read_vocab(ck, path, "s2s.tgt_vocab", tgt, err, errlen) != 0) {
        s2s_vocab_free(src);
        return -1;
    }
    c.src_vocab = src->n;
    c.tgt_vocab = tgt->n;
    if (check_fits(ck, &c, path, err, errlen) != 0) {
        s2s_vocab_free(tgt);
        s2s_vocab_free(src);
        return -1;
    }
    if (s2s_model_init(m, &c, 0) != 0) {
        snprintf(err, errlen, "%s: out of memory", path);
        s2s_vocab_free(tgt);
        s2s_vocab_free(src);
        return -1;
    }
    return 0;
}

int s2s_load(const char *path, s2s_model *m, s2s_vocab *src, s2s_vocab *tgt,
             s2s_tokenize_options *tok, char *err, size_t errlen)
{
    tg_checkpoint *ck = tg_checkpoint_open(path, err, errlen);
    memset(m, 0, sizeof *m);
    if (!ck) return -1;
    if (tgx_torch_refuse_as_model(ck, path, S2S_TORCH_MODULE, err, errlen) != 0) {
        tg_checkpoint_close(ck);
        return -1;
    }
    int rc = s2s_build_from_meta(ck, path, m, src, tgt, tok, err, errlen);
    if (rc == 0 && (rc = tg_checkpoint_load_params(ck, m->params, err, errlen)) != 0) {
        s2s_model_free(m);
        s2s_vocab_free(tgt);
        s2s_vocab_free(src);
    }
    tg_checkpoint_close(ck);
    return rc;
}

int s2s_load_optim(const char *path, tg_optim *opt, char *err, size_t errlen)
{
    tg_checkpoint *ck = tg_checkpoint_open(path, err, errlen);
    if (!ck) return -1;
    int rc = tg_checkpoint_load_optim(ck, opt, err, errlen);
    tg_checkpoint_close(ck);
    return rc;
}
