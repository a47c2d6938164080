/* seq2seq's data as the trainer reads it: the run's pairs, encoded as
 * ids, and length-bucketed batches in a random order. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "corpus_enko.h"
#include "program.h"
#include "trainrun.h"

/* Encodes pairs; target words the vocabulary lacks become tgt_oov (<unk>
 * for training, -1 for references so they never match). */
int s2s_encode_set(s2s_id_set *s, const s2s_pairs *p, const s2s_vocab *vs, const s2s_vocab *vt,
                      int tgt_oov)
{
    memset(s, 0, sizeof *s);
    s->n = p->n;
    s->src = calloc(p->n + 1, sizeof *s->src);
    s->tgt = calloc(p->n + 1, sizeof *s->tgt);
    s->src_len = calloc(p->n + 1, sizeof *s->src_len);
    s->tgt_len = calloc(p->n + 1, sizeof *s->tgt_len);
    if (!s->src || !s->tgt || !s->src_len || !s->tgt_len) return -1;
    for (size_t i = 0; i < p->n; i++) {
        int ns = s2s_count_tokens(p->src[i]), nt = s2s_count_tokens(p->tgt[i]);
        s->src[i] = malloc((size_t)(ns + 1) * sizeof **s->src);
        s->tgt[i] = malloc((size_t)(nt + 1) * sizeof **s->tgt);
        if (!s->src[i] || !s->tgt[i]) return -1;
        s->src_len[i] = s2s_vocab_encode(vs, p->src[i], s->src[i], ns, S2S_UNK);
        s->tgt_len[i] = s2s_vocab_encode(vt, p->tgt[i], s->tgt[i], nt, tgt_oov);
        if (s->src_len[i] > s->max_src) s->max_src = s->src_len[i];
        if (s->tgt_len[i] > s->max_tgt) s->max_tgt = s->tgt_len[i];
        s->tokens += s->src_len[i] + s->tgt_len[i];
    }
    return 0;
}

void s2s_free_set(s2s_id_set *s)
{
    for (size_t i = 0; i < s->n; i++) {
        if (s->src) free(s->src[i]);
        if (s->tgt) free(s->tgt[i]);
    }
    free(s->src);
    free(s->tgt);
    free(s->src_len);
    free(s->tgt_len);
}

double s2s_unknown_share(const s2s_id_set *s, int target)
{
    long unknown = 0, all = 0;
    for (size_t i = 0; i < s->n; i++) {
        const int *ids = target ? s->tgt[i] : s->src[i];
        int len = target ? s->tgt_len[i] : s->src_len[i];
        for (int k = 0; k < len; k++) unknown += ids[k] == S2S_UNK;
        all += len;
    }
    return all ? (double)unknown / (double)all : 0;
}

size_t s2s_id_set_bytes(const s2s_id_set *s)
{
    size_t n = 2 * s2s_heap_bytes((s->n + 1) * sizeof *s->src) +
               2 * s2s_heap_bytes((s->n + 1) * sizeof *s->src_len);
    for (size_t i = 0; i < s->n; i++)
        n += s2s_heap_bytes((size_t)(s->src_len[i] + 1) * sizeof **s->src) +
             s2s_heap_bytes((size_t)(s->tgt_len[i] + 1) * sizeof **s->tgt);
    return n;
}

/* A pair file that cannot be read; from_ckpt: --resume's checkpoint when
 * the file came from it (no --train, --test), else NULL. */
static _Noreturn void pairs_error(const char *from_ckpt, const char *what, const char *usage,
                                  const char *err)
{
    if (from_ckpt) tg_trainckpt_die_inherited(S2S_PROG, from_ckpt, what, usage, err);
    tg_cli_die(S2S_PROG, "%s", err);
}

/* The pair files' share of the memory available: half with words, a
 * quarter with subwords, as training holds the rest for what it makes of
 * them (measured on 400 000 pairs, 51 MB: the pairs 75 MiB, with their
 * ids 133 MiB; with their pieces too 233 MiB). why gets the words the
 * reader's refusal ends with. 0: nothing is known. */
static size_t pairs_memory(int subwords, char *why, size_t cap)
{
    char src[96], have[32];
    size_t avail = tgx_memory_available(S2S_PROG, src, sizeof src);
    tgx_format_bytes(avail, have, sizeof have);
    snprintf(why, cap, "%s of the %s available (%s), the rest kept for their %s: train on a "
             "shorter corpus", subwords ? "a quarter" : "half", have, src,
             subwords ? "pieces, ids and vocabularies" : "ids and vocabularies");
    return subwords ? avail / 4 : avail / 2;
}

