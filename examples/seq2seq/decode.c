/* Greedy decoding and beam search (see decode.h). */
#include "decode.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "pairs.h"

void s2s_decode_options_default(s2s_decode_options *o)
{
    o->beam = 1;
    o->max_len = 60;
    o->len_alpha = 1.0;
    o->batch = 256;
    o->max_tokens = 0;
    o->fault = NULL;
}

size_t s2s_decode_arena_bytes(const s2s_config *c, int sentences, int beam, int Ts)
{
    /* the encoder runs over the sentences, a step over sentences x beam rows */
    size_t H = (size_t)c->hidden, n = (size_t)sentences, R = n * (size_t)beam;
    size_t E = (size_t)c->embed + H;
    size_t enc = (size_t)Ts * (size_t)c->layers * 40 * H * n + (size_t)Ts * n * E;
    /* logits, their softmax (beam search), and slack */
    size_t step = (size_t)c->layers * 40 * H * R + 4 * R * E + 3 * R * (size_t)c->tgt_vocab;
    size_t overhead = (size_t)(Ts + 1) * (size_t)c->layers * 64 * 512 + ((size_t)1 << 20);
    if (c->attention != TG_ATTN_NONE) {
        /* both directions; the memory's keys (once, over the sentences);
         * per step: mlp's S*R x H query sums, scores and weights, the
         * feed, [c; h] and the attentional output (the memory itself
         * stays on the heap, dec_state) */
        size_t S = (size_t)Ts;
        enc = 2 * enc + 4 * S * R * H;
        step += 4 * S * R * H + 8 * S * R + 12 * R * H;
    }
    return (enc + step) * sizeof(tg_real) + overhead;
}

/* The decoder state of R rows between steps (values only, no history). */
typedef struct dec_state {
    int L, R, H;
    tg_state_buf st; /* every layer's h (and c) */
    tg_real *ctx;    /* R * H: encoder top final h, for feed_context; with
                      * attention the input feed (last attentional output) */
    int *rows;       /* R: the source row of each row when the state moves */
    /* attention: the memory of R rows (row r reads sentence r / K, so a
     * beam's rows never need it moved), as tg_attn_memory_init made it for
     * the chunk's sentences and then spread over the R rows: heap tensors
     * that every step reads in place (no copy per step) */
    int S;               /* source steps */
    tg_tensor *vals, *keys, *v_rows; /* S*R x M, S*R x H (dot: vals), R x H (mlp) */
    int *mask;           /* R * S, or NULL: no padding */
} dec_state;

static int dec_state_init(dec_state *s, const s2s_model *m, int R)
{
    s->L = m->cfg.layers;
    s->R = R;
    s->H = m->cfg.hidden;
    s->ctx = malloc((size_t)R * (size_t)s->H * sizeof *s->ctx);
    s->rows = malloc((size_t)R * sizeof *s->rows);
    s->vals = s->keys = s->v_rows = NULL;
    s->mask = NULL;
    int rc = tg_state_buf_init(&s->st, m->cfg.cell, s->L, R, s->H);
    return rc == 0 && s->ctx && s->rows ? 0 : -1;
}

static void dec_state_free(dec_state *s)
{
    tg_state_buf_free(&s->st);
    free(s->ctx);
    free(s->rows);
    if (s->keys != s->vals) tg_tensor_free(s->keys);
    tg_tensor_free(s->vals);
    tg_tensor_free(s->v_rows);
    free(s->mask);
}

/* x's groups of n rows (group g: rows g*n .. g*n + n-1) on the heap with
 * each row repeated K times: row g*n*K + r is x's row g*n + r / K. NULL on
 * out of memory (or when x is NULL). */
static tg_tensor *spread_rows(const tg_tensor *x, int n, int K)
{
    if (!x) return NULL;
    int groups = x->rows / n, cols = x->cols;
    tg_tensor *y = tg_tensor_alloc(x->rows * K, cols, 0);
    if (!y) return NULL;
    for (int g = 0; g < groups; g++)
        for (int r = 0; r < n * K; r++)
            memcpy(y->data + ((size_t)g * n * K + r) * cols,
                   x->data + ((size_t)g * n + r / K) * cols, (size_t)cols * sizeof(tg_real));
    return y;
}

/* Keeps the memory of values (S*n x M, sentence i in row s*n + i) for the
 * R = n*K rows on the heap: row s*R + r is sentence r / K's. The keys (the
 * memory's projection) are computed once, over the n sentences, and spread
 * like the values. -1: out of memory. */
static int keep_memory(tg_tape *t, const s2s_model *m, dec_state *s, tg_tensor *values,
                       const int *src_len, int n, int S)
{
    int R = s->R, K = R / n;
    tg_attn_memory mem = tg_attn_memory_init(t, &m->adec.attn, values, S, n, src_len);
    s->S = S;
    s->vals = spread_rows(values, n, K);
    s->keys = mem.keys == mem.values ? s->vals : spread_rows(mem.keys, n, K);
    s->v_rows = spread_rows(mem.v_rows, n, K);
    if (mem.mask) {
        s->mask = malloc((size_t)R * (size_t)S * sizeof *s->mask);
        for (int r = 0; s->mask && r < R; r++)
            memcpy(s->mask + (size_t)r * S, mem.mask + (size_t)(r / K) * S,
                   (size_t)S * sizeof *s->mask);
    }
    return s->vals && s->keys && (s->v_rows || !mem.v_rows) && (s->mask || !mem.mask) ? 0 : -1;
}

