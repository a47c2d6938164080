/* seq2seq's training checkpoints (see resume.h): inheritance of settings
 * on --resume, the configuration. */
#include "resume.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define PROG "seq2seq"

/* ------------------------------------------------------------------ inheritance */

/* A resume must match these: they fix the model's shape, the training
 * pairs, what the data position points at, what the optimizer state means
 * and (seed) the --valid-frac split and every shard's dropout stream. The
 * data flags are in the file only for the corpus they apply to. */
static const char *const config_flags[] = {
    "cell",  "embed",       "hidden", "layers",     "dropout",    "feed-context",
    "reverse", "attention", "bidirectional", "corpus-seed", "pairs", "subwords", "lowercase", "max-tokens", "valid-frac",
    "min-count", "batch",   "shards", "optim",      "seed",       NULL};
/* Recorded and inherited, but a resume may change them. The stopping
 * rules (epochs, steps, seconds) are limits that all apply, each inherited
 * on its own. */
static const char *const setting_flags[] = {"lr",         "clip",       "label-smoothing",
                                            "epochs",     "steps",      "seconds",
                                            "test-pairs", "eval-every", NULL};
/* The pair files are one choice: both are taken when neither is given. */
static const char *const data_flags[] = {"train", "test", NULL};

void s2s_inherit_settings(const char *path, const tg_cmdline *cl, tg_inherited *keep)
{
    /* not required: a file holds only its corpus's flags; the load names
     * what is missing */
    const tg_resume_flags which = {config_flags, setting_flags, data_flags, NULL, 0};
    tg_trainckpt_inherit(PROG, path, &which, cl, keep);
}

/* ------------------------------------------------------------------ configuration */

/* The training pairs as trained on (after reading, filtering, lowercasing
 * and the --valid-frac split), in order: an edited file with the same
 * vocabularies would move the data position. */
static uint64_t pairs_hash(const s2s_pairs *p)
{
    uint64_t h = TG_FNV1A_BASIS;
    for (size_t i = 0; i < p->n; i++) {
        h = tg_fnv1a(h, p->src[i], strlen(p->src[i]) + 1); /* the NUL separates the sides */
        h = tg_fnv1a(h, p->tgt[i], strlen(p->tgt[i]) + 1);
    }
    return h;
}

/* The corpus and the flags that shape its pairs. */
static int register_corpus(tg_trainckpt *ck, const s2s_options *o)
{
    char seed[32];
    snprintf(seed, sizeof seed, "%llu", (unsigned long long)o->corpus_seed);
    int bad = tg_trainckpt_config(ck, "corpus", o->train ? "tsv" : "built-in");
    if (!o->train)
        bad = bad || tg_trainckpt_config(ck, "corpus-seed", seed) ||
              tg_trainckpt_config_int(ck, "pairs", o->pairs);
    else
        bad = bad || tg_trainckpt_config_int(ck, "lowercase", o->lowercase) ||
              tg_trainckpt_config_int(ck, "max-tokens", o->max_tokens) ||
              (!o->test && tg_trainckpt_config_double(ck, "valid-frac", o->valid_frac));
    return bad || tg_trainckpt_config_int(ck, "subwords", o->subwords) ||
           tg_trainckpt_config_int(ck, "min-count", o->min_count);
}

static int register_settings(tg_trainckpt *ck, const s2s_options *o)
{
    int bad = tg_trainckpt_info_double(ck, "lr", o->lr) ||
              tg_trainckpt_info_double(ck, "clip", o->clip) ||
              tg_trainckpt_info_double(ck, "label-smoothing", o->label_smoothing) ||
              tg_trainckpt_info_int(ck, "epochs", o->epochs) ||
              tg_trainckpt_info_int(ck, "steps", o->steps) ||
              tg_trainckpt_info_double(ck, "seconds", o->seconds) ||
              tg_trainckpt_info_int(ck, "eval-every", o->eval_every);
    if (!o->train) return bad || tg_trainckpt_info_int(ck, "test-pairs", o->test_pairs);
    return bad || tg_trainckpt_info(ck, "train", o->train) ||
           (o->test && tg_trainckpt_info(ck, "test", o->test));
}

