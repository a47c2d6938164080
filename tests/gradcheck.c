/* gradcheck: every op of the registry against central finite differences.
 *
 * The case table is generated from TG_OP_LIST (ops/tg_op.h), one check_<name>
 * function per op, so adding an op without a check case does not compile.
 * Each case builds heap inputs with values away from kinks (relu away from 0,
 * log on positive inputs), runs tg_gradcheck (graph/gradcheck.c) on one or
 * more sub-cases (both transpose flags of matmul, broadcast add, ignored rows
 * of softmax_xent, inputs that need no gradient, fan-out) and reports the
 * worst relative error over all of them:
 *
 *     <op-name> max_rel_err=<value> ok|FAIL
 *
 * Exit status 0 when every op is within the threshold, 1 otherwise.
 *
 * Double build (-Dreal=double): the real check. Central differences with
 * eps = 1e-6 have truncation error ~eps^2 and rounding error ~1e-16/eps, far
 * below the 1e-6 threshold on relative error |a-n| / max(1, |a|, |n|).
 *
 * Float build: the same cases still run, as a looser check that still
 * catches a wrong VJP (errors of order 0.1-1), with eps = 1e-3 and threshold
 * 1e-3: the float rounding of f (6e-8 relative, over a few dozen terms)
 * divided by 2 eps gives errors up to ~1.5e-4 for correct VJPs, so anything
 * tighter would measure float noise. The header line says which check ran. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "tg_op.h"

#ifdef TG_REAL_DOUBLE
#define CHECK_EPS 1e-6
#define CHECK_TOL 1e-6
#else
#define CHECK_EPS 1e-3
#define CHECK_TOL 1e-3
#endif

#define MAX_IN 4

/* ------------------------------------------------------------ helpers */

/* The worst result over the sub-cases of one op. */
typedef struct check {
    tg_tape *tape;
    tg_rng rng;         /* input values */
    double max_rel_err;
    size_t checked;     /* elements perturbed over all sub-cases */
} check;

typedef double (*check_fn)(check *c);

static tg_tensor *input(int rows, int cols, int requires_grad)
{
    tg_tensor *x = tg_tensor_alloc(rows, cols, requires_grad);
    if (!x) {
        fprintf(stderr, "gradcheck: out of memory for a %dx%d input\n", rows, cols);
        exit(1);
    }
    return x;
}

/* Uniform in [lo, hi]. */
static void fill_range(check *c, tg_tensor *x, double lo, double hi)
{
    for (size_t i = 0; i < tg_numel(x); i++)
        x->data[i] = (tg_real)(lo + (hi - lo) * tg_rng_uniform(&c->rng));
}

/* |v| in [lo, hi] with a random sign: keeps values away from a kink at 0. */
static void fill_signed(check *c, tg_tensor *x, double lo, double hi)
{
    fill_range(c, x, lo, hi);
    for (size_t i = 0; i < tg_numel(x); i++)
        if (tg_rng_uniform(&c->rng) < 0.5) x->data[i] = -x->data[i];
}

static tg_tensor *randn_input(check *c, int rows, int cols, int requires_grad)
{
    tg_tensor *x = input(rows, cols, requires_grad);
    fill_range(c, x, -1.0, 1.0);
    return x;
}

/* One sub-case: gradcheck build(inputs) and fold the result into c. */
static void run(check *c, tg_build_fn build, void *ctx, tg_tensor **in, int n_in)
{
    tg_gradcheck_result r = tg_gradcheck(c->tape, build, ctx, in, n_in, CHECK_EPS, 12345);
    if (!(r.max_rel_err <= c->max_rel_err)) c->max_rel_err = r.max_rel_err; /* NaN too */
    c->checked += r.checked;
}

static void free_inputs(tg_tensor **in, int n)
{
    for (int i = 0; i < n; i++) tg_tensor_free(in[i]);
}

/* ------------------------------------------------------------ matmul */

typedef struct flags2 {
    int ta, tb;
} flags2;

static tg_tensor *build_matmul(tg_tape *t, tg_tensor **in, void *ctx)
{
    const flags2 *f = ctx;
    return tg_matmul(t, in[0], in[1], f->ta, f->tb);
}