/* The kept memory as a step reads it: the heap tensors themselves. */
static tg_attn_memory load_memory(const dec_state *s)
{
    tg_attn_memory mem = {s->S, s->R, s->vals, s->keys, s->v_rows, s->mask};
    return mem;
}

/* Row r of the state and the context from row s->rows[r] of nx (and of
 * ctx_src, R rows of H, when not NULL; tmp: room for R rows). */
static void move_rows(dec_state *s, const tg_state *nx, const tg_real *ctx_src, tg_real *tmp)
{
    tg_state_buf_store_rows(&s->st, nx, s->rows);
    if (!ctx_src) return;
    size_t H = (size_t)s->H;
    for (int r = 0; r < s->R; r++)
        memcpy(tmp + (size_t)r * H, ctx_src + (size_t)s->rows[r] * H, H * sizeof *tmp);
    if (tmp != s->ctx) memcpy(s->ctx, tmp, (size_t)s->R * H * sizeof *s->ctx);
}

/* Encodes n sources on a freshly reset tape and spreads each sentence's
 * final state over its K rows. */
static int encode_chunk(tg_tape *t, const s2s_model *m, const int *const *src,
                        const int *src_len, int n, int K, dec_state *s)
{
    s2s_batch b;
    tg_state fin[TG_MAX_LAYERS];
    tg_tape_reset(t);
    s2s_batch_make(&b, t, &m->cfg, n, src, src_len, NULL, NULL, 0, 0);
    for (int r = 0; r < s->R; r++) s->rows[r] = r / K;
    if (m->cfg.attention == TG_ATTN_NONE) {
        s2s_encode(t, m, &b, fin, NULL);
        move_rows(s, fin, fin[s->L - 1].h->data, s->ctx);
        return 0;
    }
    tg_tensor *values = s2s_encode_memory(t, m, &b, fin, NULL);
    move_rows(s, fin, NULL, NULL);
    memset(s->ctx, 0, (size_t)s->R * (size_t)s->H * sizeof *s->ctx); /* no feed yet */
    return keep_memory(t, m, s, values, b.src_len, n, b.Ts);
}

/* One decoder step from the heap state: logits (R x V) on a reset tape and
 * the new state in out[]; weights (NULL, or the step's R x S attention
 * weights, memory order). */
static tg_tensor *step_rows(tg_tape *t, const s2s_model *m, dec_state *s, const int *y,
                            tg_state *out, tg_tensor **weights)
{
    tg_state in[TG_MAX_LAYERS];
    tg_tape_reset(t);
    tg_state_buf_load(&s->st, t, in);
    if (m->cfg.attention != TG_ATTN_NONE) {
        /* the new feed replaces the old in place (rows as the state's) */
        tg_attn_memory mem = load_memory(s);
        tg_attn_dec_state ds;
        memcpy(ds.layer, in, (size_t)s->L * sizeof *in);
        ds.feed = tg_tensor_from(t, s->R, s->H, s->ctx);
        tg_tensor *logits = s2s_attn_decode_step(t, m, y, s->R, &mem, &ds, weights);
        memcpy(out, ds.layer, (size_t)s->L * sizeof *out);
        memcpy(s->ctx, ds.feed->data, (size_t)s->R * (size_t)s->H * sizeof *s->ctx);
        return logits;
    }
    tg_tensor *ctx = m->cfg.feed_context ? tg_tensor_from(t, s->R, s->H, s->ctx) : NULL;
    return s2s_decode_step(t, m, y, s->R, in, ctx, out);
}

/* Whether id v may be output. <pad> only fills batches and <bos> is only
 * the first input: neither is ever a target, yet an undertrained model can
 * score them highest (one printed "<bos> <bos> ..."); fairseq, too, sets
 * their log-probabilities to -inf. <unk> and <eos> stay choosable. */
static int choosable(int v)
{
    return v != S2S_PAD && v != S2S_BOS;
}

/* ------------------------------------------------------------------ greedy */

/* The choosable id of the largest x[j] (ties: the lower id); <unk> is the
 * lowest choosable id, which every vocabulary has. -1 when an x[j] is NaN
 * or infinite: no comparison with a NaN holds, and such a row chose <unk>
 * at every step. x * 0 is 0 for a finite x, NaN otherwise (a NaN stays in
 * the sum): the row's check in the scan it has anyway. */
static int argmax_row(const tg_real *x, int n)
{
    int best = S2S_UNK;
    tg_real z = 0;
    for (int j = 0; j <= S2S_UNK; j++) z += x[j] * (tg_real)0;
    for (int j = S2S_UNK + 1; j < n; j++) {
        z += x[j] * (tg_real)0;
        if (choosable(j) && x[j] > x[best]) best = j;
    }
    return z == 0 ? best : -1;
}

/* Sentence `sentence`'s logits for output token `token` were not finite:
 * said in *f (when f is not NULL), once, the first found. */
