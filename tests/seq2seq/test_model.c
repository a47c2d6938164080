/* seq2seq model: padding invariance of the encoder state, the loss and the
 * gradients; beam search with K = 1 equals greedy decoding, and neither
 * outputs <bos> or <pad>; a tiny training run whose loss falls; save/load
 * round trip. */
#include <criterion/criterion.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "corpus_enko.h"
#include "decode.h"
#include "model.h"
#include "model_io.h"
#include "pairs.h"
#include "tg_optim.h"

enum { V_SRC = 20, V_TGT = 18, EMB = 6, HID = 8 };

static void make_model_attn(s2s_model *m, const char *cell, int layers, int feed, int reverse,
                            tg_attn_kind attn, uint64_t seed)
{
    s2s_config c;
    memset(&c, 0, sizeof c);
    c.cell = tg_cell_kind_by_name(cell);
    cr_assert_not_null(c.cell);
    c.embed = EMB;
    c.hidden = HID;
    c.layers = layers;
    c.src_vocab = V_SRC;
    c.tgt_vocab = V_TGT;
    c.feed_context = feed;
    c.reverse_source = reverse;
    c.attention = attn;
    cr_assert_eq(s2s_model_init(m, &c, seed), 0);
}

static void make_model(s2s_model *m, const char *cell, int layers, int feed, int reverse)
{
    make_model_attn(m, cell, layers, feed, reverse, TG_ATTN_NONE, 77);
}

/* |a - b| <= tol * max(1, |a|, |b|): equal up to float rounding. A padding
 * leak changes these values by far more (they are O(0.1)). */
static void assert_close(double a, double b, double tol, const char *what)
{
    double scale = fmax(1.0, fmax(fabs(a), fabs(b)));
    cr_assert(fabs(a - b) <= tol * scale, "%s: %.9g vs %.9g", what, a, b);
}

#define TOL 1e-5

/* The pair of interest and a longer partner. */
static const int a_src[] = {5, 6, 7}, a_tgt[] = {8, 9};
static const int b_src[] = {4, 9, 10, 11, 12, 13}, b_tgt[] = {5, 6, 7, 10, 11};

typedef struct run {
    double loss;
    int n_tgt;
    tg_real h[TG_MAX_LAYERS][HID], c[TG_MAX_LAYERS][HID];
    tg_real *grad;
} run;

/* Loss, row 0's encoder final state and the parameter gradients of a batch
 * of the given pairs, padded to at least min_ts / min_tt. */
static void run_batch(s2s_model *m, tg_tape *t, int B, const int *const *src, const int *sl,
                      const int *const *tgt, const int *tl, int min_ts, int min_tt, run *out)
{
    s2s_batch b;
    tg_state fin[TG_MAX_LAYERS];
    tg_tape_reset(t);
    s2s_batch_make(&b, t, &m->cfg, B, src, sl, tgt, tl, min_ts, min_tt);
    tg_tensor *loss = s2s_loss(t, m, &b, NULL, fin);
    tg_params_zero_grad(m->params);
    tg_backward(t, loss);
    out->loss = loss->data[0];
    out->n_tgt = b.n_tgt;
    for (int l = 0; l < m->cfg.layers; l++)
        for (int j = 0; j < HID; j++) {
            out->h[l][j] = fin[l].h->data[j];
            out->c[l][j] = fin[l].c ? fin[l].c->data[j] : 0;
        }
    size_t n = tg_params_numel(m->params);
    out->grad = malloc(n * sizeof *out->grad);
    memcpy(out->grad, tg_params_grad(m->params), n * sizeof *out->grad);
}

static void assert_same_state(const run *x, const run *y, int layers, double tol)
{
    for (int l = 0; l < layers; l++)
        for (int j = 0; j < HID; j++) {
            assert_close(x->h[l][j], y->h[l][j], tol, "encoder h");
            assert_close(x->c[l][j], y->c[l][j], tol, "encoder c");
        }
}

static void check_padding(const char *cell, int layers, int feed, int reverse)
{
    s2s_model m;
    make_model(&m, cell, layers, feed, reverse);
    tg_tape *t = tg_tape_new(16u << 20);
    size_t np = tg_params_numel(m.params);
    const int *as[1] = {a_src}, *at[1] = {a_tgt}, *bs[1] = {b_src}, *bt[1] = {b_tgt};
    int asl = 3, atl = 2, bsl = 6, btl = 5;
    run alone, padded, partner, mixed;
    run_batch(&m, t, 1, as, &asl, at, &atl, 0, 0, &alone);
    run_batch(&m, t, 1, as, &asl, at, &atl, 7, 6, &padded);
    run_batch(&m, t, 1, bs, &bsl, bt, &btl, 0, 0, &partner);
    const int *ms[2] = {a_src, b_src}, *mt[2] = {a_tgt, b_tgt};
    int msl[2] = {3, 6}, mtl[2] = {2, 5};
    run_batch(&m, t, 2, ms, msl, mt, mtl, 0, 0, &mixed);

    /* alone vs padded (same batch of one). Not bit for bit: a layer's input
     * projection is one GEMM over all T*B rows, and BLAS may round a row
     * differently when the matrix has more rows (seen: 1e-7 relative) */
    cr_assert_eq(alone.n_tgt, 3);
    cr_assert_eq(padded.n_tgt, 3);
    assert_same_state(&alone, &padded, layers, TOL);
    assert_close(alone.loss, padded.loss, TOL, "loss padded");
    for (size_t i = 0; i < np; i++) assert_close(alone.grad[i], padded.grad[i], TOL, "gradient");

    /* in a batch with a longer sentence: same state, and the batch loss is
     * the token-weighted mean of the two alone */
    assert_same_state(&alone, &mixed, layers, TOL);
    double want = (alone.loss * 3 + partner.loss * 6) / 9;
    assert_close(mixed.loss, want, TOL, "batch loss");
    /* and the gradient is the token-weighted mean of the gradients */
    for (size_t i = 0; i < np; i++)
        assert_close(mixed.grad[i], (alone.grad[i] * 3 + partner.grad[i] * 6) / 9, TOL,
                     "batch gradient");
    /* the padding really was there: a wrong length changes the state */
    int wrong = 4;
    const int *ps[1] = {b_src};
    run cut;
    run_batch(&m, t, 1, ps, &wrong, bt, &btl, 0, 0, &cut);
    double diff = 0;
    for (int j = 0; j < HID; j++) diff += fabs(cut.h[layers - 1][j] - partner.h[layers - 1][j]);
    cr_assert_gt(diff, 1e-3, "the encoder ignores its input?");
    free(alone.grad), free(padded.grad), free(partner.grad), free(mixed.grad), free(cut.grad);
    tg_tape_free(t);
    s2s_model_free(&m);
}

