/* seq2seq's evaluation and output beside training: BLEU and exact match
 * over a test set, test sentences with the model's
 * translations, and --translate over arguments or stdin lines. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "attnmap.h"
#include "bleu.h"
#include "chrf.h"
#include "decode.h"
#include "program.h"
#include "text.h"

#define prog S2S_PROG

/* Decodes every source of s and scores it against the references. */
s2s_scores s2s_evaluate(tg_tape *tape, const s2s_model *m, const s2s_options *o,
                        const s2s_id_set *s, int beam, int **out, int *out_len,
                        const s2s_pairs *refs, const s2s_pieces *pc, const s2s_vocab *vt)
{
    s2s_decode_options d;
    s2s_decode_options_default(&d);
    d.beam = beam;
    d.max_len = o->max_len;
    d.len_alpha = o->len_alpha;
    d.batch = o->eval_batch;
    if (s2s_translate(tape, m, (const int *const *)s->src, s->src_len, s->n, &d, out,
                      out_len) != 0)
        tg_cli_die(prog, "out of memory while decoding");
    s2s_bleu b;
    s2s_chrf c;
    s2s_bleu_init(&b);
    s2s_chrf_init(&c);
    for (size_t i = 0; i < s->n; i++) {
        char *hyp = s2s_pieces_output_text(pc, vt, out[i], out_len[i]);
        if (!hyp || s2s_bleu_add_text(&b, hyp, refs->tgt[i]) != 0 ||
            s2s_chrf_add(&c, hyp, refs->tgt[i]) != 0)
            tg_cli_die(prog, "out of memory while scoring");
        free(hyp);
    }
    return (s2s_scores){s2s_bleu_exact(&b), s2s_bleu_score_smoothed(&b), s2s_chrf_score(&c)};
}

int **s2s_alloc_outputs(size_t n, int max_len, int **lens)
{
    int **out = calloc(n + 1, sizeof *out);
    *lens = calloc(n + 1, sizeof **lens);
    if (!out || !*lens) tg_cli_die(prog, "out of memory");
    for (size_t i = 0; i < n; i++)
        if (!(out[i] = malloc((size_t)max_len * sizeof **out))) tg_cli_die(prog, "out of memory");
    return out;
}

void s2s_free_outputs(int **out, size_t n, int *lens)
{
    for (size_t i = 0; out && i < n; i++) free(out[i]);
    free(out);
    free(lens);
}

/* ------------------------------------------------------------------ output */

void s2s_show_examples(const s2s_options *o, const s2s_pairs *test, const s2s_vocab *vt,
                       const s2s_pieces *pc, int **out, const int *lens)
{
    size_t n = (size_t)o->show < test->n ? (size_t)o->show : test->n;
    if (n == 0) return;
    printf("test sentences (%s):\n", o->beam > 1 ? "beam search" : "greedy");
    for (size_t i = 0; i < n; i++) {
        char *text = s2s_pieces_output_text(pc, vt, out[i], lens[i]);
        if (!text) tg_cli_die(prog, "out of memory");
        int ok = strcmp(text, test->tgt[i]) == 0;
        printf("  src: %s\n  ref: %s\n  %s%s\n", test->src[i], test->tgt[i],
               ok ? "out: " : "out! ", text);
        free(text);
    }
}

/* --attention-map of the first --show sentences of s (greedy decode). */
void s2s_attention_map_show(const s2s_options *o, tg_tape *tape, const s2s_model *m,
                            const s2s_vocab *vs, const s2s_vocab *vt, const s2s_id_set *s)
{
    char err[512];
    size_t n = (size_t)o->show < s->n ? (size_t)o->show : s->n;
    if (!o->attention_map || n == 0) return;
    if (s2s_attnmap_decode_save(o->attention_map, tape, m, vs, vt, (const int *const *)s->src,
                                s->src_len, n, o->max_len, o->eval_batch, err, sizeof err) != 0)
        tg_cli_die(prog, "%s", err);
    fprintf(stderr, "%s: attention map of %zu test sentences (greedy decode) written to %s\n",
            prog, n, o->attention_map);
}

/* ------------------------------------------------------------------ translate */

/* The longest input --translate reads (its arena is sized for it). */
#define TRANSLATE_MAX_TOKENS 1000

/* The source ids of a tokenized line: its words, or its pieces. */
static int source_ids(const char *toks, const s2s_vocab *vs, const s2s_pieces *pc, int *ids,
                      int max)
{
    char err[256];
    if (!s2s_pieces_on(pc)) return s2s_vocab_encode(vs, toks, ids, max, S2S_UNK);
    int k = s2s_subword_encode(pc->src, toks, ids, max, err, sizeof err);
    if (k < 0) tg_cli_die(prog, "%s", err);
    return k;
}

/* What translate_line works in, made once for all the lines: the token
 * text grows to the longest line so far. */
typedef struct line_buffers {
    char *toks;
    size_t toks_cap;
    int *ids, *out;
} line_buffers;

static void line_buffers_init(line_buffers *b, int max_len)
{
    b->toks = NULL;
    b->toks_cap = 0;
    b->ids = malloc((TRANSLATE_MAX_TOKENS + 1) * sizeof *b->ids);
    b->out = malloc((size_t)max_len * sizeof *b->out);
    if (!b->ids || !b->out) tg_cli_die(prog, "out of memory");
}

static void line_buffers_free(line_buffers *b)
{
    free(b->toks);
    free(b->ids);
    free(b->out);
}