static double check_matmul(check *c)
{
    const int m = 3, k = 4, n = 2;
    for (int ta = 0; ta <= 1; ta++)
        for (int tb = 0; tb <= 1; tb++) {
            flags2 f = {ta, tb};
            tg_tensor *in[2] = {randn_input(c, ta ? k : m, ta ? m : k, 1),
                                randn_input(c, tb ? n : k, tb ? k : n, 1)};
            run(c, build_matmul, &f, in, 2);
            free_inputs(in, 2);
        }
    /* A needs no gradient: only B is checked, A stays untouched */
    flags2 f = {0, 1};
    tg_tensor *in[2] = {randn_input(c, m, k, 0), randn_input(c, n, k, 1)};
    run(c, build_matmul, &f, in, 2);
    free_inputs(in, 2);
    /* fan-out: A A^T */
    tg_tensor *a = randn_input(c, m, k, 1);
    tg_tensor *aa[2] = {a, a};
    flags2 g = {0, 1};
    run(c, build_matmul, &g, aa, 1);
    tg_tensor_free(a);
    return c->max_rel_err;
}

/* ------------------------------------------------------------ affine */

static tg_tensor *build_affine(tg_tape *t, tg_tensor **in, void *ctx)
{
    (void)ctx;
    return tg_affine(t, in[0], in[1], in[2]);
}

static tg_tensor *build_affine_cols(tg_tape *t, tg_tensor **in, void *ctx)
{
    return tg_affine_cols(t, in[0], in[1], *(const int *)ctx, in[2]);
}

static tg_tensor *build_affine_cols_unbiased(tg_tape *t, tg_tensor **in, void *ctx)
{
    return tg_affine_cols(t, in[0], in[1], *(const int *)ctx, NULL);
}

static double check_affine(check *c)
{
    const int m = 4, k = 3, n = 5;
    /* a bias row broadcast to every row, then a full m x n B */
    for (int full = 0; full <= 1; full++) {
        tg_tensor *in[3] = {randn_input(c, m, k, 1), randn_input(c, n, k, 1),
                            randn_input(c, full ? m : 1, n, 1)};
        run(c, build_affine, NULL, in, 3);
        free_inputs(in, 3);
    }
    /* X and B need no gradient: only W is checked */
    tg_tensor *w_only[3] = {randn_input(c, m, k, 0), randn_input(c, n, k, 1),
                            randn_input(c, 1, n, 0)};
    run(c, build_affine, NULL, w_only, 3);
    free_inputs(w_only, 3);
    /* one row: W's rank-1 gradient goes through matmul's deferral */
    tg_tensor *row[3] = {randn_input(c, 1, k, 1), randn_input(c, n, k, 1),
                         randn_input(c, 1, n, 1)};
    run(c, build_affine, NULL, row, 3);
    free_inputs(row, 3);
    /* a range of W's columns (affine_cols), with a bias and without: only
     * those columns of dW may change (the others stay 0 in the check) */
    int c0 = 2;
    tg_tensor *cols[3] = {randn_input(c, m, k, 1), randn_input(c, n, k + 4, 1),
                          randn_input(c, 1, n, 1)};
    run(c, build_affine_cols, &c0, cols, 3);
    run(c, build_affine_cols_unbiased, &c0, cols, 2);
    free_inputs(cols, 3);
    return c->max_rel_err;
}

/* ------------------------------------------------------------ binary element-wise */

static tg_tensor *build_add(tg_tape *t, tg_tensor **in, void *ctx)
{
    (void)ctx;
    return tg_add(t, in[0], in[1]);
}

static tg_tensor *build_self_add(tg_tape *t, tg_tensor **in, void *ctx)
{
    (void)ctx;
    return tg_add(t, in[0], in[0]);
}

