/* Forward results of every op against a plain reference in double
 * (tests/engine/op_cases.c), with and without recording. */
#include <criterion/criterion.h>
#include <criterion/parameterized.h>
#include <math.h>
#include <stdlib.h>

#include "op_cases.h"

static int *op_indices(void)
{
    static int idx[TG_OP_COUNT];
    for (int k = 0; k < TG_OP_COUNT; k++) idx[k] = k;
    return idx;
}

static void expect_matches(const op_case *c, const tg_tensor *y, const double *ref, const char *mode)
{
    cr_assert_eq(y->rows, c->out_rows, "%s (%s): %d rows, want %d", c->what, mode, y->rows,
                 c->out_rows);
    cr_assert_eq(y->cols, c->out_cols, "%s (%s): %d cols, want %d", c->what, mode, y->cols,
                 c->out_cols);
    for (int i = 0; i < c->out_rows * c->out_cols; i++) {
        double got = (double)y->data[i], tol = OPC_FWD_TOL * fmax(1.0, fabs(ref[i]));
        cr_assert(isfinite(got) && fabs(got - ref[i]) <= tol,
                  "%s (%s): element %d is %.17g, reference %.17g", c->what, mode, i, got, ref[i]);
    }
}

static void check_case(const op_case *c, tg_tape *t)
{
    tg_tensor *in[OPC_MAX_IN];
    int ints[OPC_MAX_INTS];
    double ref[1024];
    cr_assert(c->out_rows * c->out_cols <= 1024);
    opc_make_inputs(c, ~0u, 77, in);
    for (int i = 0; i < c->n_ints; i++) ints[i] = c->ints[i];
    c->reference(c, in, ints, ref);

    tg_tape_reset(t);
    expect_matches(c, c->build(t, c, in, ints), ref, "recording");
    tg_tape_set_grad(t, 0);
    tg_tape_reset(t);
    expect_matches(c, c->build(t, c, in, ints), ref, "no-grad");
    tg_tape_set_grad(t, 1);
    opc_free_inputs(c, in);
}

ParameterizedTestParameters(forward, every_op)
{
    return cr_make_param_array(int, op_indices(), TG_OP_COUNT);
}

ParameterizedTest(int *k, forward, every_op)
{
    const op_cases *oc = &op_case_table[*k];
    cr_assert(oc->n > 0, "op %s has no forward case", tg_op_table[*k].name);
    cr_log_info("%s: %d cases", oc->name, oc->n);
    tg_tape *t = tg_tape_new((size_t)1 << 20);
    for (int i = 0; i < oc->n; i++) check_case(&oc->cases[i], t);
    tg_tape_free(t);
}

Test(forward, table_names_match_registry)
{
    for (int k = 0; k < TG_OP_COUNT; k++)
        cr_assert_str_eq(op_case_table[k].name, tg_op_table[k].name, "case table entry %d", k);
}

/* row_slice is a view: no copy, its data (and gradient) are the parent's rows. */
Test(forward, row_slice_is_a_zero_copy_view)
{
    tg_tape *t = tg_tape_new((size_t)1 << 16);
    tg_tensor *x = tg_tensor_alloc(5, 3, 1);
    tg_tensor *y = tg_row_slice(t, x, 2, 2);
    cr_assert_eq(y->data, x->data + 2 * 3);
    cr_assert_eq(y->grad, x->grad + 2 * 3);
    x->data[7] = 42; /* row 2, col 1 */
    cr_assert_eq(y->data[1], 42);
    tg_tensor *c = tg_tensor_alloc(5, 3, 0);
    cr_assert_null(tg_row_slice(t, c, 0, 1)->grad, "a view of a constant has no gradient");
    tg_tensor_free(x);
    tg_tensor_free(c);
    tg_tape_free(t);
}

/* p == 0 is documented to return x itself, recording nothing. */
Test(forward, dropout_p0_is_identity)
{
    tg_tape *t = tg_tape_new((size_t)1 << 16);
    tg_tensor *x = tg_tensor_alloc(2, 3, 1);
    tg_rng r;
    tg_rng_seed(&r, 1);
    cr_assert_eq(tg_dropout(t, x, 0.0, &r), x);
    cr_assert_eq(tg_tape_node_count(t), 0);
    tg_tensor_free(x);
    tg_tape_free(t);
}

