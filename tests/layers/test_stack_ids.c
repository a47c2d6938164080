/* tg_rnn_forward fed by token ids through an embedding (.emb, .ids) against
 * the composition it replaces, tg_embed_forward + tg_rnn_forward over .x:
 * same loss, final states and gradients of every parameter (embedding table
 * included), for every built-in cell, on each of the three ways layer 0 can
 * project: the whole table (every id occurs), the distinct ids' rows (some
 * repeat), the embedded rows (all distinct); over ragged lengths and given
 * initial states. Then central finite differences through the ids path, and
 * the run in two halves (tg_rnn_project, then tg_rnn_forward given xp)
 * against one tg_rnn_forward. */
#include <criterion/criterion.h>
#include <signal.h>
#include <string.h>

#include "layer_util.h"

enum { T = 5, B = 3, E = 4, H = 5, L = 2, N = T * B };

/* Token patterns, one for each way layer 0 projects. */
typedef enum pattern { ALL_OF_TABLE, REPEATS, ALL_DISTINCT } pattern;
static const char *const pattern_name[] = {"whole table", "distinct rows", "embedded rows"};

static int pattern_vocab(pattern p) { return p == ALL_OF_TABLE ? 6 : 40; }

static void pattern_ids(pattern p, int *ids)
{
    for (int i = 0; i < N; i++)
        ids[i] = p == ALL_OF_TABLE ? (5 * i + 2) % 6 /* 6 | 15 rows: each id occurs */
               : p == REPEATS      ? 3 * (i % 4) + 1 /* 4 ids of 40 */
                                   : (7 * i + 3) % 40; /* 15 distinct ids of 40 */
}

typedef struct ids_run {
    double loss;
    tg_real h[L][B * H], c[L][B * H];
    tg_params *p;
} ids_run;

static const int lengths[B] = {5, 3, 1};

/* A 2-layer stack of kind over ids through an embedding of vocab rows, with
 * random initial states; via the ids path or the composed one. */
static void run_ids(const tg_cell_kind *kind, pattern pat, int via_ids, ids_run *out)
{
    int vocab = pattern_vocab(pat);
    tg_rng r;
    tg_rng_seed(&r, 7); /* both paths: identical weights, ids and states */
    out->p = tg_params_new();
    tg_embed emb;
    tg_rnn_stack st;
    cr_assert_eq(tg_embed_init(&emb, out->p, "emb", vocab, E, &r), 0);
    cr_assert_eq(tg_rnn_stack_init(&st, out->p, "rnn", kind, E, H, L, 0.0, &r), 0);
    int ids[N], targets[N];
    pattern_ids(pat, ids);
    for (int i = 0; i < N; i++) targets[i] = (int)tg_rng_below(&r, H);
    tg_tape *t = tg_tape_new(1 << 22);
    tg_state init[L], fin[L];
    for (int l = 0; l < L; l++) {
        init[l] = tg_state_zeros(t, kind, B, H);
        fill_normal(init[l].h, &r, 0.5);
        if (init[l].c) fill_normal(init[l].c, &r, 0.5);
    }
    tg_tensor *y = via_ids ? stack_ids(t, &st, &emb, ids, T, B, init, lengths, fin,
                                                      NULL)
                           : stack_x(t, &st, tg_embed_forward(t, &emb, ids, T * B),
                                                  T, B, init, lengths, fin, NULL);
    tg_tensor *loss = tg_softmax_xent(t, y, targets, -1);
    tg_backward(t, loss);
    out->loss = loss->data[0];
    for (int l = 0; l < L; l++) {
        memcpy(out->h[l], fin[l].h->data, sizeof out->h[l]);
        if (fin[l].c) memcpy(out->c[l], fin[l].c->data, sizeof out->c[l]);
    }
    tg_tape_free(t);
}

/* Largest |a - b| over the gradients, relative to the largest |b|. */
static double grad_rel_diff(tg_params *a, tg_params *b)
{
    size_t n = tg_params_numel(b);
    double scale = 0;
    for (size_t i = 0; i < n; i++) scale = fmax(scale, fabs((double)tg_params_grad(b)[i]));
    cr_assert_gt(scale, 0, "gradients must not be all zero");
    return max_abs_diff(tg_params_grad(a), tg_params_grad(b), n) / scale;
}