static double check_add(check *c)
{
    tg_tensor *same[2] = {randn_input(c, 3, 4, 1), randn_input(c, 3, 4, 1)};
    run(c, build_add, NULL, same, 2);
    free_inputs(same, 2);
    /* row-broadcast bias: dB is the column sum of dC */
    tg_tensor *bias[2] = {randn_input(c, 5, 3, 1), randn_input(c, 1, 3, 1)};
    run(c, build_add, NULL, bias, 2);
    free_inputs(bias, 2);
    /* broadcast with a constant A: only the bias is perturbed */
    tg_tensor *cbias[2] = {randn_input(c, 4, 3, 0), randn_input(c, 1, 3, 1)};
    run(c, build_add, NULL, cbias, 2);
    free_inputs(cbias, 2);
    /* 1-row A and B: same shape, not a broadcast */
    tg_tensor *rows1[2] = {randn_input(c, 1, 5, 1), randn_input(c, 1, 5, 1)};
    run(c, build_add, NULL, rows1, 2);
    free_inputs(rows1, 2);
    tg_tensor *x = randn_input(c, 2, 3, 1);
    run(c, build_self_add, NULL, &x, 1);
    tg_tensor_free(x);
    return c->max_rel_err;
}

static tg_tensor *build_sub(tg_tape *t, tg_tensor **in, void *ctx)
{
    (void)ctx;
    return tg_sub(t, in[0], in[1]);
}

static double check_sub(check *c)
{
    tg_tensor *in[2] = {randn_input(c, 3, 4, 1), randn_input(c, 3, 4, 1)};
    run(c, build_sub, NULL, in, 2);
    free_inputs(in, 2);
    tg_tensor *half[2] = {randn_input(c, 2, 3, 0), randn_input(c, 2, 3, 1)};
    run(c, build_sub, NULL, half, 2);
    free_inputs(half, 2);
    return c->max_rel_err;
}

static tg_tensor *build_mul(tg_tape *t, tg_tensor **in, void *ctx)
{
    (void)ctx;
    return tg_mul(t, in[0], in[1]);
}

static tg_tensor *build_square(tg_tape *t, tg_tensor **in, void *ctx)
{
    (void)ctx;
    return tg_mul(t, in[0], in[0]);
}

static double check_mul(check *c)
{
    tg_tensor *in[2] = {randn_input(c, 3, 4, 1), randn_input(c, 3, 4, 1)};
    run(c, build_mul, NULL, in, 2);
    free_inputs(in, 2);
    tg_tensor *x = randn_input(c, 2, 5, 1);
    run(c, build_square, NULL, &x, 1); /* fan-out: x * x */
    tg_tensor_free(x);
    /* row broadcast: dB is the column sum of dC * A */
    tg_tensor *bc[2] = {randn_input(c, 5, 3, 1), randn_input(c, 1, 3, 1)};
    run(c, build_mul, NULL, bc, 2);
    free_inputs(bc, 2);
    /* broadcast with a constant A (a per-unit weight times data) */
    tg_tensor *cb[2] = {randn_input(c, 4, 3, 0), randn_input(c, 1, 3, 1)};
    run(c, build_mul, NULL, cb, 2);
    free_inputs(cb, 2);
    /* broadcast with a constant B */
    tg_tensor *ca[2] = {randn_input(c, 4, 3, 1), randn_input(c, 1, 3, 0)};
    run(c, build_mul, NULL, ca, 2);
    free_inputs(ca, 2);
    return c->max_rel_err;
}

/* ------------------------------------------------------------ unary */

static tg_tensor *build_scale(tg_tape *t, tg_tensor **in, void *ctx)
{
    return tg_scale(t, in[0], *(const double *)ctx);
}

static double check_scale(check *c)
{
    const double factors[] = {2.5, -0.3};
    for (int i = 0; i < 2; i++) {
        tg_tensor *x = randn_input(c, 3, 4, 1);
        run(c, build_scale, (void *)&factors[i], &x, 1);
        tg_tensor_free(x);
    }
    return c->max_rel_err;
}

#define UNARY_BUILD(name)                                                                  \
    static tg_tensor *build_##name(tg_tape *t, tg_tensor **in, void *ctx)                  \
    {                                                                                      \
        (void)ctx;                                                                         \
        return tg_##name(t, in[0]);                                                        \
    }

UNARY_BUILD(one_minus)
UNARY_BUILD(tanh)
UNARY_BUILD(sigmoid)
UNARY_BUILD(relu)
UNARY_BUILD(exp)
UNARY_BUILD(log)
UNARY_BUILD(sum)
UNARY_BUILD(mean)