/* Over many elements the kept fraction is 1 - p and kept values are x/(1-p). */
Test(forward, dropout_keeps_fraction_1_minus_p)
{
    const int rows = 200, cols = 100;
    const double p = 0.3;
    tg_tape *t = tg_tape_new((size_t)1 << 20);
    tg_tensor *x = tg_tensor_alloc(rows, cols, 0);
    for (size_t i = 0; i < tg_numel(x); i++) x->data[i] = 1;
    tg_rng r;
    tg_rng_seed(&r, 5);
    tg_tensor *y = tg_dropout(t, x, p, &r);
    size_t kept = 0;
    for (size_t i = 0; i < tg_numel(y); i++) {
        cr_assert(y->data[i] == 0 || fabs(y->data[i] - 1 / (1 - p)) < 1e-6);
        kept += y->data[i] != 0;
    }
    /* 20000 draws: std of the kept fraction is 0.0032; allow 5 sigma */
    double frac = (double)kept / (double)tg_numel(y);
    cr_assert(fabs(frac - (1 - p)) < 0.016, "kept fraction %.4f, want %.2f", frac, 1 - p);
    tg_tensor_free(x);
    tg_tape_free(t);
}

/* Documented: the loss is 0 when every row is ignored (no 0/0). */
Test(forward, softmax_xent_zero_when_all_ignored)
{
    tg_tape *t = tg_tape_new((size_t)1 << 16);
    tg_tensor *z = tg_tensor_alloc(2, 3, 1);
    const int targets[] = {-1, -1};
    cr_assert_eq(tg_softmax_xent(t, z, targets, -1)->data[0], 0);
    tg_tensor_free(z);
    tg_tape_free(t);
}

/* The row max that shifts softmax_xent's exponentials, wherever the largest
 * logit sits (every lane of the 16-lane blocks and the tail): one logit 100,
 * the rest -100. A max that missed it would be -100 and exp(200) overflow;
 * a max off by less would not show (the shift cancels), hence the spread. */
Test(forward, softmax_xent_max_found_in_every_position)
{
    tg_tape *t = tg_tape_new((size_t)1 << 20);
    const int widths[] = {1, 15, 16, 17, 37, 64, 1000};
    for (size_t w = 0; w < sizeof widths / sizeof widths[0]; w++) {
        int v = widths[w];
        for (int pos = 0; pos < v; pos++) {
            tg_tape_reset(t);
            tg_tensor *z = tg_tensor_new(t, 2, v, 0);
            for (int j = 0; j < v; j++) z->data[j] = z->data[v + j] = j == pos ? 100 : -100;
            const int hit[] = {pos, pos}, miss[] = {(pos + 1) % v, (pos + 1) % v};
            double l_hit = (double)tg_softmax_xent(t, z, hit, -1)->data[0];
            double l_miss = (double)tg_softmax_xent(t, z, miss, -1)->data[0];
            cr_assert(isfinite(l_hit) && fabs(l_hit) < 1e-6, "width %d, max at %d: loss %g, want 0",
                      v, pos, l_hit);
            if (v > 1)
                cr_assert(fabs(l_miss - 200) < 1e-3, "width %d, max at %d: loss %g, want 200", v,
                          pos, l_miss);
        }
    }
    tg_tape_free(t);
}

/* softmax, unmasked (the lanes' max) and masked: the largest logit found
 * in every position of rows of many widths (100 there, -100 elsewhere: a
 * missed max overflows exp), and its weight 1. */
Test(forward, softmax_max_found_in_every_position)
{
    tg_tape *t = tg_tape_new((size_t)1 << 20);
    const int widths[] = {1, 7, 8, 9, 15, 16, 17, 37, 1000};
    for (size_t w = 0; w < sizeof widths / sizeof widths[0]; w++) {
        int v = widths[w], *mask = calloc((size_t)v, sizeof *mask);
        for (int pos = 0; pos < v; pos++)
            for (int masked = 0; masked < 2; masked++) {
                tg_tape_reset(t);
                tg_tensor *z = tg_tensor_new(t, 1, v, 0);
                for (int j = 0; j < v; j++) z->data[j] = j == pos ? 100 : -100;
                tg_tensor *y = tg_softmax(t, z, masked ? mask : NULL);
                cr_assert(fabs((double)y->data[pos] - 1) < 1e-6, "width %d, max at %d%s: %g",
                          v, pos, masked ? " (mask)" : "", (double)y->data[pos]);
            }
        free(mask);
    }
    tg_tape_free(t);
}

/* A softmax row padded with masked positions (attention over a batch's
 * longest source) has the bits of the row alone, whatever the padding: a
 * sentence's translation does not depend on its batch. */