/* A model file's metadata is checked against its tensors before the model
 * is built (tgx_model_meta_fits): every model's parameters lie between the
 * floor and the bound, whatever its cell, layers, attention and encoder. */
Test(model, its_parameters_lie_between_the_floor_and_the_bound)
{
    const char *cells[] = {"rnn", "lstm", "gru", "mgu", "peephole"};
    const tg_attn_kind attn[] = {TG_ATTN_NONE, TG_ATTN_DOT, TG_ATTN_GENERAL, TG_ATTN_MLP};
    for (int k = 0; k < 5; k++)
        for (int layers = 1; layers <= 2; layers++)
            for (int a = 0; a < 4; a++)
                for (int v = 0; v < 4; v++) {
                    s2s_config c = {tg_cell_kind_by_name(cells[k]), 6, 8, layers, 0, 11, 13,
                                    v & 1, 0, attn[a], v >> 1};
                    s2s_model m;
                    cr_assert_eq(s2s_model_init(&m, &c, 1), 0);
                    size_t n = tg_params_numel(m.params);
                    cr_expect(s2s_config_numel_floor(&c) <= n && n <= s2s_config_numel_bound(&c),
                              "%s, %d layers, attention %s, fed %d, bidirectional %d: %zu "
                              "parameters, floor %zu, bound %zu", cells[k], layers,
                              tg_attn_kind_name(attn[a]), v & 1, v >> 1, n,
                              s2s_config_numel_floor(&c), s2s_config_numel_bound(&c));
                    s2s_model_free(&m);
                }
}

Test(padding, lstm) { check_padding("lstm", 1, 0, 0); }
Test(padding, lstm_two_layers_context) { check_padding("lstm", 2, 1, 0); }
Test(padding, gru_reversed_source) { check_padding("gru", 1, 1, 1); }
Test(padding, rnn) { check_padding("rnn", 2, 0, 1); }
Test(padding, mgu) { check_padding("mgu", 1, 1, 0); }

/* s2s_loss runs the generator on the rows whose target is not <pad> only;
 * the loss and every parameter's gradient must be those of the logits of
 * all rows (s2s_logits) with the padded ones ignored by the cross-entropy. */
static void loss_and_grads(s2s_model *m, tg_tape *t, const s2s_batch *b, int all_rows,
                           double *loss, tg_real *grad)
{
    tg_tensor *l = all_rows ? tg_softmax_xent(t, s2s_logits(t, m, b, NULL, NULL), b->dec_out,
                                              S2S_PAD)
                            : s2s_loss(t, m, b, NULL, NULL);
    tg_params_zero_grad(m->params);
    tg_backward(t, l);
    *loss = l->data[0];
    memcpy(grad, tg_params_grad(m->params), tg_params_numel(m->params) * sizeof *grad);
}

static void check_kept_rows(tg_attn_kind attn)
{
    s2s_model m;
    make_model_attn(&m, "lstm", 1, 0, 0, attn, 5);
    const int *src[3] = {a_src, b_src, a_src}, *tgt[3] = {a_tgt, b_tgt, b_tgt};
    int sl[3] = {3, 6, 3}, tl[3] = {2, 5, 5};
    tg_tape *t = tg_tape_new(16u << 20);
    s2s_batch b;
    s2s_batch_make(&b, t, &m.cfg, 3, src, sl, tgt, tl, 0, 8); /* 27 rows, 15 scored */
    cr_assert_eq(b.n_tgt, 3 + 6 + 6);
    size_t np = tg_params_numel(m.params);
    tg_real *all = malloc(np * sizeof *all), *kept = malloc(np * sizeof *kept);
    double loss_all, loss_kept;
    loss_and_grads(&m, t, &b, 1, &loss_all, all);
    loss_and_grads(&m, t, &b, 0, &loss_kept, kept);
    assert_close(loss_kept, loss_all, TOL, "loss");
    double norm = 0;
    for (size_t i = 0; i < np; i++) {
        assert_close(kept[i], all[i], TOL, "gradient");
        norm += fabs(all[i]);
    }
    cr_assert_gt(norm, 1e-3, "no gradient to compare");
    free(all), free(kept);
    tg_tape_free(t);
    s2s_model_free(&m);
}

Test(padding, loss_scores_kept_rows_as_all_rows) { check_kept_rows(TG_ATTN_NONE); }
Test(padding, loss_scores_kept_rows_as_all_rows_attention) { check_kept_rows(TG_ATTN_GENERAL); }

/* ------------------------------------------------------------------ training */

typedef struct tiny_data {
    s2s_pairs train, test;
    s2s_vocab vs, vt;
    int n;
    int **src, **tgt, *sl, *tl;
} tiny_data;

static void tiny_corpus(tiny_data *d, int n)
{
    enko_options o;
    char err[256];
    enko_options_default(&o);
    o.n_train = n;
    o.n_test = 10;
    s2s_pairs_init(&d->train);
    s2s_pairs_init(&d->test);
    cr_assert_eq(enko_generate(&o, &d->train, &d->test, NULL, NULL, err, sizeof err), 0, "%s", err);
    cr_assert_eq(s2s_vocab_build(&d->vs, d->train.src, d->train.n, 1), 0);
    cr_assert_eq(s2s_vocab_build(&d->vt, d->train.tgt, d->train.n, 1), 0);
    d->n = n;
    d->src = malloc((size_t)n * sizeof *d->src);
    d->tgt = malloc((size_t)n * sizeof *d->tgt);
    d->sl = malloc((size_t)n * sizeof *d->sl);
    d->tl = malloc((size_t)n * sizeof *d->tl);
    for (int i = 0; i < n; i++) {
        d->src[i] = malloc(64 * sizeof(int));
        d->tgt[i] = malloc(64 * sizeof(int));
        d->sl[i] = s2s_vocab_encode(&d->vs, d->train.src[i], d->src[i], 64, S2S_UNK);
        d->tl[i] = s2s_vocab_encode(&d->vt, d->train.tgt[i], d->tgt[i], 64, S2S_UNK);
    }
}

static void free_tiny(tiny_data *d)
{
    for (int i = 0; i < d->n; i++) free(d->src[i]), free(d->tgt[i]);
    free(d->src), free(d->tgt), free(d->sl), free(d->tl);
    s2s_vocab_free(&d->vs);
    s2s_vocab_free(&d->vt);
    s2s_pairs_free(&d->train);
    s2s_pairs_free(&d->test);
}