static int nonfinite_at(s2s_decode_fault *f, size_t sentence, int token)
{
    if (f) *f = (s2s_decode_fault){sentence, token};
    return S2S_DECODE_NONFINITE;
}

/* Where greedy decoding puts each step's attention weights (NULL: nowhere):
 * sentence i's row for step k at w[i] + k * src_len[i], in source order. */
typedef struct weight_sink {
    tg_real *const *w;
    const int *src_len;
    int reversed; /* the memory reads each source backwards (reverse_source) */
    int *rows;    /* steps recorded per sentence */
} weight_sink;

/* Sentence i's weights of this step (row r of w, R x S) into the sink. */
static void sink_row(const weight_sink *k, const tg_tensor *w, int r, int i)
{
    int len = k->src_len[i], row = k->rows[i]++;
    tg_real *dst = k->w[i] + (size_t)row * (size_t)len;
    const tg_real *src = w->data + (size_t)r * (size_t)w->cols;
    for (int j = 0; j < len; j++) dst[j] = src[k->reversed ? len - 1 - j : j];
}

/* Rows keep[0..n-1] (ascending) of each of `groups` groups of R rows of
 * `bytes` bytes at base become rows 0..n-1 of groups of n, in place: no row
 * is written before it is read. */
static void keep_rows_of(void *base, size_t bytes, int groups, int R, const int *keep, int n)
{
    char *b = base;
    for (size_t g = 0; g < (size_t)groups; g++)
        for (int r = 0; r < n; r++)
            memmove(b + (g * n + r) * bytes, b + (g * R + keep[r]) * bytes, bytes);
}

/* The same for a tensor of groups of R rows (row g*R + r): NULL, or its
 * rows become groups * n. */
static void keep_tensor_rows(tg_tensor *x, int R, const int *keep, int n)
{
    if (!x) return;
    int groups = x->rows / R;
    keep_rows_of(x->data, (size_t)x->cols * sizeof *x->data, groups, R, keep, n);
    x->rows = groups * n;
}

/* Rows keep[0..n-1] (ascending) of s become its rows 0..n-1; the others
 * are dropped. */
static void keep_rows(dec_state *s, const int *keep, int n)
{
    int R = s->R;
    tg_state_buf_keep_rows(&s->st, keep, n);
    keep_rows_of(s->ctx, (size_t)s->H * sizeof *s->ctx, 1, R, keep, n);
    if (s->mask) keep_rows_of(s->mask, (size_t)s->S * sizeof *s->mask, 1, R, keep, n);
    if (s->keys != s->vals) keep_tensor_rows(s->keys, R, keep, n);
    keep_tensor_rows(s->vals, R, keep, n);
    keep_tensor_rows(s->v_rows, R, keep, n);
    s->R = n;
}

/* Rows (greedy) or sentences (beam) that have ended are dropped from a batch
 * once they are 1/DROP_SHARE of it: a batch of sentences of like length
 * still ends at unlike times (the de-en test set, greedy: 60% of the rows of
 * a step were still running), and a row's output does not depend on the
 * rows beside it. */
#define DROP_SHARE 8

/* Once 1/DROP_SHARE of the rows have ended (and not all: `left` run on),
 * the running rows, with their y and who, move up in order (the list of
 * them in s->rows) and the others are dropped. */
static void greedy_drop_done(dec_state *s, int left, int *y, char *done, int *who)
{
    if (left == 0 || (s->R - left) * DROP_SHARE < s->R) return;
    int n = 0;
    for (int r = 0; r < s->R; r++)
        if (!done[r]) s->rows[n] = r, y[n] = y[r], who[n] = who[r], done[n] = 0, n++;
    keep_rows(s, s->rows, n);
}

/* Decodes the chunk's rows (sentence who[r] in row r) until each ends. 0,
 * or S2S_DECODE_NONFINITE (the first such row in *fault) after the step
 * that met a row of logits that is not finite. */
static int greedy_chunk(tg_tape *t, const s2s_model *m, dec_state *s, int max_len, int *y,
                        char *done, int *who, int *const *out, int *out_len,
                        const weight_sink *sink, s2s_decode_fault *fault)
{
    int rc = 0;
    int V = m->cfg.tgt_vocab, left = s->R;
    tg_state nx[TG_MAX_LAYERS];
    tg_tensor *w = NULL;
    for (int i = 0; i < s->R; i++) y[i] = S2S_BOS, done[i] = 0, out_len[i] = 0, who[i] = i;
    for (int step = 0; step < max_len && left > 0; step++) {
        tg_tensor *logits = step_rows(t, m, s, y, nx, sink ? &w : NULL);
        for (int r = 0; r < s->R; r++) {
            int i = who[r];
            if (done[r]) continue;
            if (sink) sink_row(sink, w, r, i);
            int v = argmax_row(logits->data + (size_t)r * V, V);
            if (v < 0) {
                if (rc == 0) rc = nonfinite_at(fault, (size_t)i, step + 1);
                continue;
            }
            if (v == S2S_EOS) {
                done[r] = 1;
                left--;
                continue;
            }
            out[i][out_len[i]++] = v;
            y[r] = v;
        }
        if (rc != 0) return rc;
        tg_state_buf_store(&s->st, nx); /* rows stay in place */
        greedy_drop_done(s, left, y, done, who);
    }
    return 0;
}

