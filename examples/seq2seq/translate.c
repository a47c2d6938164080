/* seq2seq's evaluation and output beside training: BLEU and exact match
 * over a test set, test sentences with the model's
 * translations, and --translate over arguments or stdin lines. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "attnmap.h"
#include "bleu.h"
#include "chrf.h"
#include "decode.h"
#include "program.h"
#include "text.h"
#include "trainrun.h" /* tgx_interrupts_end_at_once */

#define prog S2S_PROG

/* Decodes every source of s and scores it against the references. */
s2s_scores s2s_evaluate(tg_tape *tape, const s2s_model *m, const s2s_options *o,
                        const s2s_id_set *s, int beam, int trained, int **out, int *out_len,
                        const s2s_pairs *refs, const s2s_pieces *pc, const s2s_vocab *vt)
{
    s2s_decode_options d;
    s2s_decode_options_default(&d);
    d.beam = beam;
    d.max_len = o->max_len;
    d.len_alpha = o->len_alpha;
    d.batch = o->eval_batch;
    s2s_decode_fault fault;
    d.fault = &fault;
    int rc = s2s_translate(tape, m, (const int *const *)s->src, s->src_len, s->n, &d, out,
                           out_len);
    if (rc == S2S_DECODE_NONFINITE && trained)
        fprintf(stderr, "%s: the model's outputs are not finite at this evaluation (logits at "
                "output token %d of test sentence %zu): its scores count what was decoded\n",
                prog, fault.token, fault.sentence + 1);
    else
        s2s_check_decoded(o, rc, &fault, "test sentence", NULL);
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
        /* shown to a person: a control character from the data or the
         * model's vocabulary is escaped, not obeyed by the terminal */
        fputs("  src: ", stdout);
        tg_fputs_shown(test->src[i], stdout);
        fputs("\n  ref: ", stdout);
        tg_fputs_shown(test->tgt[i], stdout);
        fputs(ok ? "\n  out: " : "\n  out! ", stdout);
        tg_fputs_shown(text, stdout);
        putchar('\n');
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
/* The bytes of a line that can give TRANSLATE_MAX_TOKENS pieces: a longer
 * line is cut to them before SentencePiece sees it (S2S_PIECE_MAX_BYTES) */
#define TRANSLATE_MAX_PIECE_TEXT ((size_t)TRANSLATE_MAX_TOKENS * S2S_PIECE_MAX_BYTES)

/* --translate reads up to TRANSLATE_WINDOW lines and decodes them shortest
 * first (s2s_translate) in batches of at most min(--eval-batch,
 * TRANSLATE_BATCH_MAX) lines and TRANSLATE_MAX_TOKENS source tokens padded
 * to the batch's longest line, then prints them in order. One at a time, a
 * decoding step over one row is a product of one row by every weight: the
 * 968 sources of the de-en test set took 5.6 s greedy and 7.4 s with beam 5
 * line by line, 0.8 and 2.1 s in batches (2 threads; seq2seq's README,
 * "Decoding"). The arguments and a regular file on stdin are there whole.
 * From a pipe or a terminal, the lines read are translated once no whole
 * line is left in stdin's buffer, so the program never waits for input
 * while it holds lines (a program may wait for each answer, and may have
 * sent part of its next line), and a batch holds what came together.
 * A line gets the translation it gets alone, whatever came with it: the
 * decoding tape's held panels compute every product row by row
 * (s2s_decode_keeps_rows). Without panels (BLAS, where a row's bits may
 * depend on the rows beside it) a stream goes line by line, so that what
 * comes out never depends on when the lines arrived; a file's batches are
 * fixed by its lines, so its output does not depend on timing either. */
#define TRANSLATE_BATCH_MAX 64
#define TRANSLATE_WINDOW 1024

/* The source ids of a tokenized line: its words, or its pieces; -1 with
 * the reason in err when SentencePiece fails. */
static int source_ids(const char *toks, const s2s_vocab *vs, const s2s_pieces *pc, int *ids,
                      int max, char *err, size_t errlen)
{
    if (!s2s_pieces_on(pc)) return s2s_vocab_encode(vs, toks, ids, max, S2S_UNK);
    return s2s_subword_encode(pc->src, toks, ids, max, err, errlen);
}

/* The lines read and not yet translated, with what translating them works
 * in, made once for all the lines: row i of ids holds line i's source ids
 * (len[i] of them, 0 for an empty line), row i of out its output. */
typedef struct line_batch {
    int cap; /* lines at most: 1 when each is translated alone */
    int n;   /* lines held */
    int *ids, *len, *out, *out_len;
    int max_out; /* --max-len: a row of out */
    long windows; /* groups of lines decoded so far (the result line's windows=) */
    long added;  /* lines added so far: the n held are the last, numbered from 1 */
    char *toks;  /* the tokenized text of the line being read */
    size_t toks_cap;
    /* the non-empty lines as line_batch_flush hands them to the decoder */
    const int **src;
    int **outs, *src_len, *lens;
    long *src_line_no;
} line_batch;

/* a line's ids: both encoders write at most TRANSLATE_MAX_TOKENS */
#define IDS_ROW TRANSLATE_MAX_TOKENS

static void line_batch_init(line_batch *b, int cap, int max_out)
{
    memset(b, 0, sizeof *b);
    b->cap = cap;
    b->max_out = max_out;
    b->ids = malloc((size_t)cap * IDS_ROW * sizeof *b->ids);
    b->len = malloc((size_t)cap * sizeof *b->len);
    b->out = malloc((size_t)cap * (size_t)max_out * sizeof *b->out);
    b->out_len = malloc((size_t)cap * sizeof *b->out_len);
    b->src = malloc((size_t)cap * sizeof *b->src);
    b->outs = malloc((size_t)cap * sizeof *b->outs);
    b->src_len = malloc((size_t)cap * sizeof *b->src_len);
    b->lens = malloc((size_t)cap * sizeof *b->lens);
    b->src_line_no = malloc((size_t)cap * sizeof *b->src_line_no);
    if (!b->ids || !b->len || !b->out || !b->out_len || !b->src || !b->outs || !b->src_len ||
        !b->lens || !b->src_line_no)
        tg_cli_die(prog, "out of memory");
}

static void line_batch_free(line_batch *b)
{
    free(b->toks);
    free(b->ids);
    free(b->len);
    free(b->out);
    free(b->out_len);
    free(b->src);
    free(b->outs);
    free(b->src_len);
    free(b->lens);
    free(b->src_line_no);
}

/* What every batch of the run shares: the model, its vocabularies and
 * pieces, the options, the tape, the map (NULL: none), and the decoder's
 * batch of lines (dec.batch: plan_batches). */
typedef struct translator {
    const s2s_options *o;
    s2s_decode_options dec;
    tg_tape *tape;
    const s2s_model *m;
    const s2s_vocab *vs, *vt;
    const s2s_tokenize_options *tok;
    const s2s_pieces *pc;
    s2s_attnmap *map;
} translator;

/* Decodes the q sources into outs (lens their lengths), and adds the first
 * of them to the map while it has room (greedy, in batches as the
 * decoder's, in the given order). */
static void decode_lines(const translator *tr, const int *const *src, const int *src_len,
                         const long *line_no, int q, int *const *outs, int *lens)
{
    s2s_decode_options d = tr->dec;
    s2s_decode_fault fault;
    d.fault = &fault;
    s2s_check_decoded(tr->o, s2s_translate(tr->tape, tr->m, src, src_len, (size_t)q, &d, outs,
                                           lens), &fault, "sentence", line_no);
    s2s_attnmap *map = tr->map;
    size_t room = map && !map->full ? S2S_ATTNMAP_MAX_SENTENCES - map->n : 0;
    size_t take = room < (size_t)q ? room : (size_t)q;
    for (size_t i0 = 0, k; i0 < take; i0 += k) {
        k = s2s_decode_batch_size(src_len + i0, take - i0, &tr->dec);
        int rc = s2s_attnmap_decode(map, tr->tape, tr->m, tr->vs, tr->vt, src + i0,
                                    src_len + i0, k, line_no + i0, tr->o->max_len, (int)k);
        if (rc == S2S_DECODE_NONFINITE) /* where a beam's decode above had none */
            tg_cli_die_nonfinite(prog, s2s_model_file(tr->o),
                                 "logits in the greedy decode for --attention-map");
        if (rc != 0) tg_cli_die(prog, "out of memory decoding for --attention-map");
    }
}

/* Decodes the non-empty lines of b and prints every line's translation in
 * order. */
static void line_batch_flush(const translator *tr, line_batch *b)
{
    int q = 0;
    for (int i = 0; i < b->n; i++) {
        b->out_len[i] = 0;
        if (b->len[i] == 0) continue; /* an empty line: an empty translation */
        b->src[q] = b->ids + (size_t)i * IDS_ROW;
        b->src_len[q] = b->len[i];
        b->src_line_no[q] = b->added - b->n + 1 + i; /* held row i's input line */
        b->outs[q++] = b->out + (size_t)i * (size_t)b->max_out;
    }
    if (q > 0) {
        decode_lines(tr, b->src, b->src_len, b->src_line_no, q, b->outs, b->lens);
        b->windows++;
        for (int i = 0, r = 0; i < b->n; i++)
            if (b->len[i] > 0) b->out_len[i] = b->lens[r++];
    }
    for (int i = 0; i < b->n; i++) {
        char *text = s2s_pieces_output_text(tr->pc, tr->vt, b->out + (size_t)i * (size_t)b->max_out,
                                            b->out_len[i]);
        if (!text) tg_cli_die(prog, "out of memory");
        printf("%s\n", text);
        free(text);
    }
    /* a reader that left: with SIGPIPE ignored (a shell's trap '' PIPE) an
     * endless stdin was translated for ever into a closed pipe */
    tg_cli_check_stdout(prog);
    b->n = 0;
}

/* Ends the run on bad input: the lines before it are translated and
 * printed first, as when each was translated as it came. */
static void flush_then_die(const translator *tr, line_batch *b, const char *fmt, long where)
{
    line_batch_flush(tr, b);
    tg_cli_die(prog, fmt, where);
}

/* Reads one line into b, translated when b is full (at once with a
 * capacity of 1); a line cut (to TRANSLATE_MAX_PIECE_TEXT bytes, or to
 * TRANSLATE_MAX_TOKENS) has what b held translated first, so that the
 * message comes after their translations. A line that is not valid UTF-8
 * ends the run, named by where ("<stdin>:LINE", "argument N") and the
 * byte, as the pair files' reader names it (pairs.c). */
static void line_batch_add(const translator *tr, line_batch *b, char *line, const char *where)
{
    size_t n = strlen(line), bad;
    if (!s2s_utf8_valid(line, n, &bad)) {
        line_batch_flush(tr, b);
        tg_cli_die(prog, "%s: invalid UTF-8 at byte %zu", where, bad + 1);
    }
    if (s2s_pieces_on(tr->pc) && n > TRANSLATE_MAX_PIECE_TEXT) {
        size_t cut = TRANSLATE_MAX_PIECE_TEXT;
        while (cut > 0 && ((unsigned char)line[cut] & 0xC0) == 0x80) cut--; /* a whole character */
        line_batch_flush(tr, b);
        fprintf(stderr, "%s: input of %zu bytes cut to its first %zu before its pieces\n", prog, n,
                cut);
        line[n = cut] = '\0';
    }
    if (S2S_TOKENIZED_SIZE(n) > b->toks_cap) {
        char *grown = realloc(b->toks, S2S_TOKENIZED_SIZE(n));
        if (!grown) tg_cli_die(prog, "out of memory");
        b->toks = grown;
        b->toks_cap = S2S_TOKENIZED_SIZE(n);
    }
    s2s_tokenize(line, tr->tok, b->toks);
    int *row = b->ids + (size_t)b->n * IDS_ROW;
    char err[256];
    int all = source_ids(b->toks, tr->vs, tr->pc, row, TRANSLATE_MAX_TOKENS, err, sizeof err);
    if (all < 0) { /* the lines before it are printed first */
        line_batch_flush(tr, b);
        tg_cli_die(prog, "%s", err);
    }
    int k = all < TRANSLATE_MAX_TOKENS ? all : TRANSLATE_MAX_TOKENS;
    if (all > k) {
        if (b->n > 0) {
            line_batch_flush(tr, b); /* the line moves to row 0 */
            memmove(b->ids, row, (size_t)k * sizeof *row);
        }
        fprintf(stderr, "%s: input of %d tokens cut to its first %d\n", prog, all,
                TRANSLATE_MAX_TOKENS);
    }
    b->added++;
    b->len[b->n++] = k;
    if (b->n == b->cap) line_batch_flush(tr, b);
}

/* Whether stdin's stdio buffer holds a whole line: reading it then needs no
 * read(2), so nothing can wait for input while lines read are held (the
 * rest of a line not yet sent, or nothing at all). glibc's FILE shows its
 * buffer; elsewhere 0, so a stream's every line is translated as it comes. */
static int line_in_buffer(void)
{
#ifdef __GLIBC__
    const char *p = stdin->_IO_read_ptr, *end = stdin->_IO_read_end;
    return p && p < end && memchr(p, '\n', (size_t)(end - p)) != NULL;
#else
    return 0;
#endif
}

/* Sets tr's batch (lines) and token budget; 1 when stdin is a stream (a
 * pipe or a terminal) to be batched as its lines come. */
static int plan_batches(translator *tr, int from_args)
{
    const s2s_options *o = tr->o;
    struct stat st;
    int whole = from_args || (fstat(STDIN_FILENO, &st) == 0 && S_ISREG(st.st_mode));
    int lines = o->eval_batch < TRANSLATE_BATCH_MAX ? o->eval_batch : TRANSLATE_BATCH_MAX;
    if (!whole && !s2s_decode_keeps_rows(tr->m))
        lines = 1; /* a stream's batches must not change a line's bits */
    tr->dec.batch = lines;
    tr->dec.max_tokens = TRANSLATE_MAX_TOKENS;
    return !whole && lines > 1;
}

/* The lines of stdin into b, each checked as it is read. */
static long translate_stdin(const translator *tr, line_batch *b, int stream)
{
    char *line = NULL;
    size_t cap = 0, got;
    long n = 0;
    int rc;
    while ((rc = tg_read_line(stdin, &line, &cap, S2S_LINE_MAX_BYTES, &got)) > 0) {
        while (got > 0 && (line[got - 1] == '\n' || line[got - 1] == '\r')) line[--got] = '\0';
        if (n == 0) tg_utf8_drop_bom(line, &got); /* as --train's first line */
        if (memchr(line, '\0', got)) /* the rest of the line would be lost unseen */
            flush_then_die(tr, b, "<stdin>:%ld: NUL byte in line", n + 1);
        char where[40];
        snprintf(where, sizeof where, "<stdin>:%ld", n + 1);
        line_batch_add(tr, b, line, where);
        n++;
        if (stream && b->n > 0 && !line_in_buffer()) line_batch_flush(tr, b);
    }
    int read_errno = errno;
    free(line);
    line_batch_flush(tr, b);
    if (rc == -1)
        tg_cli_die(prog, "<stdin>:%ld: a line of more than %zu bytes", n + 1,
                   S2S_LINE_MAX_BYTES);
    if (rc == -2) tg_cli_die(prog, "<stdin>: read error: %s", strerror(read_errno));
    return n;
}

static void run_translate(const translator *tr, int argc, char **argv, int first, int stream)
{
    const s2s_options *o = tr->o;
    double t0 = tg_clock_seconds();
    long n = 0;
    line_batch b;
    line_batch_init(&b, tr->dec.batch > 1 ? TRANSLATE_WINDOW : 1, o->max_len);
    if (first < argc) {
        for (int i = first; i < argc; i++, n++) {
            char where[40];
            snprintf(where, sizeof where, "argument %d", i - first + 1);
            line_batch_add(tr, &b, argv[i], where);
        }
        line_batch_flush(tr, &b);
    } else {
        n = translate_stdin(tr, &b, stream);
    }
    long windows = b.windows;
    line_batch_free(&b);
    double seconds = tg_clock_seconds() - t0; /* with a map, its greedy decode included */
    s2s_attnmap *map = tr->map;
    if (map) {
        char err[512];
        if (s2s_attnmap_save(map, o->attention_map, err, sizeof err) != 0)
            tg_cli_die(prog, "%s", err);
        if ((map->n == S2S_ATTNMAP_MAX_SENTENCES || map->full) && (size_t)n > map->n)
            fprintf(stderr, "%s: attention map of the first %zu of %ld sentences (it keeps at "
                    "most %d, and %zu weights in all; greedy decode) written to %s\n", prog,
                    map->n, n, S2S_ATTNMAP_MAX_SENTENCES, S2S_ATTNMAP_MAX_CELLS,
                    o->attention_map);
        else
            fprintf(stderr, "%s: attention map of %zu sentences (greedy decode) written to %s\n",
                    prog, map->n, o->attention_map);
    }
    tg_result("translated=%ld seconds=%.2f windows=%ld", n, seconds, windows);
    tg_cli_check_stdout(prog); /* the translations are the output: none lost unsaid */
}

/* --translate: the loaded model over the arguments or stdin. */
int s2s_translate_main(const s2s_options *o, s2s_model *m, int argc, char **argv, int first,
                       s2s_vocab *vs, s2s_vocab *vt, const s2s_tokenize_options *tok,
                       s2s_pieces *pc)
{
    if (o->attention_map && m->cfg.attention == TG_ATTN_NONE)
        tg_cli_die_usage(prog, "--attention-map needs attention weights: the model %s has "
                         "--attention none", o->load);
    tgx_interrupts_end_at_once(); /* as by default, but no --attention-map temporary left */
    s2s_attnmap map_store;
    translator tr = {o, {0}, NULL, m, vs, vt, tok, pc, o->attention_map ? &map_store : NULL};
    s2s_decode_options_default(&tr.dec);
    tr.dec.beam = o->beam;
    tr.dec.max_len = o->max_len;
    tr.dec.len_alpha = o->len_alpha;
    int stream = plan_batches(&tr, first < argc), cap = tr.dec.batch;
    /* a stream's batch is at most what stdin's buffer holds: stdio's 4 KB
     * for a pipe is about 50 lines, and a pipe holds 64 KB. glibc ignores
     * the size when it is not given the buffer, hence one of our own, for
     * the life of stdin. */
    static char stream_buf[(size_t)64 << 10];
    if (stream) setvbuf(stdin, stream_buf, _IOFBF, sizeof stream_buf); /* failing: 4 KB */
    /* one line of up to TRANSLATE_MAX_TOKENS, and a batch of cap lines (a
     * decoding step's rows grow with the lines, the rest with their padded
     * tokens, which the batch keeps within TRANSLATE_MAX_TOKENS). Unequal
     * lines also blend and mask their padded rows, lines x longest of them:
     * two lines of TRANSLATE_MAX_TOKENS (and a long one beside a short
     * one, s2s_decode_arena's mixed probe) bound that for any batch. */
    size_t arena = s2s_decode_arena(m, o, cap > 1 ? 2 : 1, TRANSLATE_MAX_TOKENS);
    if (cap > 1) arena += s2s_decode_arena(m, o, cap, 1);
    s2s_check_translate_memory(m, arena);
    tg_tape *tape = tr.tape = tg_tape_new(arena);
    if (!tape) tg_cli_die(prog, "out of memory (arena)");
    tg_tape_set_threads(tape, o->threads);
    /* the weights' panels for the whole run, not packed again for every
     * line (line by line, 17% of the time packed the 8000-word output layer) */
    tg_tape_hold_param_panels(tape, 1); /* -1 (no memory) only costs speed */
    if (tr.map) s2s_attnmap_init(tr.map);
    run_translate(&tr, argc, argv, first, stream);
    if (tr.map) s2s_attnmap_free(tr.map);
    tg_tape_free(tape);
    s2s_model_free(m);
    s2s_vocab_free(vs);
    s2s_vocab_free(vt);
    s2s_pieces_free(pc);
    return 0;
}