static s2s_config tiny_config(const tiny_data *d)
{
    s2s_config c;
    memset(&c, 0, sizeof c);
    c.cell = &tg_cell_lstm;
    c.embed = 16;
    c.hidden = 48;
    c.layers = 1;
    c.src_vocab = d->vs.n;
    c.tgt_vocab = d->vt.n;
    c.feed_context = 1;
    return c;
}

/* Trains steps steps of batch B from pair 0 on; returns mean loss of the
 * first and the last 10 steps. */
static void train_steps(s2s_model *m, tg_optim *opt, tg_tape *t, const tiny_data *d, int steps,
                        int B, double *first, double *last)
{
    *first = *last = 0;
    for (int s = 0; s < steps; s++) {
        int i0 = (s * B) % (d->n - B);
        s2s_batch b;
        tg_tape_reset(t);
        s2s_batch_make(&b, t, &m->cfg, B, (const int *const *)d->src + i0, d->sl + i0,
                       (const int *const *)d->tgt + i0, d->tl + i0, 0, 0);
        tg_tensor *loss = s2s_loss(t, m, &b, NULL, NULL);
        tg_params_zero_grad(m->params);
        tg_backward(t, loss);
        tg_clip_grad_norm(m->params, 5.0);
        tg_optim_step(opt, m->params);
        cr_assert(isfinite(loss->data[0]));
        if (s < 10) *first += loss->data[0] / 10;
        if (s >= steps - 10) *last += loss->data[0] / 10;
    }
}

/* ------------------------------------------------------------------ decoding */

/* A partly trained tiny model: outputs of realistic, varying lengths, some
 * wrong, and probabilities far from one-hot, so that search matters. */
typedef struct trained {
    tiny_data d;
    s2s_model m;
    tg_tape *t;
} trained;

static void make_trained_attn(trained *x, const char *cell, int steps, tg_attn_kind attn,
                              int bidir)
{
    tiny_corpus(&x->d, 800);
    s2s_config c = tiny_config(&x->d);
    c.cell = tg_cell_kind_by_name(cell);
    c.attention = attn;
    c.bidirectional = bidir;
    cr_assert_eq(s2s_model_init(&x->m, &c, 3), 0);
    tg_optim_config oc = tg_optim_defaults(TG_OPTIM_ADAM);
    oc.lr = 1e-2;
    char err[256];
    tg_optim *opt = tg_optim_new(&oc, tg_params_numel(x->m.params), err, sizeof err);
    cr_assert_not_null(opt, "%s", err);
    size_t need = s2s_arena_bytes(&c, 32, 12, 16), dec = s2s_decode_arena_bytes(&c, 64, 4, 12);
    x->t = tg_tape_new(need > dec ? need : dec);
    double first, last;
    train_steps(&x->m, opt, x->t, &x->d, steps, 32, &first, &last);
    tg_optim_free(opt);
}

static void make_trained(trained *x, const char *cell, int steps)
{
    make_trained_attn(x, cell, steps, TG_ATTN_NONE, 0);
}

static void free_trained(trained *x)
{
    tg_tape_free(x->t);
    s2s_model_free(&x->m);
    free_tiny(&x->d);
}

static int **alloc_out(int n, int max_len)
{
    int **o = malloc((size_t)n * sizeof *o);
    for (int i = 0; i < n; i++) o[i] = malloc((size_t)max_len * sizeof **o);
    return o;
}

static void free_out(int **o, int n)
{
    for (int i = 0; i < n; i++) free(o[i]);
    free(o);
}

enum { N_DEC = 300, MAX_LEN = 9 };

static void check_beam1_is_greedy(const char *cell)
{
    trained x;
    make_trained(&x, cell, 40);
    int **g = alloc_out(N_DEC, MAX_LEN), **b = alloc_out(N_DEC, MAX_LEN), gl[N_DEC], bl[N_DEC];
    const int *const *src = (const int *const *)x.d.src;
    cr_assert_eq(s2s_greedy(x.t, &x.m, src, x.d.sl, N_DEC, MAX_LEN, 64, g, gl), 0);
    cr_assert_eq(s2s_beam(x.t, &x.m, src, x.d.sl, N_DEC, 1, MAX_LEN, 1.0, 64, b, bl), 0);
    int stopped = 0, full = 0, wrong = 0;
    for (int i = 0; i < N_DEC; i++) {
        cr_assert_eq(gl[i], bl[i], "sentence %d: lengths %d vs %d", i, gl[i], bl[i]);
        for (int k = 0; k < gl[i]; k++) cr_assert_eq(g[i][k], b[i][k], "sentence %d token %d", i, k);
        stopped += gl[i] < MAX_LEN;
        full += gl[i] == MAX_LEN;
        wrong += gl[i] != x.d.tl[i] || memcmp(g[i], x.d.tgt[i], (size_t)gl[i] * sizeof(int)) != 0;
    }
    cr_assert(stopped > 10 && full > 10, "want both endings (stopped %d, full %d)", stopped, full);
    cr_assert_gt(wrong, 10, "the model should still make mistakes");
    cr_assert(tg_tape_grad_enabled(x.t), "grad mode restored");
    free_out(g, N_DEC);
    free_out(b, N_DEC);
    free_trained(&x);
}

Test(beam, k1_equals_greedy_lstm) { check_beam1_is_greedy("lstm"); }
Test(beam, k1_equals_greedy_gru) { check_beam1_is_greedy("gru"); }

/* A hypothesis cut at the longest output is scored by the tokens it has
 * (helper-45: by them and its best next token, which it does not contain).
 * With one token at most and no length normalisation, the best hypothesis
 * is then the likeliest first token or an immediate <eos>, as greedy's. */
Test(beam, a_hypothesis_cut_at_max_len_is_scored_by_its_own_tokens)
{
    trained x;
    make_trained(&x, "lstm", 40);
    int **g = alloc_out(N_DEC, 1), **b = alloc_out(N_DEC, 1), gl[N_DEC], bl[N_DEC];
    const int *const *src = (const int *const *)x.d.src;
    cr_assert_eq(s2s_greedy(x.t, &x.m, src, x.d.sl, N_DEC, 1, 64, g, gl), 0);
    for (int k = 2; k <= 8; k *= 2) {
        cr_assert_eq(s2s_beam(x.t, &x.m, src, x.d.sl, N_DEC, k, 1, 0.0, 64, b, bl), 0);
        int differ = 0;
        for (int i = 0; i < N_DEC; i++) differ += gl[i] != bl[i] || (gl[i] && g[i][0] != b[i][0]);
        cr_expect_eq(differ, 0, "beam %d at --max-len 1: %d of %d sentences differ from greedy", k,
                     differ, N_DEC);
    }
    free_out(g, N_DEC);
    free_out(b, N_DEC);
    free_trained(&x);
}