/* A decode's start on t: no recording, the weights' panels held across
 * its steps' resets (-1, no memory, only costs speed). Returns the grad
 * mode to give back to decode_end. */
static int decode_begin(tg_tape *t)
{
    int was = tg_tape_grad_enabled(t);
    tg_tape_set_grad(t, 0);
    tg_tape_hold_param_panels(t, 1);
    return was;
}

/* A decode's end: t reset, its panels released, grad mode `was` again. */
static void decode_end(tg_tape *t, int was)
{
    tg_tape_reset(t);
    tg_tape_hold_param_panels(t, 0);
    tg_tape_set_grad(t, was);
}

static int greedy(tg_tape *t, const s2s_model *m, const int *const *src, const int *src_len,
                  size_t n, int max_len, int batch, int *const *out, int *out_len,
                  weight_sink *sink, s2s_decode_fault *fault)
{
    int rc = 0;
    int *y = malloc((size_t)batch * sizeof *y), *who = malloc((size_t)batch * sizeof *who);
    char *done = malloc((size_t)batch);
    int was = decode_begin(t);
    for (size_t i0 = 0; i0 < n && rc == 0 && y && done && who; i0 += (size_t)batch) {
        int k = (int)(n - i0 < (size_t)batch ? n - i0 : (size_t)batch);
        dec_state s;
        if (dec_state_init(&s, m, k) != 0 || encode_chunk(t, m, src + i0, src_len + i0, k, 1, &s) != 0)
            rc = -1;
        else {
            weight_sink chunk_sink;
            if (sink) /* the chunk's sentences from i0 on */
                chunk_sink = (weight_sink){sink->w + i0, sink->src_len + i0, sink->reversed,
                                           sink->rows + i0};
            rc = greedy_chunk(t, m, &s, max_len, y, done, who, out + i0, out_len + i0,
                              sink ? &chunk_sink : NULL, fault);
            if (rc == S2S_DECODE_NONFINITE && fault) fault->sentence += i0;
        }
        dec_state_free(&s);
    }
    if (!y || !done || !who) rc = -1;
    free(y);
    free(who);
    free(done);
    decode_end(t, was);
    return rc;
}

int s2s_greedy(tg_tape *t, const s2s_model *m, const int *const *src, const int *src_len,
               size_t n, int max_len, int batch, int *const *out, int *out_len)
{
    return greedy(t, m, src, src_len, n, max_len, batch, out, out_len, NULL, NULL);
}

int s2s_greedy_weights(tg_tape *t, const s2s_model *m, const int *const *src,
                       const int *src_len, size_t n, int max_len, int batch, int *const *out,
                       int *out_len, tg_real *const *weights, int *weight_rows)
{
    if (m->cfg.attention == TG_ATTN_NONE) return -2;
    for (size_t i = 0; i < n; i++) weight_rows[i] = 0;
    weight_sink sink = {weights, src_len, m->cfg.reverse_source, weight_rows};
    return greedy(t, m, src, src_len, n, max_len, batch, out, out_len, &sink, NULL);
}

/* ------------------------------------------------------------------ beam */

typedef struct cand {
    double score; /* total log-probability */
    int beam, token;
} cand;

/* Higher score first; ties: lower beam, then lower token (so K = 1 picks
 * the greedy argmax). */
static int cand_before(const cand *a, const cand *b)
{
    if (a->score != b->score) return a->score > b->score;
    if (a->beam != b->beam) return a->beam < b->beam;
    return a->token < b->token;
}

/* Inserts c into the sorted list top[0..*n) of at most cap entries. */
static void insert_top(cand *top, int *n, int cap, cand c)
{
    int i = *n < cap ? (*n)++ : cap;
    if (i == cap) {
        if (!cand_before(&c, &top[cap - 1])) return;
        i = cap - 1;
    }
    while (i > 0 && cand_before(&c, &top[i - 1])) {
        top[i] = top[i - 1];
        i--;
    }
    top[i] = c;
}

/* Row r's best choosable ids into top (at most cap, in order: the larger
 * logit first, ties to the lower id), as candidates of beam j: their total
 * log p from the row's score. y is the row's softmax (the engine's, on the
 * tape's threads), which at the row's largest logit m is 1 / sum exp(x - m):
 * log p(v) = x[v] - lse with lse = m - log y(m). Ids are chosen by logit,
 * in float; the double exp of every logit for lse took a third of a beam
 * step (de-en, 8000 pieces). Returns how many, or -1 when a logit or lse
 * is NaN or infinite (argmax_row's check, in this scan). */
static int row_top(const tg_real *x, const tg_real *y, int V, double score, int j, int cap,
                   cand *top)
{
    int best[S2S_BEAM_MAX + 1], nt = 0, im = 0; /* cap <= S2S_BEAM_MAX + 1 */
    tg_real z = 0;
    for (int v = 0; v < V; v++) {
        z += x[v] * (tg_real)0;
        if (x[v] > x[im]) im = v;
        if (!choosable(v) || (nt == cap && !(x[v] > x[best[cap - 1]]))) continue;
        int i = nt < cap ? nt++ : cap - 1;
        for (; i > 0 && x[v] > x[best[i - 1]]; i--) best[i] = best[i - 1];
        best[i] = v;
    }
    double lse = (double)x[im] - log((double)y[im]);
    if (z != 0 || !isfinite(lse)) return -1;
    for (int k = 0; k < nt; k++) top[k] = (cand){score + ((double)x[best[k]] - lse), j, best[k]};
    return nt;
}