/* One 3x4 input in [lo, hi] (signed: |x| in [lo, hi], random sign). */
static double check_unary(check *c, tg_build_fn build, double lo, double hi, int is_signed)
{
    tg_tensor *x = input(3, 4, 1);
    if (is_signed)
        fill_signed(c, x, lo, hi);
    else
        fill_range(c, x, lo, hi);
    run(c, build, NULL, &x, 1);
    tg_tensor_free(x);
    return c->max_rel_err;
}

static double check_one_minus(check *c) { return check_unary(c, build_one_minus, -2, 2, 0); }
static double check_tanh(check *c) { return check_unary(c, build_tanh, -2, 2, 0); }
static double check_exp(check *c) { return check_unary(c, build_exp, -2, 1.5, 0); }
static double check_sum(check *c) { return check_unary(c, build_sum, -1, 1, 0); }
static double check_mean(check *c) { return check_unary(c, build_mean, -1, 1, 0); }
/* relu: at least 0.1 away from the kink, far more than eps */
static double check_relu(check *c) { return check_unary(c, build_relu, 0.1, 2, 1); }
/* log: positive inputs away from 0 */
static double check_log(check *c) { return check_unary(c, build_log, 0.3, 3, 0); }

static double check_sigmoid(check *c)
{
    check_unary(c, build_sigmoid, -3, 3, 0);
    /* both branches of the overflow-safe formula, far out on each side */
    return check_unary(c, build_sigmoid, 8, 20, 1);
}

/* ------------------------------------------------------------ slicing and joining */

typedef struct range {
    int first, count;
} range;

static tg_tensor *build_col_slice(tg_tape *t, tg_tensor **in, void *ctx)
{
    const range *r = ctx;
    return tg_col_slice(t, in[0], r->first, r->count);
}

static double check_col_slice(check *c)
{
    const range ranges[] = {{0, 2}, {1, 3}, {4, 1}, {0, 5}};
    for (int i = 0; i < 4; i++) {
        tg_tensor *x = randn_input(c, 3, 5, 1);
        run(c, build_col_slice, (void *)&ranges[i], &x, 1);
        tg_tensor_free(x);
    }
    return c->max_rel_err;
}

static tg_tensor *build_concat(tg_tape *t, tg_tensor **in, void *ctx)
{
    (void)ctx;
    return tg_concat(t, in[0], in[1]);
}

static tg_tensor *build_self_concat(tg_tape *t, tg_tensor **in, void *ctx)
{
    (void)ctx;
    return tg_concat(t, in[0], in[0]);
}

static double check_concat(check *c)
{
    tg_tensor *in[2] = {randn_input(c, 3, 2, 1), randn_input(c, 3, 4, 1)};
    run(c, build_concat, NULL, in, 2);
    free_inputs(in, 2);
    tg_tensor *half[2] = {randn_input(c, 2, 3, 1), randn_input(c, 2, 1, 0)};
    run(c, build_concat, NULL, half, 2);
    free_inputs(half, 2);
    tg_tensor *x = randn_input(c, 2, 3, 1);
    run(c, build_self_concat, NULL, &x, 1);
    tg_tensor_free(x);
    return c->max_rel_err;
}

/* row_slice is a view: its gradient is a block of the parent's, so every
 * consumer of the slice adds straight into the parent's gradient. */
static tg_tensor *build_row_slice(tg_tape *t, tg_tensor **in, void *ctx)
{
    const range *r = ctx;
    return tg_row_slice(t, in[0], r->first, r->count);
}

/* Overlapping views of an intermediate (its gradient is zeroed by backward
 * and filled through the views) and a view of a view. */
static tg_tensor *build_row_slice_of_tanh(tg_tape *t, tg_tensor **in, void *ctx)
{
    (void)ctx;
    tg_tensor *h = tg_tanh(t, in[0]); /* 5 x 3 */
    tg_tensor *top = tg_row_slice(t, h, 0, 3), *low = tg_row_slice(t, h, 2, 3);
    tg_tensor *mid = tg_row_slice(t, tg_row_slice(t, h, 1, 4), 1, 3); /* rows 2..4 */
    return tg_add(t, tg_mul(t, top, low), tg_scale(t, mid, 0.7));
}