/* log p(y | x) of an output (with its <eos>) by teacher forcing. */
static double sequence_logp(s2s_model *m, tg_tape *t, const int *src, int sl, const int *y, int yl)
{
    s2s_batch b;
    tg_tape_reset(t);
    tg_tape_set_grad(t, 0);
    const int *ss[1] = {src}, *ys[1] = {y};
    s2s_batch_make(&b, t, &m->cfg, 1, ss, &sl, ys, &yl, 0, 0);
    double loss = s2s_loss(t, m, &b, NULL, NULL)->data[0];
    tg_tape_set_grad(t, 1);
    return -loss * (yl + 1);
}

/* Stepping the decoder one token at a time (as the decoders do) gives the
 * same log-probabilities as the teacher-forced training loss. */
Test(beam, decode_steps_match_teacher_forcing)
{
    trained x;
    make_trained(&x, "gru", 40);
    for (int i = 0; i < 20; i++) {
        const int *src = x.d.src[i], *y = x.d.tgt[i];
        int sl = x.d.sl[i], yl = x.d.tl[i];
        double want = sequence_logp(&x.m, x.t, src, sl, y, yl);
        s2s_batch b;
        tg_state st[TG_MAX_LAYERS], nx[TG_MAX_LAYERS];
        tg_tape_reset(x.t);
        tg_tape_set_grad(x.t, 0);
        s2s_batch_make(&b, x.t, &x.m.cfg, 1, &src, &sl, NULL, NULL, 0, 0);
        s2s_encode(x.t, &x.m, &b, st, NULL);
        tg_tensor *ctx = st[x.m.cfg.layers - 1].h;
        double got = 0;
        int prev = S2S_BOS;
        for (int k = 0; k <= yl; k++) {
            tg_tensor *logits = s2s_decode_step(x.t, &x.m, &prev, 1, st, ctx, nx);
            int target = k < yl ? y[k] : S2S_EOS, V = logits->cols;
            double mx = logits->data[0], sum = 0;
            for (int v = 1; v < V; v++) mx = fmax(mx, logits->data[v]);
            for (int v = 0; v < V; v++) sum += exp(logits->data[v] - mx);
            got += logits->data[target] - mx - log(sum);
            memcpy(st, nx, sizeof st);
            prev = target;
        }
        tg_tape_set_grad(x.t, 1);
        assert_close(got, want, 1e-4, "log p stepwise vs teacher forcing");
    }
    free_trained(&x);
}

/* With alpha = 0 beam search ranks by total log p (scored here again by
 * teacher forcing): its answers should beat greedy decoding's. Beam search
 * may prune the greedy path, so "never worse" is not a theorem; a model
 * trained this far has peaked enough for it to hold on nearly all
 * sentences (40 steps: worse on 14%, 200 steps: on none of these). */
Test(beam, wider_beam_scores_at_least_greedy)
{
    trained x;
    make_trained(&x, "lstm", 200);
    enum { ML = 14 };
    int **g = alloc_out(N_DEC, ML), **b = alloc_out(N_DEC, ML), gl[N_DEC], bl[N_DEC];
    const int *const *src = (const int *const *)x.d.src;
    cr_assert_eq(s2s_greedy(x.t, &x.m, src, x.d.sl, N_DEC, ML, 64, g, gl), 0);
    cr_assert_eq(s2s_beam(x.t, &x.m, src, x.d.sl, N_DEC, 4, ML, 0.0, 64, b, bl), 0);
    int better = 0, worse = 0, compared = 0;
    for (int i = 0; i < N_DEC; i++) {
        if (gl[i] == ML || bl[i] == ML) continue; /* unfinished */
        for (int k = 0; k < bl[i]; k++) cr_assert(b[i][k] >= S2S_N_SPECIAL, "special in output");
        double lg = sequence_logp(&x.m, x.t, src[i], x.d.sl[i], g[i], gl[i]);
        double lb = sequence_logp(&x.m, x.t, src[i], x.d.sl[i], b[i], bl[i]);
        worse += lb < lg - 1e-4;
        better += lb > lg + 1e-4;
        compared++;
    }
    cr_assert_gt(compared, N_DEC / 2);
    cr_assert_leq(worse * 50, compared, "beam worse than greedy on %d of %d", worse, compared);
    cr_assert_gt(better, 0, "beam search never found anything better than greedy");
    free_out(g, N_DEC);
    free_out(b, N_DEC);
    free_trained(&x);
}

/* An untrained model whose generator bias favours <bos> most, then <pad>,
 * then <unk>, far beyond what its weights add to a logit (|W h| <=
 * sqrt(HID) < 3, h from tanh): <bos> and <pad> are never outputs (an
 * undertrained model printed "<bos> <bos> ..."), so greedy decoding and
 * beam search give max_len <unk>s with <eos> least likely, and nothing once
 * <eos> is above <unk>: those two stay choosable. */
static void check_no_bos_pad(const char *cell, tg_attn_kind attn)
{
    enum { N = 2, ML = 5 };
    static const int beams[] = {0, 1, 4}; /* 0: s2s_greedy */
    s2s_model m;
    make_model_attn(&m, cell, 1, 1, 0, attn, 9);
    tg_real *bias = m.out.b->data;
    bias[S2S_BOS] = 60, bias[S2S_PAD] = 50, bias[S2S_UNK] = 10;
    const int *src[N] = {a_src, b_src};
    int sl[N] = {3, 6}, len[N], **out = alloc_out(N, ML);
    tg_tape *t = tg_tape_new(s2s_decode_arena_bytes(&m.cfg, N, 4, 6));
    for (int eos_wins = 0; eos_wins < 2; eos_wins++) {
        bias[S2S_EOS] = eos_wins ? 20 : -50;
        for (size_t d = 0; d < sizeof beams / sizeof *beams; d++) {
            int K = beams[d];
            cr_assert_eq(K ? s2s_beam(t, &m, src, sl, N, K, ML, 1.0, N, out, len)
                           : s2s_greedy(t, &m, src, sl, N, ML, N, out, len), 0);
            for (int i = 0; i < N; i++) {
                cr_assert_eq(len[i], eos_wins ? 0 : ML, "beam %d sentence %d: length %d", K, i,
                             len[i]);
                for (int k = 0; k < len[i]; k++)
                    cr_assert_eq(out[i][k], S2S_UNK, "beam %d sentence %d token %d: id %d "
                                 "(<pad> 0, <bos> 2)", K, i, k, out[i][k]);
            }
        }
    }
    free_out(out, N);
    tg_tape_free(t);
    s2s_model_free(&m);
}