/* Per-chunk beam bookkeeping, all heap arrays allocated once per call. */
typedef struct beam_work {
    int K, max_len, n;
    double *score;            /* R: total log p of each live row, -inf when dead */
    int *hyp, *hyp_len;       /* R x max_len tokens so far */
    int *new_hyp, *new_len;   /* the same after a step */
    double *new_score;
    int *parent, *y;          /* R */
    double *best;             /* n: best normalised finished score */
    int *best_tok, *best_len; /* n x max_len */
    int *n_done;              /* n: finished hypotheses seen */
    char *nonfinite;          /* n: this step read a row of logits that is not finite */
    cand *cands;              /* n x K * (K + 1): each sentence's own (beam_select_all) */
    tg_real *tmp;             /* L * R * H, state before reordering */
} beam_work;

static int beam_work_init(beam_work *w, int K, int max_len, int n, int L, int H)
{
    size_t R = (size_t)n * (size_t)K, ml = (size_t)max_len;
    memset(w, 0, sizeof *w);
    w->K = K;
    w->max_len = max_len;
    w->score = malloc(R * sizeof *w->score);
    w->new_score = malloc(R * sizeof *w->new_score);
    w->hyp = malloc(R * ml * sizeof *w->hyp);
    w->new_hyp = malloc(R * ml * sizeof *w->new_hyp);
    w->hyp_len = malloc(R * sizeof *w->hyp_len);
    w->new_len = malloc(R * sizeof *w->new_len);
    w->parent = malloc(R * sizeof *w->parent);
    w->y = malloc(R * sizeof *w->y);
    w->best = malloc((size_t)n * sizeof *w->best);
    w->best_tok = malloc((size_t)n * ml * sizeof *w->best_tok);
    w->best_len = malloc((size_t)n * sizeof *w->best_len);
    w->n_done = malloc((size_t)n * sizeof *w->n_done);
    w->nonfinite = malloc((size_t)n);
    w->cands = malloc((size_t)n * (size_t)K * (size_t)(K + 1) * sizeof *w->cands);
    w->tmp = malloc((size_t)L * R * (size_t)H * sizeof *w->tmp);
    return w->score && w->new_score && w->hyp && w->new_hyp && w->hyp_len && w->new_len &&
                   w->parent && w->y && w->best && w->best_tok && w->best_len && w->n_done &&
                   w->cands && w->tmp && w->nonfinite
               ? 0
               : -1;
}

static void beam_work_free(beam_work *w)
{
    free(w->score), free(w->new_score), free(w->hyp), free(w->new_hyp), free(w->hyp_len);
    free(w->new_len), free(w->parent), free(w->y), free(w->best), free(w->best_tok);
    free(w->best_len), free(w->n_done), free(w->cands), free(w->tmp), free(w->nonfinite);
}

static void beam_start(beam_work *w, int n)
{
    w->n = n;
    for (int r = 0; r < n * w->K; r++) {
        w->score[r] = r % w->K == 0 ? 0.0 : -INFINITY; /* all beams start equal: keep one */
        w->hyp_len[r] = 0;
        w->y[r] = S2S_BOS;
    }
    for (int i = 0; i < n; i++) w->best[i] = -INFINITY, w->best_len[i] = 0, w->n_done[i] = 0;
}

/* Normalised score of a hypothesis of len tokens (live, or cut at --max-len;
 * a finished one counts its <eos>). */
static double length_norm(double score, int len, double alpha)
{
    return score / pow((double)(len > 0 ? len : 1), alpha);
}

/* Records a finished hypothesis of sentence i: row r's tokens, then <eos>
 * when ended (else cut at --max-len), of log-probability score. */
static void beam_finish(beam_work *w, int i, int r, double score, int ended, double alpha)
{
    double norm = length_norm(score, w->hyp_len[r] + ended, alpha);
    w->n_done[i]++;
    if (norm > w->best[i]) {
        w->best[i] = norm;
        w->best_len[i] = w->hyp_len[r];
        memcpy(w->best_tok + (size_t)i * w->max_len, w->hyp + (size_t)r * w->max_len,
               (size_t)w->hyp_len[r] * sizeof *w->hyp);
    }
}

/* Chooses sentence i's next K rows from its candidates: in score order, an
 * <eos> candidate finishes its hypothesis, others fill the K live rows.
 * The sentence stops when its best finished hypothesis scores at least as
 * well as every live one (exact for alpha = 0: log p only falls as a
 * hypothesis grows; the usual heuristic otherwise). A live row whose
 * logits are not finite sets w->nonfinite[i] and chooses nothing (its
 * NaN scores dropped every hypothesis: an empty translation). */
