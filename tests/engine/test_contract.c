/* The VJP contract, for every op of the registry (cases in op_cases.c):
 *   - it adds into a pre-filled gradient, never overwrites;
 *   - an input that needs no gradient (grad == NULL) keeps grad == NULL and
 *     its values, and the other inputs get the same gradients as before;
 *   - integer inputs (ids, targets) are never modified;
 *   - a second backward, leaf gradients zeroed in between, gives bitwise
 *     identical gradients, on the same tape and on a re-recorded one;
 *   - gradients are finite and input values are untouched by backward. */
#include <criterion/criterion.h>
#include <criterion/parameterized.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "op_cases.h"

#ifdef TG_REAL_DOUBLE
#define ACC_TOL 1e-13
#else
#define ACC_TOL 1e-5
#endif

#define MAX_OUT 1024
#define ALL_GRADS 0x7u

typedef struct fixture {
    const op_case *c;
    tg_tape *t;
    tg_real w[MAX_OUT]; /* seed gradient of the output */
    int ints[OPC_MAX_INTS];
} fixture;

static void fixture_init(fixture *f, const op_case *c)
{
    f->c = c;
    f->t = tg_tape_new((size_t)1 << 20);
    cr_assert_not_null(f->t);
    cr_assert(c->out_rows * c->out_cols <= MAX_OUT);
    tg_rng r;
    tg_rng_seed(&r, 9);
    for (int i = 0; i < c->out_rows * c->out_cols; i++) f->w[i] = (tg_real)(tg_rng_uniform(&r) - 0.3);
    memcpy(f->ints, c->ints, sizeof f->ints);
}

/* Records the op on a fresh tape and runs backward seeded with w. */
static tg_tensor *forward_backward(fixture *f, tg_tensor **in)
{
    tg_tape_reset(f->t);
    tg_tensor *y = f->c->build(f->t, f->c, in, f->ints);
    tg_backward_seeded(f->t, y, f->w);
    return y;
}

static tg_real *copy_of(const tg_real *x, size_t n)
{
    tg_real *c = malloc(n * sizeof *c);
    cr_assert_not_null(c);
    memcpy(c, x, n * sizeof *c);
    return c;
}

static void zero_grads(const op_case *c, tg_tensor **in)
{
    for (int k = 0; k < c->n_in; k++)
        if (in[k]->grad) memset(in[k]->grad, 0, tg_numel(in[k]) * sizeof(tg_real));
}

static void expect_ints_untouched(const fixture *f, const char *when)
{
    cr_assert(memcmp(f->ints, f->c->ints, sizeof f->ints) == 0, "%s: integer input modified %s",
              f->c->what, when);
}

/* Gradients with every input differentiable, from zero; checked finite. */
static void reference_grads(fixture *f, tg_real *g[OPC_MAX_IN], tg_tensor **in)
{
    forward_backward(f, in);
    for (int k = 0; k < f->c->n_in; k++) {
        g[k] = copy_of(in[k]->grad, tg_numel(in[k]));
        for (size_t i = 0; i < tg_numel(in[k]); i++)
            cr_assert(isfinite(g[k][i]), "%s: input %d grad[%zu] = %g", f->c->what, k, i,
                      (double)g[k][i]);
    }
}

static void check_accumulates(fixture *f, tg_real *const g[OPC_MAX_IN])
{
    const op_case *c = f->c;
    tg_tensor *in[OPC_MAX_IN];
    opc_make_inputs(c, ALL_GRADS, 77, in);
    tg_rng r;
    tg_rng_seed(&r, 3);
    for (int k = 0; k < c->n_in; k++)
        for (size_t i = 0; i < tg_numel(in[k]); i++) in[k]->grad[i] = (tg_real)(1 + tg_rng_uniform(&r));
    tg_real *pre[OPC_MAX_IN];
    for (int k = 0; k < c->n_in; k++) pre[k] = copy_of(in[k]->grad, tg_numel(in[k]));
    forward_backward(f, in);
    for (int k = 0; k < c->n_in; k++) {
        for (size_t i = 0; i < tg_numel(in[k]); i++) {
            double want = (double)pre[k][i] + (double)g[k][i];
            double tol = ACC_TOL * (fabs((double)pre[k][i]) + fabs((double)g[k][i]));
            cr_assert(fabs((double)in[k]->grad[i] - want) <= tol,
                      "%s: input %d grad[%zu] = %.9g after pre-fill %.9g, want %.9g (added)",
                      c->what, k, i, (double)in[k]->grad[i], (double)pre[k][i], want);
        }
        free(pre[k]);
    }
    opc_free_inputs(c, in);
}

/* Input j needs no gradient (grad == NULL); nothing is recorded when no
 * input needs one. */