Test(forward, softmax_padded_row_has_the_bits_of_the_row_alone)
{
    enum { K = 120, PAD = 40 };
    tg_tape *t = tg_tape_new((size_t)1 << 22);
    tg_rng r;
    tg_rng_seed(&r, 9);
    for (int trial = 0; trial < 4 * K; trial++) {
        int k = 1 + trial % K;
        tg_tape_reset(t);
        tg_tensor *alone = tg_tensor_new(t, 1, k, 0);
        for (int j = 0; j < k; j++) alone->data[j] = (tg_real)(12 * tg_rng_normal(&r));
        tg_tensor *ya = tg_softmax(t, alone, NULL);
        for (int n = k + 1; n <= k + PAD; n += 3) {
            tg_tensor *padded = tg_tensor_new(t, 1, n, 0);
            int mask[K + PAD];
            for (int j = 0; j < n; j++) {
                padded->data[j] = j < k ? alone->data[j] : (tg_real)(50 + j); /* never read */
                mask[j] = j >= k;
            }
            tg_tensor *yp = tg_softmax(t, padded, mask);
            for (int j = 0; j < n; j++)
                cr_assert(j < k ? yp->data[j] == ya->data[j] : yp->data[j] == 0,
                          "k %d padded to %d: position %d %.17g, alone %.17g", k, n, j,
                          (double)yp->data[j], j < k ? (double)ya->data[j] : 0.0);
        }
    }
    tg_tape_free(t);
}

/* A constant of zeros (a zero initial state) times a weight: matmul and
 * affine skip the product (ops/matmul.c), which must not change any value:
 * the output is zero (affine: its bias), and a two-step recurrence from such
 * a state gives the weights the same gradients as from a zero state that
 * wants a gradient (which takes the full product). */
static void recur_grads(int h0_wants_grad, double *gw, double *gu, double *gb)
{
    enum { B = 3, E = 4, H = 5 };
    tg_rng r;
    tg_rng_seed(&r, 5);
    tg_tensor *w = tg_tensor_alloc(H, E, 1), *u = tg_tensor_alloc(H, H, 1),
              *b = tg_tensor_alloc(1, H, 1), *x = tg_tensor_alloc(2 * B, E, 0);
    tg_tensor *h0 = tg_tensor_alloc(B, H, h0_wants_grad);
    tg_tensor *all[] = {w, u, b, x};
    for (int k = 0; k < 4; k++)
        for (size_t i = 0; i < tg_numel(all[k]); i++)
            all[k]->data[i] = (tg_real)tg_rng_normal(&r);
    for (size_t i = 0; i < tg_numel(h0); i++) h0->data[i] = 0;
    tg_tape *t = tg_tape_new((size_t)1 << 20);
    tg_tensor *h = h0, *loss = NULL;
    for (int s = 0; s < 2; s++) {
        tg_tensor *hu = tg_matmul(t, h, u, 0, 1);
        if (s == 0 && !h0_wants_grad)
            for (size_t i = 0; i < tg_numel(hu); i++) cr_assert_eq(hu->data[i], 0);
        h = tg_tanh(t, tg_add(t, tg_affine(t, tg_row_slice(t, x, s * B, B), w, b), hu));
        tg_tensor *l = tg_sum(t, tg_mul(t, h, h));
        loss = loss ? tg_add(t, loss, l) : l;
    }
    tg_backward(t, loss);
    for (size_t i = 0; i < tg_numel(w); i++) gw[i] = (double)w->grad[i];
    for (size_t i = 0; i < tg_numel(u); i++) gu[i] = (double)u->grad[i];
    for (size_t i = 0; i < tg_numel(b); i++) gb[i] = (double)b->grad[i];
    /* affine of a zero constant is its bias, row by row */
    tg_tensor *yb = tg_affine(t, tg_tensor_new(t, 2, E, 0), w, b);
    for (int i = 0; i < 2; i++)
        for (int j = 0; j < H; j++) cr_assert_eq(yb->data[i * H + j], b->data[j]);
    tg_tape_free(t);
    for (int k = 0; k < 4; k++) tg_tensor_free(all[k]);
    tg_tensor_free(h0);
}

Test(forward, zero_constant_input_skips_the_product_not_the_values)
{
    double gw[2][20], gu[2][25], gb[2][5];
    recur_grads(0, gw[0], gu[0], gb[0]);
    recur_grads(1, gw[1], gu[1], gb[1]);
    double scale = 0;
    for (int i = 0; i < 25; i++) scale = fmax(scale, fabs(gu[1][i]));
    cr_assert(scale > 0, "U got no gradient from the second step");
    /* the same sums but for zero terms: a GEMM kernel may group them otherwise */
    double tol = OPC_FWD_TOL * 10;
    for (int i = 0; i < 20; i++)
        cr_assert(fabs(gw[0][i] - gw[1][i]) <= tol * fmax(1, fabs(gw[1][i])), "dW[%d]", i);
    for (int i = 0; i < 25; i++)
        cr_assert(fabs(gu[0][i] - gu[1][i]) <= tol * fmax(1, fabs(gu[1][i])), "dU[%d]", i);
    for (int i = 0; i < 5; i++)
        cr_assert(fabs(gb[0][i] - gb[1][i]) <= tol * fmax(1, fabs(gb[1][i])), "db[%d]", i);
}