Test(beam, never_outputs_bos_or_pad) { check_no_bos_pad("lstm", TG_ATTN_NONE); }
Test(beam, never_outputs_bos_or_pad_attention) { check_no_bos_pad("gru", TG_ATTN_GENERAL); }

/* s2s_translate decodes its sentences by source length (batches of like
 * lengths), yet each sentence's output lands in its own out[i] and out_len[i]
 * and is the one it gets decoded alone (batch 1, file order, one thread
 * against two), greedy and beam 3 and 5 (a batch drops its ended rows or
 * sentences), with and without attention. */
static void check_sorted_is_alone(const char *cell, tg_attn_kind kind)
{
    enum { N = 120, ML = 12 };
    trained x;
    make_trained_attn(&x, cell, 40, kind, 0);
    const int *const *src = (const int *const *)x.d.src;
    int lens_differ = 0;
    for (int i = 1; i < N; i++) lens_differ += x.d.sl[i] != x.d.sl[i - 1];
    cr_assert_gt(lens_differ, N / 4, "the data should mix source lengths");
    for (int beam = 1; beam <= 5; beam += 2) {
        int **got = alloc_out(N, ML), **want = alloc_out(N, ML), gl[N], wl[N];
        s2s_decode_options d;
        s2s_decode_options_default(&d);
        d.beam = beam, d.max_len = ML, d.len_alpha = 1.0, d.batch = 16;
        for (int i = 0; i < N; i++) gl[i] = -1;
        tg_tape_set_threads(x.t, 2); /* the selection and the softmax split the rows */
        cr_assert_eq(s2s_translate(x.t, &x.m, src, x.d.sl, N, &d, got, gl), 0);
        tg_tape_set_threads(x.t, 1);
        d.batch = 1;
        cr_assert_eq(s2s_translate(x.t, &x.m, src, x.d.sl, N, &d, want, wl), 0);
        for (int i = 0; i < N; i++) {
            cr_assert_eq(gl[i], wl[i], "beam %d sentence %d: length %d, alone %d", beam, i, gl[i],
                         wl[i]);
            for (int k = 0; k < wl[i]; k++)
                cr_assert_eq(got[i][k], want[i][k], "beam %d sentence %d token %d", beam, i, k);
        }
        free_out(got, N);
        free_out(want, N);
    }
    free_trained(&x);
}

/* s2s_decode_batch_size: at most opt->batch sentences and, with a token
 * budget, at most max_tokens source tokens padded to the batch's longest;
 * a sentence longer than the budget goes alone, and never none. */
Test(beam, batch_size_keeps_the_count_and_the_padded_tokens)
{
    s2s_decode_options d;
    s2s_decode_options_default(&d);
    d.batch = 4;
    const int lens[] = {3, 3, 5, 9, 2, 2, 2, 2, 2, 30, 1};
    cr_assert_eq(s2s_decode_batch_size(lens, 11, &d), 4, "no budget: the count");
    cr_assert_eq(s2s_decode_batch_size(lens, 3, &d), 3, "fewer left than a batch");
    d.max_tokens = 15;
    cr_assert_eq(s2s_decode_batch_size(lens, 11, &d), 3, "3 x 5 = 15 fits, 4 x 9 does not");
    cr_assert_eq(s2s_decode_batch_size(lens + 3, 8, &d), 1, "9, then 2 x 9 > 15");
    cr_assert_eq(s2s_decode_batch_size(lens + 4, 7, &d), 4, "4 x 2, the count again");
    cr_assert_eq(s2s_decode_batch_size(lens + 9, 2, &d), 1, "30 > 15 goes alone");
    cr_assert_eq(s2s_decode_batch_size(lens + 10, 1, &d), 1);
}

Test(beam, sorted_batches_equal_each_sentence_alone)
{
    check_sorted_is_alone("lstm", TG_ATTN_NONE);
}
Test(beam, sorted_batches_equal_each_sentence_alone_attention)
{
    check_sorted_is_alone("gru", TG_ATTN_GENERAL);
}

/* Logits that differ, bit for bit, between B sentences (pairs 0, 3, 6, ...;
 * B <= 64) encoded and decoded two steps together and each alone, on a
 * tape that holds its parameters' panels as decoding does; the hidden size
 * tiny_config's unless hidden > 0. *rows: the batch's padded source tokens
 * (B x its longest), its encoder's rows. */
static int logits_differing_alone(const char *cell, int layers, tg_attn_kind attn, int bidir,
                                  int feed, int hidden, int B, int *rows)
{
    trained x;
    tiny_corpus(&x.d, 800);
    s2s_config c = tiny_config(&x.d);
    c.cell = tg_cell_kind_by_name(cell);
    c.layers = layers;
    c.attention = attn;
    c.bidirectional = bidir;
    c.feed_context = feed;
    if (hidden > 0) c.hidden = hidden;
    cr_assert_eq(s2s_model_init(&x.m, &c, 3), 0);
    x.t = tg_tape_new((size_t)(hidden > 0 ? 256 : 64) << 20);
    cr_assert_not_null(x.t);
    cr_assert(B >= 1 && B <= 64 && 3 * (B - 1) < x.d.n);
    const int *src[64];
    int sl[64], y[2][64], bad = 0, L = layers, V = c.tgt_vocab, longest = 0;
    for (int i = 0; i < B; i++) {
        src[i] = x.d.src[i * 3];
        sl[i] = x.d.sl[i * 3];
        longest = sl[i] > longest ? sl[i] : longest;
        y[0][i] = 4 + i % (V - 4); /* a word each, two steps */
        y[1][i] = 4 + (i + 6) % (V - 4);
    }
    *rows = B * longest;
    tg_tape_set_grad(x.t, 0);
    cr_assert_eq(tg_tape_hold_param_panels(x.t, 1), 0);
    tg_tensor *all[2], *one[2];
    for (int i = -1; i < B; i++) { /* -1: the batch, then each alone */
        int n = i < 0 ? B : 1, at = i < 0 ? 0 : i;
        s2s_batch b;
        s2s_batch_make(&b, x.t, &c, n, src + at, sl + at, NULL, NULL, 0, 0);
        tg_state st[TG_MAX_LAYERS], nx[2][TG_MAX_LAYERS];
        tg_tensor **out = i < 0 ? all : one;
        if (attn == TG_ATTN_NONE) {
            s2s_encode(x.t, &x.m, &b, st, NULL);
            tg_tensor *ctx = feed ? st[L - 1].h : NULL;
            out[0] = s2s_decode_step(x.t, &x.m, y[0] + at, n, st, ctx, nx[0]);
            out[1] = s2s_decode_step(x.t, &x.m, y[1] + at, n, nx[0], ctx, nx[1]);
        } else {
            tg_tensor *vals = s2s_encode_memory(x.t, &x.m, &b, st, NULL);
            tg_attn_memory mem = tg_attn_memory_init(x.t, &x.m.adec.attn, vals, b.Ts, n, b.src_len);
            tg_attn_dec_state ds = tg_attn_decoder_start(x.t, &x.m.adec, n, st);
            for (int k = 0; k < 2; k++)
                out[k] = s2s_attn_decode_step(x.t, &x.m, y[k] + at, n, &mem, &ds, NULL);
        }
        for (int k = 0; i >= 0 && k < 2; k++)
            for (int v = 0; v < V; v++)
                bad += memcmp(&one[k]->data[v], &all[k]->data[(size_t)i * V + v],
                              sizeof(tg_real)) != 0;
    }
    tg_tape_hold_param_panels(x.t, 0);
    tg_tape_free(x.t);
    s2s_model_free(&x.m);
    free_tiny(&x.d);
    return bad;
}