static void compare_paths(const char *name, pattern pat)
{
    const tg_cell_kind *kind = tg_cell_kind_by_name(name);
    ids_run a, b;
    memset(&a, 0, sizeof a);
    memset(&b, 0, sizeof b);
    run_ids(kind, pat, 1, &a);
    run_ids(kind, pat, 0, &b);
    const char *how = pattern_name[pat];
    /* the same function, summed in another order: rounding only */
    double tol = EQ_TOL * 10;
    cr_expect_leq(fabs(a.loss - b.loss), tol * fmax(1, fabs(b.loss)), "%s, %s: loss %.17g vs %.17g",
                  name, how, a.loss, b.loss);
    for (int l = 0; l < L; l++) {
        cr_expect_leq(max_abs_diff(a.h[l], b.h[l], B * H), tol, "%s, %s: final h of layer %d",
                      name, how, l);
        cr_expect_leq(max_abs_diff(a.c[l], b.c[l], B * H), tol, "%s, %s: final c of layer %d",
                      name, how, l);
    }
    cr_assert_eq(tg_params_numel(a.p), tg_params_numel(b.p));
    cr_expect_leq(grad_rel_diff(a.p, b.p), tol, "%s, %s: parameter gradients", name, how);
    tg_params_free(a.p);
    tg_params_free(b.p);
}

Test(stack_ids, lstm_table_projected) { compare_paths("lstm", ALL_OF_TABLE); }
Test(stack_ids, gru_table_projected) { compare_paths("gru", ALL_OF_TABLE); }
Test(stack_ids, rnn_table_projected) { compare_paths("rnn", ALL_OF_TABLE); }
Test(stack_ids, mgu_table_projected) { compare_paths("mgu", ALL_OF_TABLE); }
Test(stack_ids, lstm_distinct_rows_projected) { compare_paths("lstm", REPEATS); }
Test(stack_ids, gru_distinct_rows_projected) { compare_paths("gru", REPEATS); }
Test(stack_ids, rnn_distinct_rows_projected) { compare_paths("rnn", REPEATS); }
Test(stack_ids, lstm_embedded_rows_projected) { compare_paths("lstm", ALL_DISTINCT); }
Test(stack_ids, gru_embedded_rows_projected) { compare_paths("gru", ALL_DISTINCT); }

/* ------------------------------------------------------------ finite differences */

typedef struct fd_ctx {
    const tg_rnn_stack *s;
    tg_embed emb;
    const int *ids;
    int n_params;
} fd_ctx;

/* inputs: [embedding table, stack params...]; output: the top layer. */
static tg_tensor *build_ids(tg_tape *t, tg_tensor **in, void *vctx)
{
    fd_ctx *ctx = vctx;
    (void)in; /* the parameters are the tensors ctx's layers point to */
    return stack_ids(t, ctx->s, &ctx->emb, ctx->ids, T, B, NULL, lengths, NULL,
                                    NULL);
}

static void gradcheck_ids(const char *name, pattern pat)
{
    int vocab = pattern_vocab(pat);
    tg_rng r;
    tg_rng_seed(&r, 11);
    tg_params *p = tg_params_new();
    tg_rnn_stack st;
    fd_ctx ctx = {&st, {0, 0, NULL}, NULL, 0};
    cr_assert_eq(tg_embed_init(&ctx.emb, p, "emb", vocab, E, &r), 0);
    cr_assert_eq(tg_rnn_stack_init(&st, p, "rnn", tg_cell_kind_by_name(name), E, H, L, 0.0, &r),
                 0);
    int ids[N];
    pattern_ids(pat, ids);
    ctx.ids = ids;
    tg_tensor *in[32];
    int np = (int)tg_params_count(p);
    for (int i = 0; i < np; i++) in[i] = tg_params_at(p, i);
    tg_tape *t = tg_tape_new(8u << 20);
    tg_gradcheck_result res = tg_gradcheck(t, build_ids, &ctx, in, np, GC_EPS, 5);
    cr_expect_eq(res.checked, tg_params_numel(p), "%s: checked %zu of %zu", name, res.checked,
                 tg_params_numel(p));
    cr_expect(res.max_rel_err < GC_TOL, "%s (%s): max_rel_err %.3g (input %d, element %zu)", name,
              pattern_name[pat], res.max_rel_err, res.worst_input, res.worst_index);
    tg_tape_free(t);
    tg_params_free(p);
}