static int translate_line(const s2s_options *o, tg_tape *tape, const s2s_model *m,
                          const char *line, const s2s_vocab *vs, const s2s_vocab *vt,
                          const s2s_tokenize_options *tok, const s2s_pieces *pc,
                          s2s_attnmap *map, line_buffers *b)
{
    size_t n = strlen(line), bad;
    if (!s2s_utf8_valid(line, n, &bad)) return -1;
    if (S2S_TOKENIZED_SIZE(n) > b->toks_cap) {
        char *grown = realloc(b->toks, S2S_TOKENIZED_SIZE(n));
        if (!grown) tg_cli_die(prog, "out of memory");
        b->toks = grown;
        b->toks_cap = S2S_TOKENIZED_SIZE(n);
    }
    s2s_tokenize(line, tok, b->toks);
    int k = source_ids(b->toks, vs, pc, b->ids, TRANSLATE_MAX_TOKENS), len = 0;
    if (k > TRANSLATE_MAX_TOKENS) {
        fprintf(stderr, "%s: input of %d tokens cut to its first %d\n", prog, k,
                TRANSLATE_MAX_TOKENS);
        k = TRANSLATE_MAX_TOKENS;
    }
    if (k > 0) {
        s2s_decode_options d;
        s2s_decode_options_default(&d);
        d.beam = o->beam;
        d.max_len = o->max_len;
        d.len_alpha = o->len_alpha;
        d.batch = 1;
        const int *src[1] = {b->ids};
        int *outs[1] = {b->out};
        if (s2s_translate(tape, m, src, &k, 1, &d, outs, &len) != 0)
            tg_cli_die(prog, "out of memory while decoding");
        if (map && map->n < S2S_ATTNMAP_MAX_SENTENCES &&
            s2s_attnmap_decode(map, tape, m, vs, vt, src, &k, 1, o->max_len, 1) != 0)
            tg_cli_die(prog, "out of memory decoding for --attention-map");
    }
    char *text = s2s_pieces_output_text(pc, vt, b->out, len);
    if (!text) tg_cli_die(prog, "out of memory");
    printf("%s\n", text);
    free(text);
    fflush(stdout);
    return 0;
}

static void run_translate(const s2s_options *o, tg_tape *tape, const s2s_model *m, int argc,
                          char **argv, int first, const s2s_vocab *vs, const s2s_vocab *vt,
                          const s2s_tokenize_options *tok, const s2s_pieces *pc)
{
    double t0 = tg_clock_seconds();
    long n = 0;
    s2s_attnmap map_store, *map = o->attention_map ? &map_store : NULL;
    if (map) s2s_attnmap_init(map);
    line_buffers b;
    line_buffers_init(&b, o->max_len);
    if (first < argc) {
        for (int i = first; i < argc; i++, n++)
            if (translate_line(o, tape, m, argv[i], vs, vt, tok, pc, map, &b) != 0)
                tg_cli_die(prog, "argument %d: invalid UTF-8", i - first + 1);
    } else {
        char *line = NULL;
        size_t cap = 0, got;
        int rc;
        while ((rc = tg_read_line(stdin, &line, &cap, S2S_LINE_MAX_BYTES, &got)) > 0) {
            while (got > 0 && (line[got - 1] == '\n' || line[got - 1] == '\r')) line[--got] = '\0';
            if (memchr(line, '\0', got)) /* the rest of the line would be lost unseen */
                tg_cli_die(prog, "<stdin>:%ld: NUL byte in line", n + 1);
            if (translate_line(o, tape, m, line, vs, vt, tok, pc, map, &b) != 0)
                tg_cli_die(prog, "<stdin>:%ld: invalid UTF-8", n + 1);
            n++;
        }
        int read_errno = errno;
        free(line);
        if (rc == -1)
            tg_cli_die(prog, "<stdin>:%ld: a line of more than %zu bytes", n + 1,
                       S2S_LINE_MAX_BYTES);
        if (rc == -2) tg_cli_die(prog, "<stdin>: read error: %s", strerror(read_errno));
    }
    line_buffers_free(&b);
    double seconds = tg_clock_seconds() - t0; /* with a map, its greedy decode included */
    if (map) {
        char err[512];
        if (s2s_attnmap_save(map, o->attention_map, err, sizeof err) != 0)
            tg_cli_die(prog, "%s", err);
        if (map->n == S2S_ATTNMAP_MAX_SENTENCES && (size_t)n > map->n)
            fprintf(stderr, "%s: attention map of the first %zu of %ld sentences (it keeps at "
                    "most %d; greedy decode) written to %s\n", prog, map->n, n,
                    S2S_ATTNMAP_MAX_SENTENCES, o->attention_map);
        else
            fprintf(stderr, "%s: attention map of %zu sentences (greedy decode) written to %s\n",
                    prog, map->n, o->attention_map);
        s2s_attnmap_free(map);
    }
    tg_result("translated=%ld seconds=%.2f", n, seconds);
}

/* --translate: the loaded model over the arguments or stdin. */
int s2s_translate_main(const s2s_options *o, s2s_model *m, int argc, char **argv, int first,
                       s2s_vocab *vs, s2s_vocab *vt, const s2s_tokenize_options *tok,
                       s2s_pieces *pc)
{
    if (o->attention_map && m->cfg.attention == TG_ATTN_NONE)
        tg_cli_die_usage(prog, "--attention-map needs attention weights: the model %s has "
                         "--attention none", o->load);
    tg_tape *tape = tg_tape_new(s2s_decode_arena(m, o, 1, TRANSLATE_MAX_TOKENS));
    if (!tape) tg_cli_die(prog, "out of memory (arena)");
    tg_tape_set_threads(tape, o->threads);
    run_translate(o, tape, m, argc, argv, first, vs, vt, tok, pc);
    tg_tape_free(tape);
    s2s_model_free(m);
    s2s_vocab_free(vs);
    s2s_vocab_free(vt);
    s2s_pieces_free(pc);
    return 0;
}