/* Where the model's products run on the panels (s2s_decode_keeps_rows),
 * a sentence's logits are the same bits alone and in a batch, for every
 * cell, with and without attention: what lets --translate batch a pipe's
 * lines as they come. Two cases failed before session 23: the decoder fed
 * the encoder's state multiplied it by a column slice of W_ih made at every
 * step, and MGU multiplies by row views of W_hh, which were not
 * parameters: both on BLAS, whose bits for a row depend on its batch. */
Test(decode, a_row_gets_its_bits_alone_in_a_batch, .timeout = 120)
{
    static const struct {
        const char *cell;
        int layers;
        tg_attn_kind attn;
        int bidir, feed;
    } cases[] = {
        {"lstm", 1, TG_ATTN_NONE, 0, 1},    {"gru", 2, TG_ATTN_NONE, 0, 1},
        {"mgu", 1, TG_ATTN_NONE, 0, 1},     {"rnn", 1, TG_ATTN_NONE, 1, 0},
        {"peephole", 1, TG_ATTN_NONE, 0, 1}, {"lstm", 3, TG_ATTN_GENERAL, 1, 0},
        {"mgu", 1, TG_ATTN_DOT, 0, 0},      {"gru", 1, TG_ATTN_MLP, 1, 0},
    };
    trained probe;
    tiny_corpus(&probe.d, 800);
    s2s_config pc = tiny_config(&probe.d);
    cr_assert_eq(s2s_model_init(&probe.m, &pc, 3), 0);
    int kept = s2s_decode_keeps_rows(&probe.m);
    s2s_model_free(&probe.m);
    free_tiny(&probe.d);
    if (kept == 0)
        cr_skip_test("no panel kernel runs here (%s): BLAS's bits may differ", tg_panel_kernel());
    for (size_t k = 0; k < sizeof cases / sizeof cases[0]; k++) {
        int rows;
        int bad = logits_differing_alone(cases[k].cell, cases[k].layers, cases[k].attn,
                                         cases[k].bidir, cases[k].feed, 0, 7, &rows);
        cr_expect_eq(bad, 0, "%s, %d layers, attention %s%s%s: %d logits differ alone", cases[k].cell,
                     cases[k].layers, tg_attn_kind_name(cases[k].attn),
                     cases[k].bidir ? ", bidirectional" : "", cases[k].feed ? ", fed" : "", bad);
    }
}

/* The AVX2 kernel (forced where it runs) sends a training product of more
 * than 191 rows to OpenBLAS (tg_panels_max_rows); a decoding tape, which
 * holds its panels, runs every row count on them, so a batch whose encoder
 * products pass 191 rows (48 sentences) still gives each sentence its bits
 * alone. Until session 24 those products ran on OpenBLAS there, which
 * splits a long inner size (here the hidden size, 1024) into blocks, and
 * attention's logits differed alone and in the batch. */
Test(decode, a_row_keeps_its_bits_past_the_avx2_row_limit, .timeout = 120)
{
    char err[128];
    setenv("TG_ISA", "avx2", 1); /* this test's process: read at its first product */
    if (tg_panel_kernel_check(err, sizeof err) != 0) cr_skip_test("%s", err);
    cr_assert_str_eq(tg_panel_kernel(), "avx2");
    static const struct {
        const char *cell;
        tg_attn_kind attn;
        int feed;
    } cases[] = {{"lstm", TG_ATTN_NONE, 1}, {"gru", TG_ATTN_GENERAL, 0}};
    for (size_t k = 0; k < sizeof cases / sizeof cases[0]; k++) {
        int rows;
        int bad = logits_differing_alone(cases[k].cell, 1, cases[k].attn, 0, cases[k].feed, 1024,
                                         48, &rows);
        cr_assert_gt(rows, 191, "the batch must pass the AVX2 kernel's row limit");
        cr_expect_eq(bad, 0, "%s, attention %s, %d source rows: %d logits differ alone",
                     cases[k].cell, tg_attn_kind_name(cases[k].attn), rows, bad);
    }
}

/* ------------------------------------------------------------------ decoder projection */

/* The loss as the decoder was first written: every step's [E_tgt[y] | ctx]
 * row concatenated and projected by tg_rnn_forward as x. s2s_loss gives
 * tg_rnn_forward ids and ctx: it projects the embedding columns through the
 * embedding and ctx once per row: the same function, summed in another order. */
static tg_tensor *concat_loss(tg_tape *t, const s2s_model *m, const s2s_batch *b)
{
    tg_state fin[TG_MAX_LAYERS];
    s2s_encode(t, m, b, fin, NULL);
    int T = b->Tt, B = b->B;
    tg_tensor **rep = tg_tape_alloc(t, (size_t)T * sizeof *rep);
    for (int s = 0; s < T; s++) rep[s] = fin[m->cfg.layers - 1].h;
    tg_tensor *x = tg_concat(t, tg_embed_forward(t, &m->tgt_emb, b->dec_in, T * B),
                             tg_stack_rows(t, rep, T));
    tg_rnn_run dec_run = {.T = T, .B = B, .x = x, .init = fin};
    tg_tensor *h = tg_rnn_forward(t, &m->dec, &dec_run);
    return tg_softmax_xent(t, tg_linear_forward(t, &m->out, h), b->dec_out, 0);
}

