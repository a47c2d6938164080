/* Fuzz target: the seq2seq sentence-pair reader (examples/seq2seq/pairs.c).
 *
 * The input is a whole TSV file ("source<TAB>target" lines). The reader
 * either fails with "FILE:LINE: reason" or returns pairs that are valid,
 * non-empty, tokenized UTF-8 within the token limit; a vocabulary built from
 * them must encode them, and its join/split form must round-trip. */
#include "fuzz_check.h"
#include "pairs.h"

static void check_pairs(const s2s_pairs *p, int max_tokens)
{
    for (size_t i = 0; i < p->n; i++) {
        const char *side[2] = {p->src[i], p->tgt[i]};
        for (int k = 0; k < 2; k++) {
            size_t bad = 0, len = strlen(side[k]);
            FUZZ_CHECK(len > 0, "pair %zu: empty side accepted", i);
            FUZZ_CHECK(s2s_utf8_valid(side[k], len, &bad), "pair %zu: invalid UTF-8 kept", i);
            int nt = s2s_count_tokens(side[k]);
            FUZZ_CHECK(nt >= 1 && nt <= max_tokens, "pair %zu: %d tokens (max %d)", i, nt,
                       max_tokens);
        }
        FUZZ_CHECK(p->line[i] >= 1, "pair %zu: line %d", i, p->line[i]);
    }
}

static void check_vocab(const s2s_pairs *p)
{
    s2s_vocab v, w;
    if (s2s_vocab_build(&v, p->src, p->n, 1) != 0) return; /* out of memory */
    for (size_t i = 0; i < p->n; i++) {
        /* every token of a source side is a word of the vocabulary */
        for (const char *t = p->src[i]; *t;) {
            size_t len = strcspn(t, " ");
            int id = s2s_vocab_find(&v, t, len);
            FUZZ_CHECK(id >= S2S_N_SPECIAL && id < v.n, "pair %zu: token '%.*s' has id %d", i,
                       (int)len, t, id);
            t += len;
            t += *t == ' ';
        }
    }
    char *joined = s2s_vocab_join(&v);
    if (joined && s2s_vocab_split(&w, joined) == 0) {
        FUZZ_CHECK(w.n == v.n, "vocab join/split: %d words became %d", v.n, w.n);
        for (int k = 0; k < v.n; k++)
            FUZZ_CHECK(strcmp(v.words[k], w.words[k]) == 0, "vocab word %d differs", k);
        s2s_vocab_free(&w);
    }
    free(joined);
    s2s_vocab_free(&v);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    /* fmemopen refuses a zero-size buffer: read an empty file instead. */
    FILE *f = size ? fmemopen((void *)data, size, "r") : fopen("/dev/null", "r");
    if (!f) return 0;
    s2s_read_options o;
    s2s_read_options_default(&o);
    o.max_tokens = 20;
    s2s_pairs p;
    s2s_pairs_init(&p);
    char err[512];
    err[0] = '\0';
    if (s2s_pairs_read_stream(&p, f, "fuzz.tsv", &o, err, sizeof err) == 0) {
        check_pairs(&p, o.max_tokens);
        check_vocab(&p);
    } else {
        FUZZ_CHECK_MSG(err, sizeof err);
        FUZZ_CHECK(strncmp(err, "fuzz.tsv", 8) == 0, "message does not name the file: %s", err);
    }
    s2s_pairs_free(&p);
    fclose(f);
    return 0;
}
