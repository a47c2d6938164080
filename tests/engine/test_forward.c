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