Test(stack_ids, lstm_gradcheck_table_projected) { gradcheck_ids("lstm", ALL_OF_TABLE); }
Test(stack_ids, gru_gradcheck_distinct_rows_projected) { gradcheck_ids("gru", REPEATS); }
Test(stack_ids, rnn_gradcheck_embedded_rows_projected) { gradcheck_ids("rnn", ALL_DISTINCT); }

/* An id outside the table is reported by the embedding, as without the ids
 * path, not read past the end of anything. */
Test(stack_ids, id_outside_table_aborts, .signal = SIGABRT)
{
    tg_rng r;
    tg_rng_seed(&r, 3);
    tg_params *p = tg_params_new();
    tg_embed emb;
    tg_rnn_stack st;
    cr_assert_eq(tg_embed_init(&emb, p, "emb", 6, E, &r), 0);
    cr_assert_eq(tg_rnn_stack_init(&st, p, "rnn", &tg_cell_lstm, E, H, 1, 0.0, &r), 0);
    int ids[N] = {0};
    ids[N - 1] = 6;
    tg_tape *t = tg_tape_new(1 << 20);
    stack_ids(t, &st, &emb, ids, T, B, NULL, NULL, NULL, NULL);
}

/* ------------------------------------------------------------ unroll halves */

/* tg_rnn_forward given xp = tg_rnn_project's rows is tg_rnn_forward over x,
 * bit for bit: the same ops in the same order. */
Test(stack_ids, unroll_halves_equal_unroll)
{
    const tg_cell_kind *kinds[] = {&tg_cell_rnn, &tg_cell_lstm, &tg_cell_gru, &tg_cell_mgu};
    for (int k = 0; k < 4; k++) {
        tg_rng r;
        tg_rng_seed(&r, 3);
        tg_params *p = tg_params_new();
        tg_cell c;
        cr_assert_eq(tg_cell_init(&c, kinds[k], p, "c", E, H, &r), 0);
        tg_tape *t = tg_tape_new(1 << 22);
        tg_tensor *X = tg_tensor_new(t, T * B, E, 0);
        fill_normal(X, &r, 1.0);
        tg_state s0 = tg_state_zeros(t, kinds[k], B, H);
        tg_tensor *a = unroll_cell(t, &c, X, T, B, s0, lengths, NULL);
        tg_rnn_stack one = tg_rnn_stack_of_cell(&c);
        tg_rnn_run run = {.T = T, .B = B, .x = X, .init = &s0, .lengths = lengths};
        run.xp = tg_rnn_project(t, &one, &run);
        run.x = NULL;
        tg_tensor *b = tg_rnn_forward(t, &one, &run);
        cr_expect(memcmp(a->data, b->data, tg_numel(a) * sizeof(tg_real)) == 0, "%s",
                  kinds[k]->name);
        tg_tape_free(t);
        tg_params_free(p);
    }
}

/* An LSTM cell of E inputs, its parameters in the returned set. */
static tg_params *lstm_cell(tg_cell *c)
{
    tg_rng r;
    tg_rng_seed(&r, 3);
    tg_params *p = tg_params_new();
    cr_assert_eq(tg_cell_init(c, &tg_cell_lstm, p, "c", E, H, &r), 0);
    return p;
}

/* A projection of the wrong width is a programming error: abort, naming it. */
Test(stack_ids, projected_shape_mismatch_aborts, .signal = SIGABRT)
{
    tg_cell c;
    lstm_cell(&c);
    tg_tape *t = tg_tape_new(1 << 20);
    tg_tensor *XP = tg_tensor_new(t, T * B, 3 * H, 0); /* LSTM needs 4H */
    tg_rnn_stack one = tg_rnn_stack_of_cell(&c);
    tg_rnn_run run = {.T = T, .B = B, .xp = XP};
    tg_rnn_forward(t, &one, &run);
}