static void check_split_projection(const char *cell, int layers, int B)
{
    tiny_data d;
    tiny_corpus(&d, 64);
    s2s_config c = tiny_config(&d);
    c.cell = tg_cell_kind_by_name(cell);
    c.layers = layers;
    s2s_model m;
    cr_assert_eq(s2s_model_init(&m, &c, 5), 0);
    tg_tape *t = tg_tape_new(s2s_arena_bytes(&c, B, 32, 32));
    size_t np = tg_params_numel(m.params);
    tg_real *want = malloc(np * sizeof *want);
    double loss[2];
    for (int v = 0; v < 2; v++) {
        s2s_batch b;
        tg_tape_reset(t);
        s2s_batch_make(&b, t, &c, B, (const int *const *)d.src, d.sl, (const int *const *)d.tgt,
                       d.tl, 0, 0);
        tg_tensor *l = v ? s2s_loss(t, &m, &b, NULL, NULL) : concat_loss(t, &m, &b);
        tg_params_zero_grad(m.params);
        tg_backward(t, l);
        loss[v] = l->data[0];
        if (v == 0) memcpy(want, tg_params_grad(m.params), np * sizeof *want);
    }
    assert_close(loss[1], loss[0], TOL, "loss, split vs concatenated projection");
    double worst = 0, scale = 0;
    for (size_t i = 0; i < np; i++) {
        worst = fmax(worst, fabs((double)tg_params_grad(m.params)[i] - (double)want[i]));
        scale = fmax(scale, fabs((double)want[i]));
    }
    cr_assert_gt(scale, 0);
    cr_assert_leq(worst, TOL * scale, "%s B=%d: gradients differ by %.3g (largest %.3g)", cell, B,
                  worst, scale);
    free(want);
    tg_tape_free(t);
    s2s_model_free(&m);
    free_tiny(&d);
}

/* B = 32: ids repeat (padding, <bos>, frequent words); B = 1: one sentence. */
Test(decoder, split_projection_equals_concatenated_lstm) { check_split_projection("lstm", 2, 32); }
Test(decoder, split_projection_equals_concatenated_gru) { check_split_projection("gru", 1, 32); }
Test(decoder, split_projection_equals_concatenated_one_row) { check_split_projection("lstm", 1, 1); }

Test(train, loss_falls_and_model_round_trips)
{
    tiny_data d;
    tiny_corpus(&d, 800);
    s2s_config c = tiny_config(&d);
    s2s_model m;
    cr_assert_eq(s2s_model_init(&m, &c, 3), 0);
    tg_optim_config oc = tg_optim_defaults(TG_OPTIM_ADAM);
    oc.lr = 1e-2;
    char err[512];
    tg_optim *opt = tg_optim_new(&oc, tg_params_numel(m.params), err, sizeof err);
    cr_assert_not_null(opt, "%s", err);
    tg_tape *t = tg_tape_new(s2s_arena_bytes(&c, 32, 12, 16));
    double first, last;
    train_steps(&m, opt, t, &d, 120, 32, &first, &last);
    cr_assert_lt(last, 0.5 * first, "loss %.3f -> %.3f", first, last);
    cr_assert_lt(last, 1.5, "loss %.3f -> %.3f", first, last);

    /* save, load: same shape, vocabularies, values and translations */
    char path[128];
    snprintf(path, sizeof path, "/tmp/s2s_model_test_%ld.safetensors", (long)getpid());
    s2s_tokenize_options tok = {1, 1}, tok2 = {0, 0};
    cr_assert_eq(s2s_save(path, &m, opt, &d.vs, &d.vt, &tok, err, sizeof err), 0, "%s", err);
    s2s_model m2;
    s2s_vocab vs2, vt2;
    cr_assert_eq(s2s_load(path, &m2, &vs2, &vt2, &tok2, err, sizeof err), 0, "%s", err);
    cr_assert_eq(tok2.lowercase, 1);
    cr_assert_eq(tok2.split_punct, 1);
    cr_assert_eq(m2.cfg.hidden, c.hidden);
    cr_assert_eq(m2.cfg.feed_context, 1);
    cr_assert_eq(m2.cfg.cell, &tg_cell_lstm);
    cr_assert_eq(vt2.n, d.vt.n);
    for (int i = 0; i < vt2.n; i++) cr_assert_str_eq(vt2.words[i], d.vt.words[i]);
    size_t np = tg_params_numel(m.params);
    cr_assert_eq(tg_params_numel(m2.params), np);
    cr_assert_eq(memcmp(tg_params_data(m.params), tg_params_data(m2.params), np * sizeof(tg_real)),
                 0);
    tg_optim *opt2 = tg_optim_new(&oc, np, err, sizeof err);
    cr_assert_eq(s2s_load_optim(path, opt2, err, sizeof err), 0, "%s", err);
    cr_assert_eq(tg_optim_steps(opt2), 120);

    /* a file that is not a checkpoint is refused with its name */
    FILE *f = fopen(path, "wb");
    fputs("not a checkpoint", f);
    fclose(f);
    s2s_model m3;
    s2s_vocab vs3, vt3;
    cr_assert_eq(s2s_load(path, &m3, &vs3, &vt3, &tok2, err, sizeof err), -1);
    cr_assert(strstr(err, path) != NULL, "%s", err);
    remove(path);

    tg_optim_free(opt2);
    s2s_model_free(&m2);
    s2s_vocab_free(&vs2);
    s2s_vocab_free(&vt2);
    tg_optim_free(opt);
    tg_tape_free(t);
    s2s_model_free(&m);
    free_tiny(&d);
}

/* With attention: one sentence stepped through the attention decoder gives
 * the teacher-forced log p of its reference, and greedy decoding of a batch
 * of unequal lengths (s2s_greedy: memory kept on the heap, padding masked)
 * picks the stepwise argmax (of the ids it may output) of each sentence
 * decoded alone. */