void s2s_load_pairs(const s2s_options *o, const char *from_ckpt, int subwords, s2s_pairs *train,
                    s2s_pairs *test, s2s_tokenize_options *tok)
{
    char err[1536], why[256];
    s2s_pairs_init(train);
    s2s_pairs_init(test);
    if (!o->train) {
        enko_options eo;
        enko_options_default(&eo);
        eo.seed = o->corpus_seed;
        eo.n_train = o->pairs;
        eo.n_test = o->test_pairs;
        if (enko_generate(&eo, train, test, NULL, NULL, err, sizeof err) != 0)
            tg_cli_die(S2S_PROG, "built-in corpus: %s", err);
        return;
    }
    s2s_read_options ro;
    s2s_read_options_default(&ro);
    ro.tok = *tok;
    ro.max_tokens = o->max_tokens;
    ro.max_bytes = pairs_memory(subwords, why, sizeof why);
    ro.max_bytes_why = why;
    if (s2s_pairs_read_tsv(train, o->train, &ro, err, sizeof err) != 0)
        pairs_error(from_ckpt, "training pairs", "--train FILE", err);
    if (train->skipped_long)
        fprintf(stderr, "%s: %s: skipped %zu pairs longer than %d tokens\n", S2S_PROG, o->train,
                train->skipped_long, o->max_tokens);
    if (o->test) {
        ro.bytes_held = s2s_pairs_bytes(train); /* the two files share it */
        if (s2s_pairs_read_tsv(test, o->test, &ro, err, sizeof err) != 0)
            pairs_error(from_ckpt, "test pairs", "--test FILE", err);
        if (test->skipped_long)
            fprintf(stderr, "%s: %s: skipped %zu pairs longer than %d tokens\n", S2S_PROG, o->test,
                    test->skipped_long, o->max_tokens);
    } else if (s2s_pairs_split(train, test, o->valid_frac, o->seed) != 0) {
        tg_cli_die(S2S_PROG, "out of memory");
    }
    if (train->n == 0) tg_cli_die(S2S_PROG, "%s: no sentence pairs", o->train);
}

void s2s_write_corpus_paths(const char *dir, char train[S2S_PATH_MAX], char test[S2S_PATH_MAX])
{
    int over = (size_t)snprintf(train, S2S_PATH_MAX, "%s/train.tsv", dir) >= S2S_PATH_MAX;
    over |= (size_t)snprintf(test, S2S_PATH_MAX, "%s/test.tsv", dir) >= S2S_PATH_MAX;
    if (!dir[0] || over)
        tg_cli_die_usage(S2S_PROG, "--write-corpus '%.200s': expected a folder name (of at most "
                         "%zu bytes)", dir, S2S_PATH_MAX - sizeof "/train.tsv");
}

void s2s_write_corpus(const char *dir, const s2s_pairs *train, const s2s_pairs *test)
{
    char train_path[S2S_PATH_MAX], test_path[S2S_PATH_MAX], err[S2S_PATH_MAX + 256];
    s2s_write_corpus_paths(dir, train_path, test_path);
    if (s2s_pairs_write_tsv(train, train_path, err, sizeof err) != 0)
        tg_cli_die(S2S_PROG, "%s", err);
    if (s2s_pairs_write_tsv(test, test_path, err, sizeof err) != 0)
        tg_cli_die(S2S_PROG, "%s", err);
    fprintf(stderr, "%s: wrote %zu + %zu pairs under %s\n", S2S_PROG, train->n, test->n, dir);
}

/* ------------------------------------------------------------------ batches */

int s2s_batcher_init(s2s_batcher *b, size_t n, int B)
{
    b->n = n;
    b->B = (size_t)B;
    b->nb = (n + b->B - 1) / b->B;
    b->order = malloc(n * sizeof *b->order);
    b->starts = malloc(b->nb * sizeof *b->starts);
    b->tmp = malloc(n * sizeof *b->tmp);
    return b->order && b->starts && b->tmp ? 0 : -1;
}

void s2s_batcher_free(s2s_batcher *b)
{
    free(b->order);
    free(b->starts);
    free(b->tmp);
}

static int by_key(const void *a, const void *b)
{
    uint64_t x = ((const s2s_keyed *)a)->key, y = ((const s2s_keyed *)b)->key;
    return x < y ? -1 : x > y;
}

void s2s_batcher_epoch(s2s_batcher *b, const s2s_id_set *s, tg_rng *r)
{
    for (size_t i = 0; i < b->n; i++) {
        b->tmp[i].index = i;
        b->tmp[i].key = ((uint64_t)s->src_len[i] << 48) | ((uint64_t)s->tgt_len[i] << 32) |
                        (tg_rng_u64(r) >> 32);
    }
    qsort(b->tmp, b->n, sizeof *b->tmp, by_key);
    for (size_t i = 0; i < b->n; i++) b->order[i] = b->tmp[i].index;
    for (size_t k = 0; k < b->nb; k++) b->starts[k] = k * b->B;
    for (size_t k = b->nb; k > 1; k--) {
        size_t j = tg_rng_below(r, (uint32_t)k), x = b->starts[k - 1];
        b->starts[k - 1] = b->starts[j];
        b->starts[j] = x;
    }
}