/* The words of v from id 4 on, space-separated (a word holds no white
 * space): one line, also in a mismatch message. */
static char *vocab_words(const s2s_vocab *v)
{
    char *s = s2s_vocab_join(v);
    for (char *p = s; p && *p; p++)
        if (*p == '\n') *p = ' ';
    return s;
}

/* The piece models (subword mode), after the vocabularies they define. */
static int register_pieces(tg_trainckpt *ck, const s2s_pieces *pc)
{
    char err[256];
    if (!pc || !s2s_pieces_on(pc)) return 0;
    char *sp = s2s_subword_to_text(pc->src, err, sizeof err);
    char *tp = sp ? s2s_subword_to_text(pc->tgt, err, sizeof err) : NULL;
    int bad = !sp || !tp || tg_trainckpt_config(ck, "src-pieces", sp) ||
              tg_trainckpt_config(ck, "tgt-pieces", tp);
    free(sp);
    free(tp);
    return bad;
}

int s2s_resume_pieces(const char *path, s2s_pieces *p, char *err, size_t errlen)
{
    int rc = s2s_pieces_from_file(path, "config.", "config", "src-pieces", "tgt-pieces", p, err,
                                  errlen);
    if (rc == 0 && !p->src) {
        snprintf(err, errlen, "%s: config 'src-pieces' missing: the run has --subwords but the "
                 "checkpoint holds no piece models", path);
        rc = -1;
    }
    return rc;
}

int s2s_register_config(tg_trainckpt *ck, const s2s_options *o, const s2s_config *m,
                        const s2s_vocab *src, const s2s_vocab *tgt, const s2s_pairs *train,
                        const s2s_pieces *pc)
{
    char seed[32], data[80];
    char *sv = vocab_words(src), *tv = vocab_words(tgt);
    snprintf(seed, sizeof seed, "%llu", (unsigned long long)o->seed);
    snprintf(data, sizeof data, "%zu pairs, fnv1a %016llx", train->n,
             (unsigned long long)pairs_hash(train));
    /* in the order a mismatch is reported: the model, the corpus, its
     * vocabularies, its pairs (the same vocabularies, edited pairs), the
     * batches and the optimizer */
    int bad = !sv || !tv || tg_trainckpt_config(ck, "cell", m->cell->name) ||
              tg_trainckpt_config_int(ck, "embed", m->embed) ||
              tg_trainckpt_config_int(ck, "hidden", m->hidden) ||
              tg_trainckpt_config_int(ck, "layers", m->layers) ||
              tg_trainckpt_config_double(ck, "dropout", m->dropout) ||
              tg_trainckpt_config_int(ck, "feed-context", m->feed_context) ||
              tg_trainckpt_config_int(ck, "reverse", m->reverse_source) ||
              /* absent from the files of a run without them, as before they
               * existed; a resume that drops them is a config mismatch too */
              tg_trainckpt_config_unless(ck, "attention", tg_attn_kind_name(m->attention),
                                         "none") ||
              tg_trainckpt_config_unless(ck, "bidirectional", m->bidirectional ? "1" : "0",
                                         "0") ||
              register_corpus(ck, o) || tg_trainckpt_config(ck, "src-vocab", sv) ||
              tg_trainckpt_config(ck, "tgt-vocab", tv) || register_pieces(ck, pc) ||
              tg_trainckpt_config(ck, "data", data) ||
              tg_trainckpt_config_int(ck, "batch", o->batch) ||
              tg_trainckpt_config_int(ck, "shards", o->shards) ||
              tg_trainckpt_config(ck, "optim", o->optim) || tg_trainckpt_config(ck, "seed", seed) ||
              register_settings(ck, o);
    free(sv);
    free(tv);
    return bad ? -1 : 0;
}