/* A cell whose W_ih is wider than its inputs (a user kind's init that made
 * it so) is a programming error too, not a product over W_ih's first
 * columns: only the unroll's own view of a decoder's layer 0 says which
 * columns it leaves to be read apart (tg_cell.in_rest). */
Test(stack_ids, w_ih_wider_than_the_inputs_aborts, .signal = SIGABRT)
{
    tg_cell c;
    lstm_cell(&c);
    c.in = E - 1;
    tg_tape *t = tg_tape_new(1 << 20);
    tg_tensor *X = tg_tensor_new(t, T * B, E - 1, 0);
    tg_rnn_stack one = tg_rnn_stack_of_cell(&c);
    tg_rnn_run run = {.T = T, .B = B, .x = X};
    tg_rnn_forward(t, &one, &run);
}

/* ------------------------------------------------------------ context */

/* A per-row context (ctx, B x C) given to tg_rnn_forward equals the same
 * stack over [input | ctx repeated for every step], for input as x and as
 * ids (each projection pattern): the outputs, every parameter gradient and
 * the context's own gradient, up to rounding (a kind that folds b_hh adds
 * the context's projection in each step's recurrent product). */
static void check_context(const tg_cell_kind *kind, pattern pat)
{
    enum { C = 3 };
    int ids[N];
    pattern_ids(pat, ids);
    tg_real out[2][N * H], dctx[2][B * C];
    tg_real *grad[2];
    size_t np = 0;
    for (int v = 0; v < 2; v++) {
        tg_rng r;
        tg_rng_seed(&r, 11);
        tg_params *p = tg_params_new();
        tg_embed emb;
        tg_rnn_stack st;
        cr_assert_eq(tg_embed_init(&emb, p, "emb", pattern_vocab(pat), E, &r), 0);
        cr_assert_eq(tg_rnn_stack_init(&st, p, "rnn", kind, E + C, H, L, 0.0, &r), 0);
        tg_tape *t = tg_tape_new(1 << 22);
        tg_tensor *ctx = tg_tensor_new(t, B, C, 1);
        fill_normal(ctx, &r, 1.0);
        tg_rnn_run run = {.T = T, .B = B, .lengths = lengths};
        if (v == 0) { /* the library's: ids and ctx */
            run.emb = &emb, run.ids = ids, run.ctx = ctx;
        } else { /* the concatenation */
            tg_tensor *rep[T];
            for (int s = 0; s < T; s++) rep[s] = ctx;
            run.x = tg_concat(t, tg_embed_forward(t, &emb, ids, N), tg_stack_rows(t, rep, T));
        }
        tg_tensor *y = tg_rnn_forward(t, &st, &run);
        tg_backward(t, tg_sum(t, tg_mul(t, y, y)));
        memcpy(out[v], y->data, sizeof out[v]);
        memcpy(dctx[v], ctx->grad, sizeof dctx[v]);
        np = tg_params_numel(p);
        grad[v] = malloc(np * sizeof(tg_real));
        memcpy(grad[v], tg_params_grad(p), np * sizeof(tg_real));
        tg_tape_free(t);
        tg_params_free(p);
    }
    cr_expect_leq(max_abs_diff(out[0], out[1], N * H), EQ_TOL, "%s, %s: outputs", kind->name,
                  pattern_name[pat]);
    cr_expect_leq(max_abs_diff(grad[0], grad[1], np), 10 * EQ_TOL, "%s, %s: gradients",
                  kind->name, pattern_name[pat]);
    cr_expect_leq(max_abs_diff(dctx[0], dctx[1], B * C), 10 * EQ_TOL,
                  "%s, %s: the context's gradient", kind->name, pattern_name[pat]);
    free(grad[0]);
    free(grad[1]);
}

Test(stack_ids, context_equals_concatenated_input)
{
    const tg_cell_kind *kinds[] = {&tg_cell_rnn, &tg_cell_lstm, &tg_cell_gru, &tg_cell_mgu,
                                   &tg_cell_peephole};
    for (int k = 0; k < 5; k++)
        for (int pat = 0; pat < 3; pat++) check_context(kinds[k], (pattern)pat);
}