static double check_row_slice(check *c)
{
    const range ranges[] = {{0, 2}, {1, 3}, {3, 1}, {0, 4}};
    for (int i = 0; i < 4; i++) {
        tg_tensor *x = randn_input(c, 4, 3, 1);
        run(c, build_row_slice, (void *)&ranges[i], &x, 1);
        tg_tensor_free(x);
    }
    tg_tensor *x = randn_input(c, 5, 3, 1);
    run(c, build_row_slice_of_tanh, NULL, &x, 1);
    tg_tensor_free(x);
    return c->max_rel_err;
}

/* stack_rows over inputs of 2, 1 and 3 rows; the middle one is a constant
 * (never perturbed), and the last sub-case stacks one tensor twice. */
static tg_tensor *build_stack3(tg_tape *t, tg_tensor **in, void *ctx)
{
    (void)ctx;
    return tg_stack_rows(t, in, 3);
}

static tg_tensor *build_stack_twice(tg_tape *t, tg_tensor **in, void *ctx)
{
    (void)ctx;
    tg_tensor *xs[3] = {in[0], in[1], in[0]};
    return tg_stack_rows(t, xs, 3);
}

static double check_stack_rows(check *c)
{
    tg_tensor *in[3] = {randn_input(c, 2, 4, 1), randn_input(c, 1, 4, 0), randn_input(c, 3, 4, 1)};
    run(c, build_stack3, NULL, in, 3);
    free_inputs(in, 3);
    tg_tensor *two[2] = {randn_input(c, 2, 3, 1), randn_input(c, 2, 3, 1)};
    run(c, build_stack_twice, NULL, two, 2);
    free_inputs(two, 2);
    return c->max_rel_err;
}

/* ------------------------------------------------------------ integer inputs */

typedef struct int_args {
    const int *ints;
    int n;
    int ignore_index;
} int_args;

static tg_tensor *build_embedding(tg_tape *t, tg_tensor **in, void *ctx)
{
    const int_args *a = ctx;
    return tg_embedding(t, in[0], a->ints, a->n);
}

/* Repeated ids accumulate; rows 1 and 2 of the table are never looked up. */
static double check_embedding(check *c)
{
    static const int ids[] = {3, 0, 3, 4, 3, 0};
    int_args a = {ids, 6, 0};
    tg_tensor *table = randn_input(c, 5, 3, 1);
    run(c, build_embedding, &a, &table, 1);
    tg_tensor_free(table);
    return c->max_rel_err;
}

typedef struct dropout_args {
    double p;
    uint64_t seed;
} dropout_args;

/* The generator is reseeded inside build, so every evaluation of the finite
 * differences draws the same mask as the analytic pass. */
static tg_tensor *build_dropout(tg_tape *t, tg_tensor **in, void *ctx)
{
    const dropout_args *d = ctx;
    tg_rng r;
    tg_rng_seed(&r, d->seed);
    return tg_dropout(t, in[0], d->p, &r);
}

static double check_dropout(check *c)
{
    const dropout_args args[] = {{0.3, 7}, {0.5, 99}, {0.0, 1}};
    for (int i = 0; i < 3; i++) {
        tg_tensor *x = randn_input(c, 4, 5, 1);
        run(c, build_dropout, (void *)&args[i], &x, 1);
        tg_tensor_free(x);
    }
    return c->max_rel_err;
}

static tg_tensor *build_softmax_xent(tg_tape *t, tg_tensor **in, void *ctx)
{
    const int_args *a = ctx;
    return tg_softmax_xent(t, in[0], a->ints, a->ignore_index);
}

/* with label smoothing 0.1 (the seq2seq program's --label-smoothing) */
static tg_tensor *build_softmax_xent_smoothed(tg_tape *t, tg_tensor **in, void *ctx)
{
    const int_args *a = ctx;
    return tg_softmax_xent_smoothed(t, in[0], a->ints, a->ignore_index, 0.1);
}

static double check_softmax_xent(check *c)
{
    static const int with_pad[] = {2, -1, 0, 3, -1}; /* -1 rows are padding */
    static const int class0_pad[] = {0, 1, 0, 3, 2}; /* ignore_index is class 0 */
    static const int all_pad[] = {-1, -1, -1, -1, -1};
    static const int none_pad[] = {1, 1, 0, 3, 2};
    const int_args cases[] = {{with_pad, 5, -1}, {class0_pad, 5, 0}, {all_pad, 5, -1},
                              {none_pad, 5, -100}};
    for (int i = 0; i < 4; i++) {
        tg_tensor *z = input(5, 4, 1);
        fill_range(c, z, -3, 3);
        run(c, build_softmax_xent, (void *)&cases[i], &z, 1);
        run(c, build_softmax_xent_smoothed, (void *)&cases[i], &z, 1);
        tg_tensor_free(z);
    }
    return c->max_rel_err;
}

