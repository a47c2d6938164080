/* The cells unrolled over several steps, and a 2-layer stack, against
 * central finite differences (tg_gradcheck) — parameters, inputs and
 * initial states all perturbed, with and without length masking. */
#include <criterion/criterion.h>
#include <string.h>

#include "layer_util.h"

enum { T = 4, B = 3, I = 3, H = 4 };

typedef struct unroll_ctx {
    const tg_cell *cell;
    const int *lengths;
    int has_c;
} unroll_ctx;

/* inputs: [cell params..., X, h0, (c0)] at the end. Output: every step's h
 * stacked, then the final h (and c): T*B+B(+B) x H. */
static tg_tensor *build_unroll(tg_tape *t, tg_tensor **in, void *vctx)
{
    unroll_ctx *ctx = vctx;
    tg_tensor *scratch[8];
    int np = cell_params(ctx->cell, scratch);
    tg_state s0 = {in[np + 1], ctx->has_c ? in[np + 2] : NULL}, fin;
    tg_tensor *outs = unroll_cell(t, ctx->cell, in[np], T, B, s0, ctx->lengths, &fin);
    tg_tensor *parts[3] = {outs, fin.h, fin.c};
    return tg_stack_rows(t, parts, ctx->has_c ? 3 : 2);
}

static void check_cell(const char *name, const int *lengths)
{
    const tg_cell_kind *k = tg_cell_kind_by_name(name);
    cr_assert_not_null(k, "no cell '%s'", name);
    tg_rng r;
    tg_rng_seed(&r, 42);
    tg_params *p = tg_params_new();
    tg_cell cell;
    cr_assert_eq(tg_cell_init(&cell, k, p, "c", I, H, &r), 0);
    tg_tensor *in[12];
    int np = cell_params(&cell, in);
    tg_tensor *X = tg_tensor_alloc(T * B, I, 1), *h0 = tg_tensor_alloc(B, H, 1),
              *c0 = tg_tensor_alloc(B, H, 1);
    fill_normal(X, &r, 1.0);
    fill_normal(h0, &r, 0.5);
    fill_normal(c0, &r, 0.5);
    in[np] = X;
    in[np + 1] = h0;
    in[np + 2] = c0;
    int n_in = np + 2 + k->has_c;
    unroll_ctx ctx = {&cell, lengths, k->has_c};
    tg_tape *t = tg_tape_new(8u << 20);
    tg_gradcheck_result res = tg_gradcheck(t, build_unroll, &ctx, in, n_in, GC_EPS, 7);
    size_t expect = tg_params_numel(p) + tg_numel(X) + tg_numel(h0) + (k->has_c ? tg_numel(c0) : 0);
    cr_expect_eq(res.checked, expect, "%s: checked %zu of %zu elements", name, res.checked, expect);
    cr_log_info("%s%s: max_rel_err %.3g over %zu elements", name, lengths ? " (masked)" : "",
                res.max_rel_err, res.checked);
    cr_expect(res.max_rel_err < GC_TOL, "%s%s: max_rel_err %.3g (input %d, element %zu)", name,
              lengths ? " (masked)" : "", res.max_rel_err, res.worst_input, res.worst_index);
    tg_tape_free(t);
    tg_tensor_free(X);
    tg_tensor_free(h0);
    tg_tensor_free(c0);
    tg_params_free(p);
}

static const int ragged[B] = {T, 2, 0}; /* full, short, empty */

Test(cells, rnn_gradcheck) { check_cell("rnn", NULL); }
Test(cells, lstm_gradcheck) { check_cell("lstm", NULL); }
Test(cells, gru_gradcheck) { check_cell("gru", NULL); }
Test(cells, mgu_gradcheck) { check_cell("mgu", NULL); }
Test(cells, rnn_masked_gradcheck) { check_cell("rnn", ragged); }
Test(cells, lstm_masked_gradcheck) { check_cell("lstm", ragged); }
Test(cells, gru_masked_gradcheck) { check_cell("gru", ragged); }
Test(cells, mgu_masked_gradcheck) { check_cell("mgu", ragged); }
Test(cells, peephole_gradcheck) { check_cell("peephole", NULL); }
Test(cells, peephole_masked_gradcheck) { check_cell("peephole", ragged); }