static void check_no_grad_input(fixture *f, tg_real *const g[OPC_MAX_IN], unsigned mask)
{
    const op_case *c = f->c;
    tg_tensor *in[OPC_MAX_IN], *pristine[OPC_MAX_IN];
    opc_make_inputs(c, mask, 77, in);
    opc_make_inputs(c, 0, 77, pristine);
    tg_tape_reset(f->t);
    tg_tensor *y = c->build(f->t, c, in, f->ints);
    if (mask == 0) {
        cr_assert_null(y->grad, "%s: output of constants has a gradient", c->what);
        cr_assert_eq(tg_tape_node_count(f->t), 0, "%s: constants recorded a node", c->what);
    } else {
        tg_backward_seeded(f->t, y, f->w);
    }
    for (int k = 0; k < c->n_in; k++) {
        size_t n = tg_numel(in[k]);
        cr_assert(memcmp(in[k]->data, pristine[k]->data, n * sizeof(tg_real)) == 0,
                  "%s: input %d values changed", c->what, k);
        if (!((mask >> k) & 1u)) {
            cr_assert_null(in[k]->grad, "%s: input %d that needs no gradient got one", c->what, k);
            continue;
        }
        cr_assert(memcmp(in[k]->grad, g[k], n * sizeof(tg_real)) == 0,
                  "%s: input %d gradient changed when another input needs none (mask %x)",
                  c->what, k, mask);
    }
    expect_ints_untouched(f, "by forward/backward");
    opc_free_inputs(c, in);
    opc_free_inputs(c, pristine);
}

/* Backward twice on the same recording, leaf grads zeroed in between, then
 * once more on a fresh recording: the same bits every time. */
static void check_repeatable(fixture *f, tg_real *const g[OPC_MAX_IN])
{
    const op_case *c = f->c;
    tg_tensor *in[OPC_MAX_IN];
    opc_make_inputs(c, ALL_GRADS, 77, in);
    tg_tensor *y = forward_backward(f, in);
    for (int round = 0; round < 2; round++) {
        for (int k = 0; k < c->n_in; k++)
            cr_assert(memcmp(in[k]->grad, g[k], tg_numel(in[k]) * sizeof(tg_real)) == 0,
                      "%s: input %d gradient differs on backward #%d", c->what, k, round + 2);
        zero_grads(c, in);
        if (round == 0)
            tg_backward_seeded(f->t, y, f->w); /* same tape, not re-recorded */
        else
            forward_backward(f, in);
    }
    for (int k = 0; k < c->n_in; k++)
        cr_assert(memcmp(in[k]->grad, g[k], tg_numel(in[k]) * sizeof(tg_real)) == 0,
                  "%s: input %d gradient differs after re-recording", c->what, k);
    opc_free_inputs(c, in);
}

static void check_case(const op_case *c)
{
    fixture f;
    fixture_init(&f, c);
    tg_tensor *in[OPC_MAX_IN], *pristine[OPC_MAX_IN];
    tg_real *g[OPC_MAX_IN];
    opc_make_inputs(c, ALL_GRADS, 77, in);
    opc_make_inputs(c, 0, 77, pristine);
    reference_grads(&f, g, in);
    for (int k = 0; k < c->n_in; k++)
        cr_assert(memcmp(in[k]->data, pristine[k]->data, tg_numel(in[k]) * sizeof(tg_real)) == 0,
                  "%s: backward changed the values of input %d", c->what, k);
    expect_ints_untouched(&f, "by forward/backward");
    opc_free_inputs(c, in);
    opc_free_inputs(c, pristine);

    check_accumulates(&f, g);
    unsigned all = (1u << c->n_in) - 1;
    for (int j = 0; j < c->n_in; j++) check_no_grad_input(&f, g, all & ~(1u << j));
    check_no_grad_input(&f, g, 0);
    check_repeatable(&f, g);

    for (int k = 0; k < c->n_in; k++) free(g[k]);
    tg_tape_free(f.t);
}

static int *op_indices(void)
{
    static int idx[TG_OP_COUNT];
    for (int k = 0; k < TG_OP_COUNT; k++) idx[k] = k;
    return idx;
}

ParameterizedTestParameters(contract, every_op)
{
    return cr_make_param_array(int, op_indices(), TG_OP_COUNT);
}

ParameterizedTest(int *k, contract, every_op)
{
    const op_cases *oc = &op_case_table[*k];
    cr_log_info("%s: %d cases", oc->name, oc->n);
    for (int i = 0; i < oc->n; i++) check_case(&oc->cases[i]);
}

ParameterizedTestParameters(contract, no_grad_mode_records_nothing)
{
    return cr_make_param_array(int, op_indices(), TG_OP_COUNT);
}

/* No-grad mode: the same ops record nothing and make no gradients, even
 * over inputs that need one. */
ParameterizedTest(int *k, contract, no_grad_mode_records_nothing)
{
    const op_cases *oc = &op_case_table[*k];
    tg_tape *t = tg_tape_new((size_t)1 << 20);
    tg_tape_set_grad(t, 0);
    for (int i = 0; i < oc->n; i++) {
        const op_case *c = &oc->cases[i];
        tg_tensor *in[OPC_MAX_IN];
        int ints[OPC_MAX_INTS];
        memcpy(ints, c->ints, sizeof ints);
        opc_make_inputs(c, ALL_GRADS, 77, in);
        tg_tensor *y = c->build(t, c, in, ints);
        cr_assert_null(y->grad, "%s: output has a gradient in no-grad mode", c->what);
        cr_assert_eq(tg_tape_node_count(t), 0, "%s: recorded in no-grad mode", c->what);
        cr_assert(memcmp(ints, c->ints, sizeof ints) == 0);
        opc_free_inputs(c, in);
    }
    tg_tape_free(t);
}