static void check_attention_steps(const char *cell, tg_attn_kind kind, int bidir)
{
    trained x;
    make_trained_attn(&x, cell, 40, kind, bidir);
    enum { N = 20, MAXL = 20 };
    int **out = alloc_out(N, MAXL), out_len[N];
    cr_assert_eq(s2s_greedy(x.t, &x.m, (const int *const *)x.d.src, x.d.sl, N, MAXL, N, out,
                            out_len), 0);
    for (int i = 0; i < N; i++) {
        const int *src = x.d.src[i], *y = x.d.tgt[i];
        int sl = x.d.sl[i], yl = x.d.tl[i];
        double want = sequence_logp(&x.m, x.t, src, sl, y, yl), got = 0;
        int greedy[MAXL], gl = 0, gdone = 0;
        for (int pass = 0; pass < 2; pass++) { /* 0: the reference, 1: greedy */
            s2s_batch b;
            tg_state init[TG_MAX_LAYERS];
            tg_tape_reset(x.t);
            tg_tape_set_grad(x.t, 0);
            s2s_batch_make(&b, x.t, &x.m.cfg, 1, &src, &sl, NULL, NULL, 0, 0);
            tg_tensor *values = s2s_encode_memory(x.t, &x.m, &b, init, NULL);
            tg_attn_memory mem = tg_attn_memory_init(x.t, &x.m.adec.attn, values, b.Ts, 1, b.src_len);
            tg_attn_dec_state ds = tg_attn_decoder_start(x.t, &x.m.adec, 1, init);
            int prev = S2S_BOS;
            for (int k = 0; pass == 0 ? k <= yl : (k < MAXL && !gdone); k++) {
                tg_tensor *logits = s2s_attn_decode_step(x.t, &x.m, &prev, 1, &mem, &ds, NULL);
                int V = logits->cols, best = S2S_UNK; /* never <pad> or <bos> (decode.c) */
                for (int v = S2S_UNK + 1; v < V; v++)
                    if (v != S2S_BOS && logits->data[v] > logits->data[best]) best = v;
                if (pass == 1) {
                    if (best == S2S_EOS) gdone = 1;
                    else greedy[gl++] = prev = best;
                    continue;
                }
                int target = k < yl ? y[k] : S2S_EOS;
                double mx = logits->data[0], sum = 0;
                for (int v = 1; v < V; v++) mx = fmax(mx, logits->data[v]);
                for (int v = 0; v < V; v++) sum += exp(logits->data[v] - mx);
                got += logits->data[target] - mx - log(sum);
                prev = target;
            }
        }
        tg_tape_set_grad(x.t, 1);
        assert_close(got, want, 1e-4, "attention: log p stepwise vs teacher forcing");
        cr_assert_eq(out_len[i], gl, "sentence %d: greedy length %d, stepwise %d", i, out_len[i], gl);
        for (int k = 0; k < gl; k++) cr_assert_eq(out[i][k], greedy[k], "sentence %d token %d", i, k);
    }
    free_out(out, N);
    free_trained(&x);
}

Test(attention, steps_match_teacher_forcing_general) { check_attention_steps("lstm", TG_ATTN_GENERAL, 0); }
Test(attention, steps_match_teacher_forcing_mlp_bidir) { check_attention_steps("gru", TG_ATTN_MLP, 1); }
Test(attention, steps_match_teacher_forcing_dot_mgu) { check_attention_steps("mgu", TG_ATTN_DOT, 1); }

/* s2s_greedy_weights (--attention-map): the same outputs as s2s_greedy over
 * padded multi-chunk batches, one row per output token (+ the <eos> step),
 * rows that sum to 1 over the sentence's own tokens, equal to the weights
 * of the sentence decoded alone step by step (in source order, also when
 * the model reads the source backwards). */
static void check_greedy_weights(const char *cell, tg_attn_kind kind, int bidir, int reverse)
{
    trained x;
    make_trained_attn(&x, cell, 30, kind, bidir);
    x.m.cfg.reverse_source = reverse; /* only the batch's order changes */
    enum { N = 12, MAXL = 16, BATCH = 5 };
    int **out = alloc_out(N, MAXL), **ref = alloc_out(N, MAXL), out_len[N], ref_len[N], rows[N];
    tg_real *w[N];
    for (int i = 0; i < N; i++) w[i] = malloc((size_t)MAXL * (size_t)x.d.sl[i] * sizeof **w);
    const int *const *src = (const int *const *)x.d.src;
    cr_assert_eq(s2s_greedy(x.t, &x.m, src, x.d.sl, N, MAXL, BATCH, ref, ref_len), 0);
    cr_assert_eq(s2s_greedy_weights(x.t, &x.m, src, x.d.sl, N, MAXL, BATCH, out, out_len, w,
                                    rows), 0);
    for (int i = 0; i < N; i++) {
        int S = x.d.sl[i];
        cr_assert_eq(out_len[i], ref_len[i], "sentence %d: length %d, greedy %d", i, out_len[i],
                     ref_len[i]);
        for (int k = 0; k < out_len[i]; k++) cr_assert_eq(out[i][k], ref[i][k]);
        cr_assert_eq(rows[i], out_len[i] < MAXL ? out_len[i] + 1 : MAXL, "sentence %d rows", i);
        /* the sentence alone, step by step, fed the greedy tokens */
        s2s_batch b;
        tg_state init[TG_MAX_LAYERS];
        tg_tape_reset(x.t);
        tg_tape_set_grad(x.t, 0);
        s2s_batch_make(&b, x.t, &x.m.cfg, 1, &src[i], &S, NULL, NULL, 0, 0);
        tg_tensor *values = s2s_encode_memory(x.t, &x.m, &b, init, NULL);
        tg_attn_memory mem = tg_attn_memory_init(x.t, &x.m.adec.attn, values, b.Ts, 1, b.src_len);
        tg_attn_dec_state ds = tg_attn_decoder_start(x.t, &x.m.adec, 1, init);
        int prev = S2S_BOS;
        for (int k = 0; k < rows[i]; k++) {
            tg_tensor *a = NULL;
            s2s_attn_decode_step(x.t, &x.m, &prev, 1, &mem, &ds, &a);
            cr_assert_not_null(a);
            double sum = 0;
            for (int s = 0; s < S; s++) {
                double got = w[i][(size_t)k * S + s], want = a->data[reverse ? S - 1 - s : s];
                assert_close(got, want, 1e-4, "weight: batched vs alone");
                sum += got;
            }
            assert_close(sum, 1.0, 1e-4, "a row of weights sums to 1");
            if (k < out_len[i]) prev = out[i][k];
        }
        tg_tape_set_grad(x.t, 1);
    }
    for (int i = 0; i < N; i++) free(w[i]);
    free_out(out, N);
    free_out(ref, N);
    free_trained(&x);
}

Test(attention, greedy_weights_general) { check_greedy_weights("lstm", TG_ATTN_GENERAL, 0, 0); }
Test(attention, greedy_weights_mlp_bidir_reversed) { check_greedy_weights("gru", TG_ATTN_MLP, 1, 1); }
Test(attention, greedy_weights_dot_reversed) { check_greedy_weights("mgu", TG_ATTN_DOT, 1, 1); }