static void beam_select(beam_work *w, int i, const tg_real *logits, const tg_real *probs, int V,
                        double alpha)
{
    int K = w->K, nc = 0, live = 0;
    cand *cands = w->cands + (size_t)i * K * (K + 1);
    w->nonfinite[i] = 0;
    for (int j = 0; j < K; j++) {
        int r = i * K + j;
        if (!isfinite(w->score[r])) continue;
        cand top[S2S_BEAM_MAX + 1]; /* K + 1: one may be <eos>; log p over all ids */
        int nt = row_top(logits + (size_t)r * V, probs + (size_t)r * V, V, w->score[r], j,
                         K + 1, top);
        if (nt < 0) {
            w->nonfinite[i] = 1;
            return;
        }
        for (int k = 0; k < nt; k++) insert_top(cands, &nc, K * (K + 1), top[k]);
    }
    for (int k = 0; k < nc && live < K; k++) {
        const cand *c = &cands[k];
        int parent = i * K + c->beam;
        if (w->hyp_len[parent] >= w->max_len) { /* cut: scored by the tokens it has */
            beam_finish(w, i, parent, w->score[parent], 0, alpha);
            continue;
        }
        if (c->token == S2S_EOS) {
            beam_finish(w, i, parent, c->score, 1, alpha);
            continue;
        }
        int r = i * K + live++;
        w->parent[r] = parent;
        w->new_score[r] = c->score;
        w->new_len[r] = w->hyp_len[parent] + 1;
        memcpy(w->new_hyp + (size_t)r * w->max_len, w->hyp + (size_t)parent * w->max_len,
               (size_t)w->hyp_len[parent] * sizeof *w->hyp);
        w->new_hyp[(size_t)r * w->max_len + w->hyp_len[parent]] = c->token;
    }
    double best_live = -INFINITY;
    for (int j = 0; j < live; j++)
        best_live = fmax(best_live, length_norm(w->new_score[i * K + j], w->new_len[i * K + j], alpha));
    if (w->n_done[i] > 0 && w->best[i] >= best_live) live = 0; /* sentence finished */
    for (int j = live; j < K; j++) {
        int r = i * K + j;
        w->parent[r] = r;
        w->new_score[r] = -INFINITY;
        w->new_len[r] = 0;
    }
}

/* Logits below this many are scanned by one thread (the ops' own floor for
 * a parallel loop): a team per decoding step cost more than the scan, and
 * on a loaded machine each one waited for a descheduled thread (helper-45:
 * --beam 16 --eval-batch 2 on a tiny model, 0.13 s at 1 thread, 15 s at 2). */
#define BEAM_PAR_MIN 32768

/* Every sentence's next rows: sentences side by side on the tape's threads
 * (each writes its own rows, results and candidates only, so the same bits
 * on any number); serial, the other threads would wait through every
 * step's scan of rows x vocabulary logits. No OpenMP region for one thread:
 * entering one costs a team set-up. */
static void beam_select_all(beam_work *w, const tg_tensor *logits, const tg_tensor *probs,
                            double alpha, int threads)
{
    int V = logits->cols;
    if (threads > 1 && w->n > 1 && (long)logits->rows * V >= BEAM_PAR_MIN) {
#pragma omp parallel for schedule(static) num_threads(threads)
        for (int i = 0; i < w->n; i++) beam_select(w, i, logits->data, probs->data, V, alpha);
    } else {
        for (int i = 0; i < w->n; i++) beam_select(w, i, logits->data, probs->data, V, alpha);
    }
}

/* Moves the step's outputs into the heap state, row r from its parent. */
static void beam_reorder(beam_work *w, dec_state *s, const tg_state *nx)
{
    memcpy(s->rows, w->parent, (size_t)s->R * sizeof *s->rows);
    move_rows(s, nx, s->ctx, w->tmp); /* the context follows its parent too */
    int *th = w->hyp, *tl = w->hyp_len;
    double *ts = w->score;
    w->hyp = w->new_hyp, w->new_hyp = th;
    w->hyp_len = w->new_len, w->new_len = tl;
    w->score = w->new_score, w->new_score = ts;
    for (int r = 0; r < s->R; r++)
        w->y[r] = w->hyp_len[r] > 0 ? w->hyp[(size_t)r * w->max_len + w->hyp_len[r] - 1] : S2S_BOS;
}

/* The answer of sentence i: best finished, else best live by normalised score. */
static void beam_answer(const beam_work *w, int i, double alpha, int *out, int *out_len)
{
    const int *tok = w->best_tok + (size_t)i * w->max_len;
    int len = w->best_len[i];
    if (w->n_done[i] == 0) {
        double best = -INFINITY;
        int br = i * w->K;
        for (int j = 0; j < w->K; j++) {
            int r = i * w->K + j;
            double norm = length_norm(w->score[r], w->hyp_len[r], alpha);
            if (isfinite(w->score[r]) && norm > best) best = norm, br = r;
        }
        tok = w->hyp + (size_t)br * w->max_len;
        len = w->hyp_len[br];
    }
    memcpy(out, tok, (size_t)len * sizeof *out);
    *out_len = len;
}

static int sentences_left(const beam_work *w)
{
    for (int r = 0; r < w->n * w->K; r++)
        if (isfinite(w->score[r])) return 1;
    return 0;
}

