/* Attention, the input-feeding decoder and the bidirectional encoder
 * (layers/tg_attention.h): finite differences on small whole models (every
 * score kind, built-in and user-written cells, one and two layers, with and
 * without the bidirectional encoder), the padding mask, all-masked rows, the
 * hoisted decoder against its step function, and the encoder's reversal. */
#include <criterion/criterion.h>
#include <math.h>
#include <string.h>

#include "layer_util.h"

enum { S = 4, B = 3, T = 3, I = 3, E = 3, H = 4, V = 5 };

static const int dec_ids[T * B] = {1, 0, 4, 2, 2, 3, 0, 4, 1};

typedef struct model {
    tg_params *p;
    int bidir;
    tg_bienc enc2;         /* bidir */
    tg_rnn_stack enc1;     /* else */
    tg_attn_decoder dec;
    tg_embed tgt;
    const int *lengths;
} model;

static void model_init(model *m, const char *cell, tg_attn_kind kind, int layers, int bidir,
                       const int *lengths)
{
    const tg_cell_kind *k = tg_cell_kind_by_name(cell);
    cr_assert_not_null(k, "no cell %s", cell);
    tg_rng r;
    tg_rng_seed(&r, 11);
    memset(m, 0, sizeof *m);
    m->p = tg_params_new();
    m->bidir = bidir;
    m->lengths = lengths;
    if (bidir)
        cr_assert_eq(tg_bienc_init(&m->enc2, m->p, "enc", k, I, H / 2, layers, 0.0, H, &r), 0);
    else
        cr_assert_eq(tg_rnn_stack_init(&m->enc1, m->p, "enc", k, I, H, layers, 0.0, &r), 0);
    cr_assert_eq(tg_embed_init(&m->tgt, m->p, "tgt", V, E, &r), 0);
    cr_assert_eq(tg_attn_decoder_init(&m->dec, m->p, "dec", k, kind, E, H, layers, H, 0.0, &r), 0);
}

/* The decoder's T*B x H outputs for source X (S*B x I). */
static tg_tensor *model_forward(tg_tape *t, const model *m, tg_tensor *X, tg_tensor **weights)
{
    tg_state init[TG_MAX_LAYERS];
    tg_rnn_run run = {.T = S, .B = B, .x = X, .lengths = m->lengths, .final = init};
    tg_tensor *mem = m->bidir ? tg_bienc_forward(t, &m->enc2, X, S, B, m->lengths, init, NULL)
                              : tg_rnn_forward(t, &m->enc1, &run);
    tg_attn_memory am = tg_attn_memory_init(t, &m->dec.attn, mem, S, B, m->lengths);
    return tg_attn_decoder_forward(t, &m->dec, &m->tgt, dec_ids, T, B, &am, init, weights, NULL);
}

static tg_tensor *build_model(tg_tape *t, tg_tensor **in, void *ctx)
{
    const model *m = ctx;
    return model_forward(t, m, in[tg_params_count(m->p)], NULL);
}

static const int ragged[B] = {4, 1, 3};

static void check_model(const char *cell, tg_attn_kind kind, int layers, int bidir)
{
    model m;
    model_init(&m, cell, kind, layers, bidir, ragged);
    size_t np = tg_params_count(m.p);
    tg_tensor *in[64];
    cr_assert(np + 1 <= 64);
    for (size_t i = 0; i < np; i++) in[i] = tg_params_at(m.p, i);
    tg_rng r;
    tg_rng_seed(&r, 5);
    tg_tensor *X = tg_tensor_alloc(S * B, I, 1);
    fill_normal(X, &r, 1.0);
    in[np] = X;
    tg_tape *t = tg_tape_new(16u << 20);
    tg_gradcheck_result res = tg_gradcheck(t, build_model, &m, in, (int)np + 1, GC_EPS, 3);
    size_t expect = tg_params_numel(m.p) + tg_numel(X);
    const char *what = tg_attn_kind_name(kind);
    cr_expect_eq(res.checked, expect, "%s/%s: checked %zu of %zu", cell, what, res.checked, expect);
    cr_log_info("%s %s layers=%d bidir=%d: max_rel_err %.3g over %zu", cell, what, layers, bidir,
                res.max_rel_err, res.checked);
    cr_expect(res.max_rel_err < GC_TOL, "%s %s layers=%d bidir=%d: max_rel_err %.3g (input %d, %zu)",
              cell, what, layers, bidir, res.max_rel_err, res.worst_input, res.worst_index);
    tg_tape_free(t);
    tg_tensor_free(X);
    tg_params_free(m.p);
}