/* ------------------------------------------------------------ fused gate ops */

/* lstm_gates / gru_gates (ops/lstm_gates.c, ops/gru_gates.c): every input
 * differentiable; the previous state constant; xp and hp the same tensor
 * (their gradients share memory). Gate inputs span both tanh branches. */
static tg_tensor *build_lstm_gates(tg_tape *t, tg_tensor **in, void *ctx)
{
    (void)ctx;
    return tg_lstm_gates(t, in[0], in[1], in[2]);
}

static tg_tensor *build_lstm_gates_shared(tg_tape *t, tg_tensor **in, void *ctx)
{
    (void)ctx;
    return tg_lstm_gates(t, in[0], in[0], in[1]);
}

/* xp's rows read from a 4-row matrix by index, one row twice (its gradient
 * gets both rows' gradients) and one row unused (it gets none). */
static tg_tensor *build_lstm_gates_rows(tg_tape *t, tg_tensor **in, void *ctx)
{
    (void)ctx;
    static const int pos[3] = {2, 0, 2};
    return tg_lstm_gates_rows(t, in[0], pos, in[1], in[2]);
}

static tg_tensor *build_gru_gates(tg_tape *t, tg_tensor **in, void *ctx)
{
    (void)ctx;
    return tg_gru_gates(t, in[0], in[1], in[2]);
}

static tg_tensor *build_gru_gates_shared(tg_tape *t, tg_tensor **in, void *ctx)
{
    (void)ctx;
    return tg_gru_gates(t, in[0], in[0], in[1]);
}

static double check_gates(check *c, int gates, tg_build_fn build, tg_build_fn shared)
{
    const int B = 3, H = 4;
    for (int state_grad = 0; state_grad <= 1; state_grad++) {
        tg_tensor *in[3] = {input(B, gates * H, 1), input(B, gates * H, 1), input(B, H, state_grad)};
        fill_range(c, in[0], -1.5, 1.5);
        fill_range(c, in[1], -1.5, 1.5);
        fill_range(c, in[2], -1, 1);
        run(c, build, NULL, in, 3);
        free_inputs(in, 3);
    }
    tg_tensor *two[2] = {input(B, gates * H, 1), input(B, H, 1)};
    fill_range(c, two[0], -1, 1);
    fill_range(c, two[1], -1, 1);
    run(c, shared, NULL, two, 2);
    free_inputs(two, 2);
    return c->max_rel_err;
}

static double check_lstm_gates(check *c)
{
    const int B = 3, H = 4;
    tg_tensor *in[3] = {input(4, 4 * H, 1), input(B, 4 * H, 1), input(B, H, 1)};
    fill_range(c, in[0], -1.5, 1.5);
    fill_range(c, in[1], -1.5, 1.5);
    fill_range(c, in[2], -1, 1);
    run(c, build_lstm_gates_rows, NULL, in, 3);
    free_inputs(in, 3);
    return check_gates(c, 4, build_lstm_gates, build_lstm_gates_shared);
}

static double check_gru_gates(check *c)
{
    return check_gates(c, 3, build_gru_gates, build_gru_gates_shared);
}

/* ------------------------------------------------------------ attention */

static tg_tensor *build_softmax(tg_tape *t, tg_tensor **in, void *ctx)
{
    return tg_softmax(t, in[0], ctx);
}

/* The softmax's output weighting a second input (as attention weights a
 * memory): gradients flow to both through the mask. */
static tg_tensor *build_softmax_of_mul(tg_tape *t, tg_tensor **in, void *ctx)
{
    return tg_mul(t, tg_softmax(t, in[0], ctx), in[1]);
}