/* Whether sentence i has ended: no live row. */
static int sentence_done(const beam_work *w, int i)
{
    for (int j = 0; j < w->K; j++)
        if (isfinite(w->score[i * w->K + j])) return 0;
    return 1;
}

/* Sentence `from` of w becomes sentence i (from >= i): its rows and
 * results. */
static void beam_move_sentence(beam_work *w, int i, int from)
{
    size_t K = (size_t)w->K, ml = (size_t)w->max_len;
    memmove(w->score + i * K, w->score + from * K, K * sizeof *w->score);
    memmove(w->hyp_len + i * K, w->hyp_len + from * K, K * sizeof *w->hyp_len);
    memmove(w->y + i * K, w->y + from * K, K * sizeof *w->y);
    memmove(w->hyp + i * K * ml, w->hyp + from * K * ml, K * ml * sizeof *w->hyp);
    memmove(w->best_tok + i * ml, w->best_tok + from * ml, ml * sizeof *w->best_tok);
    w->best[i] = w->best[from];
    w->best_len[i] = w->best_len[from];
    w->n_done[i] = w->n_done[from];
}

/* Once 1/DROP_SHARE of the sentences have ended (and not all), their
 * answers go out (sentence i is who[i]'s) and their rows are dropped. */
static void beam_drop_done(beam_work *w, dec_state *s, int *who, double alpha,
                           int *const *out, int *out_len)
{
    int done = 0, K = w->K, n = 0;
    for (int i = 0; i < w->n; i++) done += sentence_done(w, i);
    if (done == w->n || done * DROP_SHARE < w->n) return;
    for (int i = 0; i < w->n; i++) {
        if (sentence_done(w, i)) { /* cheap: K scores */
            beam_answer(w, i, alpha, out[who[i]], &out_len[who[i]]);
            continue;
        }
        for (int j = 0; j < K; j++) s->rows[n * K + j] = i * K + j;
        beam_move_sentence(w, n, i);
        who[n++] = who[i];
    }
    keep_rows(s, s->rows, n * K);
    w->n = n;
}

/* 0, or S2S_DECODE_NONFINITE (its first sentence in *fault) after the
 * step that met a row of logits that is not finite. */
static int beam_chunk(tg_tape *t, const s2s_model *m, dec_state *s, beam_work *w, double alpha,
                      int *who, int *const *out, int *out_len, s2s_decode_fault *fault)
{
    tg_state nx[TG_MAX_LAYERS];
    for (int i = 0; i < w->n; i++) who[i] = i;
    for (int step = 0; step <= w->max_len && sentences_left(w); step++) {
        tg_tensor *logits = step_rows(t, m, s, w->y, nx, NULL);
        tg_tensor *probs = tg_softmax(t, logits, NULL); /* no grad: nothing recorded */
        beam_select_all(w, logits, probs, alpha, tg_tape_threads(t));
        for (int i = 0; i < w->n; i++)
            if (w->nonfinite[i]) return nonfinite_at(fault, (size_t)who[i], step + 1);
        beam_reorder(w, s, nx);
        beam_drop_done(w, s, who, alpha, out, out_len);
    }
    for (int i = 0; i < w->n; i++) beam_answer(w, i, alpha, out[who[i]], &out_len[who[i]]);
    return 0;
}

static int beam(tg_tape *t, const s2s_model *m, const int *const *src, const int *src_len,
                size_t n, int K, int max_len, double len_alpha, int batch, int *const *out,
                int *out_len, s2s_decode_fault *fault)
{
    int rc = 0;
    int *who = malloc((size_t)batch * sizeof *who);
    beam_work w;
    if (K > S2S_BEAM_MAX) K = S2S_BEAM_MAX; /* row_top's lists hold K + 1 */
    if (beam_work_init(&w, K, max_len, batch, m->cfg.layers, m->cfg.hidden) != 0 || !who) rc = -1;
    int was = decode_begin(t);
    for (size_t i0 = 0; i0 < n && rc == 0; i0 += (size_t)batch) {
        int k = (int)(n - i0 < (size_t)batch ? n - i0 : (size_t)batch);
        dec_state s;
        if (dec_state_init(&s, m, k * K) != 0 ||
            encode_chunk(t, m, src + i0, src_len + i0, k, K, &s) != 0)
            rc = -1;
        else {
            beam_start(&w, k);
            rc = beam_chunk(t, m, &s, &w, len_alpha, who, out + i0, out_len + i0, fault);
            if (rc == S2S_DECODE_NONFINITE && fault) fault->sentence += i0;
        }
        dec_state_free(&s);
    }
    beam_work_free(&w);
    free(who);
    decode_end(t, was);
    return rc;
}

int s2s_beam(tg_tape *t, const s2s_model *m, const int *const *src, const int *src_len,
             size_t n, int K, int max_len, double len_alpha, int batch, int *const *out,
             int *out_len)
{
    return beam(t, m, src, src_len, n, K, max_len, len_alpha, batch, out, out_len, NULL);
}