Test(attention_grad, dot_bidir_lstm) { check_model("lstm", TG_ATTN_DOT, 1, 1); }
Test(attention_grad, general_bidir_lstm) { check_model("lstm", TG_ATTN_GENERAL, 1, 1); }
Test(attention_grad, mlp_bidir_lstm) { check_model("lstm", TG_ATTN_MLP, 1, 1); }
Test(attention_grad, general_gru_2_layers) { check_model("gru", TG_ATTN_GENERAL, 2, 0); }
Test(attention_grad, mlp_rnn_2_layers_bidir) { check_model("rnn", TG_ATTN_MLP, 2, 1); }
Test(attention_grad, general_mgu_bidir) { check_model("mgu", TG_ATTN_GENERAL, 1, 1); }
Test(attention_grad, dot_mgu_2_layers) { check_model("mgu", TG_ATTN_DOT, 2, 0); }
Test(attention_grad, mlp_peephole_2_layers_bidir) { check_model("peephole", TG_ATTN_MLP, 2, 1); }
Test(attention_grad, general_peephole) { check_model("peephole", TG_ATTN_GENERAL, 1, 0); }

/* ------------------------------------------------------------ the mask */

typedef struct dec_fixture {
    tg_params *p;
    tg_attn_decoder dec;
    tg_embed tgt;
} dec_fixture;

static void dec_init(dec_fixture *f, const char *cell, tg_attn_kind kind, int layers, int mem)
{
    tg_rng r;
    tg_rng_seed(&r, 21);
    f->p = tg_params_new();
    cr_assert_eq(tg_embed_init(&f->tgt, f->p, "tgt", V, E, &r), 0);
    cr_assert_eq(tg_attn_decoder_init(&f->dec, f->p, "dec", tg_cell_kind_by_name(cell), kind, E,
                                      H, layers, mem, 0.0, &r), 0);
}

/* Decoder outputs over memory values (S*B x M) with lengths; the memory's
 * gradient of sum(outputs) into grad (may be NULL). */
static void run_decoder(const dec_fixture *f, const tg_real *values, int M, const int *lengths,
                        tg_real *out, tg_real *grad, tg_real *weights0)
{
    tg_tape *t = tg_tape_new(8u << 20);
    tg_tensor *mem = tg_tensor_new(t, S * B, M, 1);
    memcpy(mem->data, values, sizeof(tg_real) * S * B * M);
    tg_attn_memory am = tg_attn_memory_init(t, &f->dec.attn, mem, S, B, lengths);
    tg_tensor *w[T];
    tg_tensor *y = tg_attn_decoder_forward(t, &f->dec, &f->tgt, dec_ids, T, B, &am, NULL, w, NULL);
    memcpy(out, y->data, sizeof(tg_real) * T * B * H);
    if (weights0) memcpy(weights0, w[0]->data, sizeof(tg_real) * B * S);
    tg_backward(t, tg_sum(t, y));
    if (grad) memcpy(grad, mem->grad, sizeof(tg_real) * S * B * M);
    tg_tape_free(t);
}

static void check_mask(tg_attn_kind kind)
{
    enum { M = H };
    static const int lengths[B] = {4, 2, 1};
    dec_fixture f;
    dec_init(&f, "lstm", kind, 1, M);
    tg_rng r;
    tg_rng_seed(&r, 4);
    tg_real values[S * B * M], before[T * B * H], after[T * B * H], grad[S * B * M];
    for (int i = 0; i < S * B * M; i++) values[i] = (tg_real)tg_rng_normal(&r);
    run_decoder(&f, values, M, lengths, before, grad, NULL);
    for (int b = 0; b < B; b++)
        for (int s = 0; s < S; s++)
            for (int j = 0; j < M; j++) {
                tg_real g = grad[(s * B + b) * M + j];
                if (s >= lengths[b])
                    cr_expect(g == 0, "%s: padded (s=%d, b=%d) got gradient %g",
                              tg_attn_kind_name(kind), s, b, (double)g);
                if (s >= lengths[b]) values[(s * B + b) * M + j] += (tg_real)(3 + j);
            }
    run_decoder(&f, values, M, lengths, after, NULL, NULL);
    cr_expect(memcmp(before, after, sizeof before) == 0,
              "%s: changing padded memory changed the outputs", tg_attn_kind_name(kind));
    /* ... while a kept position does change them (the comparison can fail) */
    values[(1 * B + 0) * M] += 1; /* s=1 of example 0 (length 4) */
    run_decoder(&f, values, M, lengths, after, NULL, NULL);
    cr_expect(max_abs_diff(before, after, T * B * H) > 1e-4, "%s: kept memory changed nothing",
              tg_attn_kind_name(kind));
    tg_params_free(f.p);
}