/* ------------------------------------------------------------ 2-layer stack */

typedef struct stack_ctx {
    const tg_rnn_stack *s;
    const int *lengths;
    int n_params;
    uint64_t dropout_seed; /* 0: no dropout */
} stack_ctx;

/* inputs: [params..., X, h0 l0, h0 l1, (c0 l0, c0 l1)]. Output: top outputs
 * and every layer's final state. */
static tg_tensor *build_stack(tg_tape *t, tg_tensor **in, void *vctx)
{
    stack_ctx *ctx = vctx;
    int has_c = ctx->s->kind->has_c, np = ctx->n_params;
    tg_state init[2] = {{in[np + 1], has_c ? in[np + 3] : NULL},
                        {in[np + 2], has_c ? in[np + 4] : NULL}},
             fin[2];
    tg_rng r; /* the same dropout masks on every call */
    tg_rng_seed(&r, ctx->dropout_seed);
    tg_tensor *top = stack_x(t, ctx->s, in[np], T, B, init, ctx->lengths, fin,
                                          ctx->dropout_seed ? &r : NULL);
    tg_tensor *parts[5] = {top, fin[0].h, fin[1].h, fin[0].c, fin[1].c};
    return tg_stack_rows(t, parts, has_c ? 5 : 3);
}

static void check_stack(const char *name, const int *lengths, double dropout, uint64_t seed)
{
    const tg_cell_kind *k = tg_cell_kind_by_name(name);
    tg_rng r;
    tg_rng_seed(&r, 3);
    tg_params *p = tg_params_new();
    tg_rnn_stack s;
    cr_assert_eq(tg_rnn_stack_init(&s, p, "enc", k, I, H, 2, dropout, &r), 0);
    int np = (int)tg_params_count(p);
    tg_tensor *in[16];
    for (int i = 0; i < np; i++) in[i] = tg_params_at(p, i);
    tg_tensor *X = tg_tensor_alloc(T * B, I, 1), *st[4];
    fill_normal(X, &r, 1.0);
    in[np] = X;
    for (int i = 0; i < 4; i++) {
        st[i] = tg_tensor_alloc(B, H, 1);
        fill_normal(st[i], &r, 0.5);
        in[np + 1 + i] = st[i];
    }
    stack_ctx ctx = {&s, lengths, np, seed};
    tg_tape *t = tg_tape_new(8u << 20);
    tg_gradcheck_result res =
        tg_gradcheck(t, build_stack, &ctx, in, np + 3 + 2 * k->has_c, GC_EPS, 11);
    cr_expect(res.checked > tg_params_numel(p), "%s: only %zu elements checked", name, res.checked);
    cr_log_info("2-layer %s%s: max_rel_err %.3g over %zu elements", name,
                dropout > 0 ? " dropout" : "", res.max_rel_err, res.checked);
    cr_expect(res.max_rel_err < GC_TOL, "2-layer %s: max_rel_err %.3g (input %d, element %zu)",
              name, res.max_rel_err, res.worst_input, res.worst_index);
    tg_tape_free(t);
    tg_tensor_free(X);
    for (int i = 0; i < 4; i++) tg_tensor_free(st[i]);
    tg_params_free(p);
}

Test(stack, lstm_2layer_gradcheck) { check_stack("lstm", NULL, 0, 0); }
Test(stack, gru_2layer_masked_gradcheck) { check_stack("gru", ragged, 0, 0); }
Test(stack, lstm_2layer_dropout_masked_gradcheck) { check_stack("lstm", ragged, 0.3, 99); }
Test(stack, rnn_2layer_dropout_gradcheck) { check_stack("rnn", NULL, 0.5, 5); }