static int decode(tg_tape *t, const s2s_model *m, const int *const *src, const int *src_len,
                  size_t n, const s2s_decode_options *o, int *const *out, int *out_len)
{
    if (o->beam <= 1)
        return greedy(t, m, src, src_len, n, o->max_len, o->batch, out, out_len, NULL, o->fault);
    return beam(t, m, src, src_len, n, o->beam, o->max_len, o->len_alpha, o->batch, out,
                out_len, o->fault);
}

typedef struct by_len {
    int len;
    size_t i;
} by_len;

/* Shorter sources first, ties in the given order. */
static int by_len_cmp(const void *pa, const void *pb)
{
    const by_len *a = pa, *b = pb;
    if (a->len != b->len) return a->len < b->len ? -1 : 1;
    return a->i < b->i ? -1 : a->i > b->i;
}

/* The sentences sorted by source length: their sources, lengths and output
 * rows in that order, and room for the decoder's output lengths, which go
 * back to the caller's order after (sentence j of the sorted order is the
 * caller's order[j].i). */
typedef struct sorted_set {
    const int **src;
    int *src_len, *out_len;
    int **out;
    by_len *order;
} sorted_set;

static void sorted_free(sorted_set *z)
{
    free(z->src);
    free(z->src_len);
    free(z->out_len);
    free(z->out);
    free(z->order);
}

static int sorted_init(sorted_set *z, const int *const *src, const int *src_len, size_t n,
                       int *const *out)
{
    z->src = malloc(n * sizeof *z->src);
    z->src_len = malloc(n * sizeof *z->src_len);
    z->out_len = malloc(n * sizeof *z->out_len);
    z->out = malloc(n * sizeof *z->out);
    z->order = malloc(n * sizeof *z->order);
    if (!z->src || !z->src_len || !z->out_len || !z->out || !z->order) return -1;
    for (size_t i = 0; i < n; i++) z->order[i] = (by_len){src_len[i], i};
    qsort(z->order, n, sizeof *z->order, by_len_cmp);
    for (size_t j = 0; j < n; j++) {
        size_t i = z->order[j].i;
        z->src[j] = src[i];
        z->src_len[j] = src_len[i];
        z->out[j] = out[i];
    }
    return 0;
}

size_t s2s_decode_batch_size(const int *src_len, size_t n, const s2s_decode_options *o)
{
    size_t k = 0;
    int longest = 0;
    while (k < n && k < (size_t)o->batch) {
        int l = src_len[k] > longest ? src_len[k] : longest;
        if (o->max_tokens > 0 && k > 0 && (long)(k + 1) * l > o->max_tokens) break;
        longest = l;
        k++;
    }
    return k > 0 || n == 0 ? k : 1; /* a batch of <= 0 still moves on */
}

int s2s_decode_keeps_rows(const s2s_model *m)
{
    const s2s_config *c = &m->cfg;
    /* every product's width and inner size are at least these: the gates,
     * attention and bridge take multiples of the (per direction) hidden
     * size, the output layer the target vocabulary; inputs are embeddings
     * or hidden states. (MLP attention's ones x v, inner size 1, runs on
     * BLAS: exact whatever the rows.) */
    int hidden = c->bidirectional ? c->hidden / 2 : c->hidden;
    int width = hidden < c->tgt_vocab ? hidden : c->tgt_vocab;
    int inner = hidden < c->embed ? hidden : c->embed;
    return tg_panels_max_rows(width, inner) > 0;
}

/* The n sentences in batches of s2s_decode_batch_size, in the order given. */
static int decode_batches(tg_tape *t, const s2s_model *m, const int *const *src,
                          const int *src_len, size_t n, const s2s_decode_options *o,
                          int *const *out, int *out_len)
{
    if (o->max_tokens <= 0) return decode(t, m, src, src_len, n, o, out, out_len);
    int rc = 0, was = decode_begin(t); /* the panels held across the batches */
    for (size_t i0 = 0, k; i0 < n && rc == 0; i0 += k) {
        k = s2s_decode_batch_size(src_len + i0, n - i0, o);
        rc = decode(t, m, src + i0, src_len + i0, k, o, out + i0, out_len + i0);
        if (rc == S2S_DECODE_NONFINITE && o->fault) o->fault->sentence += i0;
    }
    decode_end(t, was);
    return rc;
}

/* Sentences are decoded in batches of like source length: a batch runs to
 * its longest source and, in the main, its longest output. A sentence's
 * output does not depend on its batch where rows are computed alone (the
 * weight panels' kernels; tested), so the order changes only the time. */
int s2s_translate(tg_tape *t, const s2s_model *m, const int *const *src, const int *src_len,
                  size_t n, const s2s_decode_options *o, int *const *out, int *out_len)
{
    if (n <= 1) return decode(t, m, src, src_len, n, o, out, out_len);
    sorted_set z = {0};
    int rc = sorted_init(&z, src, src_len, n, out);
    if (rc == 0)
        rc = decode_batches(t, m, (const int *const *)z.src, z.src_len, n, o, z.out, z.out_len);
    for (size_t j = 0; rc == 0 && j < n; j++) out_len[z.order[j].i] = z.out_len[j];
    if (rc == S2S_DECODE_NONFINITE && o->fault) /* back to the caller's order */
        o->fault->sentence = z.order[o->fault->sentence].i;
    sorted_free(&z);
    return rc;
}