Test(attention_mask, dot) { check_mask(TG_ATTN_DOT); }
Test(attention_mask, general) { check_mask(TG_ATTN_GENERAL); }
Test(attention_mask, mlp) { check_mask(TG_ATTN_MLP); }

/* An example with an empty source: zero weights, zero context, finite
 * outputs and gradients; the other rows' weights sum to 1. */
static void check_all_masked(tg_attn_kind kind)
{
    enum { M = H };
    static const int lengths[B] = {0, 3, 0};
    dec_fixture f;
    dec_init(&f, "gru", kind, 1, M);
    tg_rng r;
    tg_rng_seed(&r, 6);
    tg_real values[S * B * M], out[T * B * H], grad[S * B * M], w[B * S];
    for (int i = 0; i < S * B * M; i++) values[i] = (tg_real)tg_rng_normal(&r);
    run_decoder(&f, values, M, lengths, out, grad, w);
    for (int i = 0; i < T * B * H; i++) cr_assert(isfinite((double)out[i]), "output %d", i);
    for (int i = 0; i < S * B * M; i++) cr_assert(isfinite((double)grad[i]), "gradient %d", i);
    for (int b = 0; b < B; b++) {
        double sum = 0;
        for (int s = 0; s < S; s++) sum += (double)w[b * S + s];
        cr_expect(fabs(sum - (lengths[b] ? 1.0 : 0.0)) < 1e-5, "%s: row %d weights sum to %g",
                  tg_attn_kind_name(kind), b, sum);
    }
    for (int i = 0; i < S * B * M; i++)
        if (i / M % B != 1) cr_expect(grad[i] == 0, "masked memory got a gradient");
    tg_params_free(f.p);
}

Test(attention_mask, all_masked_dot) { check_all_masked(TG_ATTN_DOT); }
Test(attention_mask, all_masked_general) { check_all_masked(TG_ATTN_GENERAL); }
Test(attention_mask, all_masked_mlp) { check_all_masked(TG_ATTN_MLP); }

/* ------------------------------------------------------------ decoder paths */

/* The hoisted teacher-forced run equals tg_attn_decoder_step, step by step
 * (what greedy and beam search call). */
static void check_forward_vs_steps(const char *cell, tg_attn_kind kind, int layers, int M)
{
    dec_fixture f;
    dec_init(&f, cell, kind, layers, M);
    static const int lengths[B] = {4, 2, 3};
    tg_rng r;
    tg_rng_seed(&r, 8);
    tg_tape *t = tg_tape_new(8u << 20);
    tg_tensor *mem = tg_tensor_new(t, S * B, M, 0);
    fill_normal(mem, &r, 1.0);
    tg_state init[TG_MAX_LAYERS];
    for (int l = 0; l < layers; l++) {
        init[l] = tg_state_zeros(t, f.dec.rnn.kind, B, H);
        fill_normal(init[l].h, &r, 0.5);
        if (init[l].c) fill_normal(init[l].c, &r, 0.5);
    }
    tg_attn_memory am = tg_attn_memory_init(t, &f.dec.attn, mem, S, B, lengths);
    tg_tensor *y = tg_attn_decoder_forward(t, &f.dec, &f.tgt, dec_ids, T, B, &am, init, NULL, NULL);
    tg_attn_dec_state s = tg_attn_decoder_start(t, &f.dec, B, init);
    for (int step = 0; step < T; step++) {
        tg_tensor *x = tg_embed_forward(t, &f.tgt, dec_ids + step * B, B);
        tg_tensor *o = tg_attn_decoder_step(t, &f.dec, &am, x, &s, NULL, NULL);
        double d = max_abs_diff(o->data, y->data + step * B * H, B * H);
        cr_expect(d <= 20 * EQ_TOL, "%s %s: step %d differs by %g", cell, tg_attn_kind_name(kind),
                  step, d);
    }
    tg_tape_free(t);
    tg_params_free(f.p);
}

Test(attention_decoder, forward_equals_steps_lstm) { check_forward_vs_steps("lstm", TG_ATTN_GENERAL, 2, 5); }
Test(attention_decoder, forward_equals_steps_gru) { check_forward_vs_steps("gru", TG_ATTN_MLP, 1, 6); }
Test(attention_decoder, forward_equals_steps_mgu) { check_forward_vs_steps("mgu", TG_ATTN_DOT, 2, H); }
Test(attention_decoder, forward_equals_steps_peephole) { check_forward_vs_steps("peephole", TG_ATTN_GENERAL, 1, 3); }