static double check_softmax(check *c)
{
    /* row 0 partly masked, row 1 all masked (zeros, no gradient), row 2 one kept */
    static const int mask[] = {0, 1, 0, 0, 1, 1, 1, 1, 1, 1, 0, 1, 0, 0, 0, 0};
    for (int masked = 0; masked <= 1; masked++) {
        tg_tensor *x = input(4, 4, 1);
        fill_range(c, x, -3, 3);
        run(c, build_softmax, masked ? (void *)mask : NULL, &x, 1);
        tg_tensor_free(x);
    }
    tg_tensor *two[2] = {input(4, 4, 1), randn_input(c, 4, 4, 1)};
    fill_range(c, two[0], -2, 2);
    run(c, build_softmax_of_mul, (void *)mask, two, 2);
    free_inputs(two, 2);
    return c->max_rel_err;
}

static tg_tensor *build_attn_scores(tg_tape *t, tg_tensor **in, void *ctx)
{
    (void)ctx;
    return tg_attn_scores(t, in[0], in[1]);
}

static tg_tensor *build_attn_context(tg_tape *t, tg_tensor **in, void *ctx)
{
    (void)ctx;
    return tg_attn_context(t, in[0], in[1]);
}

/* The same memory scored and then summed with its own scores (fan-out of m
 * into both ops), as attention uses it. */
static tg_tensor *build_attention_chain(tg_tape *t, tg_tensor **in, void *ctx)
{
    (void)ctx;
    tg_tensor *a = tg_softmax(t, tg_attn_scores(t, in[0], in[1]), NULL);
    return tg_attn_context(t, a, in[1]);
}

/* B=3, S=4 and H=11 (the dot's unrolled part and its tail), each input
 * alone a constant once. */
static double check_attn_pair(check *c, tg_build_fn build, int a_cols)
{
    const int B = 3, S = 4, H = 11;
    for (int grads = 1; grads <= 3; grads++) {
        tg_tensor *in[2] = {randn_input(c, B, a_cols, grads & 1),
                            randn_input(c, S * B, H, (grads >> 1) & 1)};
        run(c, build, NULL, in, 2);
        free_inputs(in, 2);
    }
    return c->max_rel_err;
}

static double check_attn_scores(check *c)
{
    check_attn_pair(c, build_attn_scores, 11);
    tg_tensor *in[2] = {randn_input(c, 3, 11, 1), randn_input(c, 4 * 3, 11, 1)};
    run(c, build_attention_chain, NULL, in, 2);
    free_inputs(in, 2);
    return c->max_rel_err;
}

static double check_attn_context(check *c) { return check_attn_pair(c, build_attn_context, 4); }

/* ------------------------------------------------------------ the table */

#define CHECK_ENTRY(E, name) [TG_OP_##E] = check_##name,
static const check_fn cases[] = {TG_OP_LIST(CHECK_ENTRY)};
#undef CHECK_ENTRY

_Static_assert(sizeof cases / sizeof cases[0] == TG_OP_COUNT,
               "every op of TG_OP_LIST needs a check case");

int main(void)
{
    tg_tape *tape = tg_tape_new((size_t)1 << 20);
    if (!tape) {
        fprintf(stderr, "gradcheck: cannot allocate the tape\n");
        return 1;
    }
#ifdef TG_REAL_DOUBLE
    printf("gradcheck: tg_real=double eps=%g threshold=%g\n", CHECK_EPS, CHECK_TOL);
#else
    printf("gradcheck: tg_real=float: loose check (eps=%g threshold=%g); "
           "the tight check is the -Dreal=double build\n",
           CHECK_EPS, CHECK_TOL);
#endif
    int failed = 0;
    for (int k = 0; k < TG_OP_COUNT; k++) {
        check c = {.tape = tape, .max_rel_err = 0};
        tg_rng_seed(&c.rng, 1000 + (uint64_t)k);
        double err = cases[k](&c);
        /* a case that perturbed nothing would pass vacuously */
        int ok = c.checked > 0 && err <= CHECK_TOL;
        printf("%s max_rel_err=%.3e %s\n", tg_op_table[k].name, err, ok ? "ok" : "FAIL");
        if (!ok && c.checked == 0) printf("  (%s: no input element was checked)\n", tg_op_table[k].name);
        failed += !ok;
    }
    printf("gradcheck: %d ops, %d failed\n", (int)TG_OP_COUNT, failed);
    tg_tape_free(tape);
    return failed ? 1 : 0;
}