Test(attention_decoder, names)
{
    dec_fixture f;
    dec_init(&f, "lstm", TG_ATTN_MLP, 1, 6);
    const char *names[] = {"dec.attn.linear_context.weight", "dec.attn.linear_query.weight",
                           "dec.attn.linear_query.bias", "dec.attn.v.weight",
                           "dec.attn.linear_out.weight", "dec.attn.linear_out.bias",
                           "dec.l0.weight_ih"};
    for (int i = 0; i < 7; i++) cr_expect_not_null(tg_params_find(f.p, names[i]), "%s", names[i]);
    cr_expect_eq(tg_params_find(f.p, "dec.l0.weight_ih")->cols, E + H);
    cr_expect_eq(tg_params_find(f.p, "dec.attn.linear_out.weight")->cols, 6 + H);
    tg_params_free(f.p);
    dec_init(&f, "lstm", TG_ATTN_GENERAL, 1, 6);
    cr_expect_not_null(tg_params_find(f.p, "dec.attn.linear_in.weight"));
    cr_expect_null(tg_params_find(f.p, "dec.attn.linear_out.bias"));
    tg_params_free(f.p);
    tg_attn_kind k;
    cr_expect(tg_attn_kind_by_name("mlp", &k) == 0 && k == TG_ATTN_MLP);
    cr_expect(tg_attn_kind_by_name("none", &k) == 0 && k == TG_ATTN_NONE);
    cr_expect(tg_attn_kind_by_name("luong", &k) == -1);
    cr_expect_str_eq(tg_attn_kind_names(), "none,dot,general,mlp");
}

/* ------------------------------------------------------------ bidirectional encoder */

/* The backward half of memory row (s, b) is the backward stack run on
 * example b alone, reversed within its length; the forward half the forward
 * stack on it. The ids path equals the tensor path. */
Test(attention_bienc, reversal_within_length)
{
    static const int lengths[B] = {4, 2, 0};
    static const int src[S * B] = {1, 2, 3, 4, 0, 1, 2, 3, 3, 0, 4, 4};
    tg_rng r;
    tg_rng_seed(&r, 9);
    tg_params *p = tg_params_new();
    tg_bienc e;
    tg_embed emb;
    cr_assert_eq(tg_embed_init(&emb, p, "src", V, I, &r), 0);
    cr_assert_eq(tg_bienc_init(&e, p, "enc", &tg_cell_lstm, I, 3, 2, 0.0, H, &r), 0);
    tg_tape *t = tg_tape_new(8u << 20);
    tg_state init[2], init_ids[2];
    tg_tensor *X = tg_embed_forward(t, &emb, src, S * B);
    tg_tensor *mem = tg_bienc_forward(t, &e, X, S, B, lengths, init, NULL);
    tg_tensor *mem_ids = tg_bienc_forward_ids(t, &e, &emb, src, S, B, lengths, init_ids, NULL);
    cr_assert(mem->rows == S * B && mem->cols == 6);
    cr_expect(max_abs_diff(mem->data, mem_ids->data, tg_numel(mem)) <= EQ_TOL);
    cr_expect(init[1].h->rows == B && init[1].h->cols == H && init[1].c != NULL);
    cr_expect(max_abs_diff(init[1].c->data, init_ids[1].c->data, B * H) <= EQ_TOL);
    for (int b = 0; b < B; b++) {
        int L = lengths[b];
        if (L == 0) continue;
        int fwd_ids[S], rev_ids[S];
        for (int s = 0; s < L; s++) fwd_ids[s] = src[s * B + b], rev_ids[s] = src[(L - 1 - s) * B + b];
        tg_state ff[2], fb[2];
        tg_rnn_run rf = {.T = L, .B = 1, .x = tg_embed_forward(t, &emb, fwd_ids, L), .final = ff};
        tg_rnn_run rb = {.T = L, .B = 1, .x = tg_embed_forward(t, &emb, rev_ids, L), .final = fb};
        tg_tensor *f1 = tg_rnn_forward(t, &e.fwd, &rf);
        tg_tensor *b1 = tg_rnn_forward(t, &e.bwd, &rb);
        for (int s = 0; s < L; s++) {
            const tg_real *row = mem->data + (size_t)(s * B + b) * 6;
            cr_expect(max_abs_diff(row, f1->data + s * 3, 3) <= EQ_TOL, "fwd b=%d s=%d", b, s);
            cr_expect(max_abs_diff(row + 3, b1->data + (L - 1 - s) * 3, 3) <= EQ_TOL,
                      "bwd b=%d s=%d", b, s);
        }
        /* the bridge sees each direction's own final state */
        tg_tensor *cat = tg_concat(t, ff[1].h, fb[1].h);
        tg_tensor *h = tg_tanh(t, tg_linear_forward(t, &e.bridge_h[1], cat));
        cr_expect(max_abs_diff(h->data, init[1].h->data + b * H, H) <= EQ_TOL, "bridge b=%d", b);
    }
    tg_tape_free(t);
    tg_params_free(p);
}
