/* Gradients of composed graphs, end to end:
 *   - an expression with fan-out (one tensor consumed by several ops);
 *   - a 3-step tanh RNN written directly with ops (batched input projection,
 *     per-step row slices, stacked outputs, a softmax cross-entropy loss);
 *   - the fused softmax_xent against its composed form (exp, log, sums),
 *     and its stability on logits of 1e4; the fused lstm_gates and
 *     gru_gates against theirs.
 * Double build: finite differences with eps 1e-6 must agree to 1e-6 (the
 * issue's bar). Float build: a loose check (eps 1e-3, tolerance 1e-3) that
 * still catches a wrong VJP; float rounding over the whole graph divided by
 * eps makes anything tighter measure noise. */
#include <criterion/criterion.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "tapegrad.h"

#ifdef TG_REAL_DOUBLE
#define GC_EPS 1e-6
#define GC_TOL 1e-6
#define CMP_TOL 1e-12
#else
#define GC_EPS 1e-3
#define GC_TOL 1e-3
#define CMP_TOL 2e-5
#endif

static tg_tensor *heap(tg_rng *r, int rows, int cols, double scale)
{
    tg_tensor *x = tg_tensor_alloc(rows, cols, 1);
    cr_assert_not_null(x);
    for (size_t i = 0; i < tg_numel(x); i++) x->data[i] = (tg_real)(scale * tg_rng_normal(r));
    return x;
}

static tg_tensor *filled(tg_tape *t, int rows, int cols, double v)
{
    tg_tensor *x = tg_tensor_new(t, rows, cols, 0);
    for (size_t i = 0; i < tg_numel(x); i++) x->data[i] = (tg_real)v;
    return x;
}

static void expect_gradcheck(const char *what, tg_build_fn build, void *ctx, tg_tensor **in,
                             int n)
{
    tg_tape *t = tg_tape_new((size_t)1 << 20);
    tg_gradcheck_result r = tg_gradcheck(t, build, ctx, in, n, GC_EPS, 2024);
    cr_log_info("%s: max_rel_err=%.3e over %zu elements", what, r.max_rel_err, r.checked);
    size_t total = 0;
    for (int k = 0; k < n; k++) total += in[k]->grad ? tg_numel(in[k]) : 0;
    cr_assert_eq(r.checked, total, "%s: checked %zu of %zu elements", what, r.checked, total);
    cr_assert(r.max_rel_err <= GC_TOL, "%s: max_rel_err %.3e > %.0e (input %d element %zu)", what,
              r.max_rel_err, GC_TOL, r.worst_input, r.worst_index);
    tg_tape_free(t);
}

/* ------------------------------------------------------------ fan-out */

/* x feeds a matmul, a sigmoid and a concat; h, u and v each feed two ops. */
static tg_tensor *fan_out(tg_tape *t, tg_tensor **in, void *ctx)
{
    (void)ctx;
    tg_tensor *x = in[0], *w = in[1], *b = in[2], *v = in[3];
    tg_tensor *h = tg_tanh(t, tg_add(t, tg_matmul(t, x, w, 0, 0), b)); /* 3x4 */
    tg_tensor *e = tg_mul(t, h, tg_sigmoid(t, x));
    tg_tensor *u = tg_concat(t, e, x);                                  /* 3x8 */
    tg_tensor *p = tg_matmul(t, u, v, 0, 0);                            /* 3x2 */
    tg_tensor *q = tg_mul(t, p, tg_one_minus(t, tg_col_slice(t, u, 3, 2)));
    tg_tensor *r = tg_add(t, q, tg_exp(t, tg_scale(t, p, 0.5)));
    tg_tensor *pos = tg_add(t, tg_mul(t, r, r), filled(t, 3, 2, 1.0)); /* >= 1: log is smooth */
    tg_tensor *data = tg_mean(t, tg_log(t, pos));
    return tg_add(t, data, tg_scale(t, tg_sum(t, tg_mul(t, h, h)), 0.1));
}

Test(composed, fan_out_expression_gradcheck)
{
    tg_rng r;
    tg_rng_seed(&r, 11);
    tg_tensor *in[4] = {heap(&r, 3, 4, 0.8), heap(&r, 4, 4, 0.5), heap(&r, 1, 4, 0.3),
                        heap(&r, 8, 2, 0.5)};
    expect_gradcheck("fan-out", fan_out, NULL, in, 4);
    for (int k = 0; k < 4; k++) tg_tensor_free(in[k]);
}

/* ------------------------------------------------------------ tanh RNN */

enum { RNN_T = 3, RNN_B = 2, RNN_D = 3, RNN_H = 4, RNN_V = 5 };

/* targets of the T*B stacked outputs; -1 (one padded position) is ignored */
static const int rnn_targets[RNN_T * RNN_B] = {1, 4, 0, -1, 2, 3};

/* h_t = tanh(x_t Wx + h_{t-1} Wh + b), h_0 = 0; loss = xent(stack(h) Wo + bo).
 * in: X (T*B x D, rows of step t at t*B), Wx, Wh, b, Wo, bo. */
static tg_tensor *tanh_rnn(tg_tape *t, tg_tensor **in, void *ctx)
{
    (void)ctx;
    tg_tensor *xw = tg_matmul(t, in[0], in[1], 0, 0); /* all steps in one GEMM */
    tg_tensor *h = tg_tensor_new(t, RNN_B, RNN_H, 0);
    tg_tensor *hs[RNN_T];
    for (int s = 0; s < RNN_T; s++) {
        tg_tensor *pre = tg_add(t, tg_row_slice(t, xw, s * RNN_B, RNN_B), tg_matmul(t, h, in[2], 0, 0));
        h = hs[s] = tg_tanh(t, tg_add(t, pre, in[3]));
    }
    tg_tensor *logits = tg_add(t, tg_matmul(t, tg_stack_rows(t, hs, RNN_T), in[4], 0, 0), in[5]);
    return tg_softmax_xent(t, logits, rnn_targets, -1);
}

Test(composed, tanh_rnn_3_steps_gradcheck)
{
    tg_rng r;
    tg_rng_seed(&r, 12);
    tg_tensor *in[6] = {heap(&r, RNN_T * RNN_B, RNN_D, 1.0), heap(&r, RNN_D, RNN_H, 0.6),
                        heap(&r, RNN_H, RNN_H, 0.6),          heap(&r, 1, RNN_H, 0.2),
                        heap(&r, RNN_H, RNN_V, 0.8),          heap(&r, 1, RNN_V, 0.2)};
    expect_gradcheck("tanh RNN", tanh_rnn, NULL, in, 6);
    for (int k = 0; k < 6; k++) tg_tensor_free(in[k]);
}

/* The gradient reaches the first step's inputs, which feed the loss through
 * all three steps: guards against a sweep that stops early. */
Test(composed, tanh_rnn_gradient_reaches_first_step)
{
    tg_rng r;
    tg_rng_seed(&r, 13);
    tg_tensor *in[6] = {heap(&r, RNN_T * RNN_B, RNN_D, 1.0), heap(&r, RNN_D, RNN_H, 0.6),
                        heap(&r, RNN_H, RNN_H, 0.6),          heap(&r, 1, RNN_H, 0.2),
                        heap(&r, RNN_H, RNN_V, 0.8),          heap(&r, 1, RNN_V, 0.2)};
    tg_tape *t = tg_tape_new((size_t)1 << 20);
    tg_backward(t, tanh_rnn(t, in, NULL));
    double first = 0;
    for (int i = 0; i < RNN_B * RNN_D; i++) first += fabs((double)in[0]->grad[i]);
    cr_assert(first > 0, "no gradient reached the first step's inputs");
    tg_tape_free(t);
    for (int k = 0; k < 6; k++) tg_tensor_free(in[k]);
}

/* ------------------------------------------------------------ softmax_xent */

enum { XN = 5, XV = 4 };
static const int xent_targets[XN] = {2, -1, 0, 3, 1};

/* mean over counted rows of log(sum_j exp z_ij) - z_i,t_i, from primitive
 * ops: row sums are products with a column of ones, the picked logit a
 * product with a one-hot mask, ignored rows a 0/1 row mask. */
static tg_tensor *composed_xent(tg_tape *t, tg_tensor *z, const int *targets, int ignore)
{
    tg_tensor *ones = filled(t, z->cols, 1, 1.0);
    tg_tensor *onehot = filled(t, z->rows, z->cols, 0.0), *mask = filled(t, z->rows, 1, 0.0);
    int counted = 0;
    for (int i = 0; i < z->rows; i++) {
        if (targets[i] == ignore) continue;
        onehot->data[(size_t)i * z->cols + targets[i]] = 1;
        mask->data[i] = 1;
        counted++;
    }
    tg_tensor *lse = tg_log(t, tg_matmul(t, tg_exp(t, z), ones, 0, 0));
    tg_tensor *picked = tg_matmul(t, tg_mul(t, z, onehot), ones, 0, 0);
    tg_tensor *per_row = tg_mul(t, tg_sub(t, lse, picked), mask);
    return tg_scale(t, tg_sum(t, per_row), 1.0 / counted);
}

static double loss_and_grad(tg_tensor *z, int fused, tg_real *grad)
{
    tg_tape *t = tg_tape_new((size_t)1 << 20);
    memset(z->grad, 0, tg_numel(z) * sizeof(tg_real));
    tg_tensor *loss = fused ? tg_softmax_xent(t, z, xent_targets, -1)
                            : composed_xent(t, z, xent_targets, -1);
    tg_backward(t, loss);
    memcpy(grad, z->grad, tg_numel(z) * sizeof(tg_real));
    double v = (double)loss->data[0];
    tg_tape_free(t);
    return v;
}

Test(composed, softmax_xent_matches_composed_form)
{
    tg_rng r;
    tg_rng_seed(&r, 14);
    tg_tensor *z = heap(&r, XN, XV, 2.0); /* moderate logits */
    tg_real gf[XN * XV], gc[XN * XV];
    double lf = loss_and_grad(z, 1, gf), lc = loss_and_grad(z, 0, gc);
    cr_assert(fabs(lf - lc) <= CMP_TOL * fmax(1, fabs(lc)), "fused %.17g, composed %.17g", lf, lc);
    for (int i = 0; i < XN * XV; i++)
        cr_assert(fabs((double)gf[i] - (double)gc[i]) <= CMP_TOL,
                  "grad[%d]: fused %.17g, composed %.17g", i, (double)gf[i], (double)gc[i]);
    for (int j = 0; j < XV; j++) cr_assert_eq(gf[1 * XV + j], 0, "ignored row got a gradient");
    tg_tensor_free(z);
}

/* Logits of 1e4: exp overflows, so the composed form is inf/NaN, while the
 * fused op (log-sum-exp shifted by the row max) stays finite and exact. */
Test(composed, softmax_xent_stable_on_huge_logits)
{
    tg_tensor *z = tg_tensor_alloc(XN, XV, 1);
    const double rows[XN][XV] = {{1e4, -1e4, 0, 1e4 - 1},
                                 {1e4, 1e4, 1e4, 1e4},
                                 {-1e4, -1e4, -1e4 + 2, -1e4},
                                 {5e3, 1e4, -1e4, 0},
                                 {1e4, 1e4 - 3, 1e4 - 1, -5e3}};
    double want = 0;
    int counted = 0;
    for (int i = 0; i < XN; i++) {
        double mx = -INFINITY, s = 0;
        for (int j = 0; j < XV; j++) {
            z->data[i * XV + j] = (tg_real)rows[i][j];
            mx = fmax(mx, rows[i][j]);
        }
        for (int j = 0; j < XV; j++) s += exp(rows[i][j] - mx);
        if (xent_targets[i] == -1) continue;
        want += mx + log(s) - rows[i][xent_targets[i]];
        counted++;
    }
    want /= counted;
    tg_real g[XN * XV], gc[XN * XV];
    double loss = loss_and_grad(z, 1, g);
    cr_assert(isfinite(loss), "fused loss %g on logits of 1e4", loss);
    cr_assert(fabs(loss - want) <= 1e-6 * fmax(1, fabs(want)), "loss %.17g, want %.17g", loss, want);
    for (int i = 0; i < XN; i++) {
        double row = 0;
        for (int j = 0; j < XV; j++) {
            cr_assert(isfinite(g[i * XV + j]), "grad[%d][%d] = %g", i, j, (double)g[i * XV + j]);
            row += (double)g[i * XV + j];
        }
        cr_assert(fabs(row) < 1e-6, "row %d: softmax - onehot sums to %g, want 0", i, row);
    }
    double composed = loss_and_grad(z, 0, gc);
    cr_assert(!isfinite(composed), "composed form was expected to overflow, gave %g", composed);
    tg_tensor_free(z);
}

/* ------------------------------------------------------------ fused gate ops */

/* The fused gate ops (ops/lstm_gates.c, ops/gru_gates.c) against the same
 * math composed from primitive ops: same output, same gradients for every
 * input, also when xp and hp are one tensor (their gradients alias). */
enum { GB = 3, GH = 4 };

static tg_tensor *cols(tg_tape *t, tg_tensor *x, int gate) { return tg_col_slice(t, x, gate * GH, GH); }

static tg_tensor *lstm_composed(tg_tape *t, tg_tensor **in)
{
    tg_tensor *a = tg_add(t, in[0], in[1]), *c = in[2];
    tg_tensor *i = tg_sigmoid(t, cols(t, a, 0)), *f = tg_sigmoid(t, cols(t, a, 1));
    tg_tensor *g = tg_tanh(t, cols(t, a, 2)), *o = tg_sigmoid(t, cols(t, a, 3));
    tg_tensor *cn = tg_add(t, tg_mul(t, f, c), tg_mul(t, i, g));
    tg_tensor *hc[2] = {tg_mul(t, o, tg_tanh(t, cn)), cn};
    return tg_stack_rows(t, hc, 2);
}

static tg_tensor *lstm_fused(tg_tape *t, tg_tensor **in) { return tg_lstm_gates(t, in[0], in[1], in[2]); }

static tg_tensor *gru_composed(tg_tape *t, tg_tensor **in)
{
    tg_tensor *xp = in[0], *hp = in[1], *h = in[2];
    tg_tensor *r = tg_sigmoid(t, tg_add(t, cols(t, xp, 0), cols(t, hp, 0)));
    tg_tensor *z = tg_sigmoid(t, tg_add(t, cols(t, xp, 1), cols(t, hp, 1)));
    tg_tensor *n = tg_tanh(t, tg_add(t, cols(t, xp, 2), tg_mul(t, r, cols(t, hp, 2))));
    return tg_add(t, tg_mul(t, tg_one_minus(t, z), n), tg_mul(t, z, h));
}

static tg_tensor *gru_fused(tg_tape *t, tg_tensor **in) { return tg_gru_gates(t, in[0], in[1], in[2]); }

typedef tg_tensor *(*gate_fn)(tg_tape *t, tg_tensor **in);

/* Output and the gradients of the distinct inputs ds[0..nd) of fn(in),
 * seeded with fixed weights; returns the number of output values. */
static size_t gate_run(gate_fn fn, tg_tensor **in, tg_tensor **ds, int nd, tg_real *out,
                       tg_real **grads)
{
    tg_tape *t = tg_tape_new((size_t)1 << 20);
    for (int k = 0; k < nd; k++) memset(ds[k]->grad, 0, tg_numel(ds[k]) * sizeof(tg_real));
    tg_tensor *y = fn(t, in);
    size_t ny = tg_numel(y);
    cr_assert(ny <= 2 * GB * GH);
    tg_real w[2 * GB * GH];
    tg_rng r;
    tg_rng_seed(&r, 31);
    for (size_t i = 0; i < ny; i++) w[i] = (tg_real)(tg_rng_uniform(&r) - 0.4);
    tg_backward_seeded(t, y, w);
    memcpy(out, y->data, ny * sizeof(tg_real));
    for (int k = 0; k < nd; k++) memcpy(grads[k], ds[k]->grad, tg_numel(ds[k]) * sizeof(tg_real));
    tg_tape_free(t);
    return ny;
}

static void expect_fused_matches_composed(const char *what, int gates, gate_fn fused,
                                          gate_fn composed, int shared)
{
    tg_rng r;
    tg_rng_seed(&r, 15);
    tg_tensor *xp = heap(&r, GB, gates * GH, 1.2), *hp = heap(&r, GB, gates * GH, 1.2);
    tg_tensor *st = heap(&r, GB, GH, 0.8);
    tg_tensor *in[3] = {xp, shared ? xp : hp, st};
    tg_tensor *ds[3] = {xp, st, hp}; /* distinct inputs: hp only when not shared */
    int nd = shared ? 2 : 3;
    tg_real yf[2 * GB * GH], yc[2 * GB * GH], *gf[3], *gc[3];
    for (int k = 0; k < nd; k++) {
        gf[k] = malloc(tg_numel(ds[k]) * sizeof(tg_real));
        gc[k] = malloc(tg_numel(ds[k]) * sizeof(tg_real));
    }
    size_t ny = gate_run(fused, in, ds, nd, yf, gf);
    cr_assert_eq(gate_run(composed, in, ds, nd, yc, gc), ny, "%s: output sizes differ", what);
    for (size_t i = 0; i < ny; i++)
        cr_assert(fabs((double)yf[i] - (double)yc[i]) <= CMP_TOL,
                  "%s: output %zu fused %.9g composed %.9g", what, i, (double)yf[i], (double)yc[i]);
    for (int k = 0; k < nd; k++) {
        for (size_t i = 0; i < tg_numel(ds[k]); i++)
            cr_assert(fabs((double)gf[k][i] - (double)gc[k][i]) <= CMP_TOL,
                      "%s: grad of input %d [%zu] fused %.9g composed %.9g", what, k, i,
                      (double)gf[k][i], (double)gc[k][i]);
        free(gf[k]);
        free(gc[k]);
    }
    tg_tensor_free(xp);
    tg_tensor_free(hp);
    tg_tensor_free(st);
}

Test(composed, lstm_gates_matches_composed_form)
{
    expect_fused_matches_composed("lstm_gates", 4, lstm_fused, lstm_composed, 0);
    expect_fused_matches_composed("lstm_gates xp == hp", 4, lstm_fused, lstm_composed, 1);
}

Test(composed, gru_gates_matches_composed_form)
{
    expect_fused_matches_composed("gru_gates", 3, gru_fused, gru_composed, 0);
    expect_fused_matches_composed("gru_gates xp == hp", 3, gru_fused, gru_composed, 1);
}

/* The checker itself fails on a wrong gradient: scaling by a factor read
 * from x's data outside the tape hides the dependence on x[0] from the
 * VJP, so finite differences and the analytic gradient disagree. */
static tg_tensor *hidden_dependence(tg_tape *t, tg_tensor **in, void *ctx)
{
    (void)ctx;
    return tg_scale(t, in[0], (double)in[0]->data[0]);
}

Test(composed, gradcheck_detects_a_wrong_gradient)
{
    tg_tensor *x = tg_tensor_alloc(2, 2, 1);
    for (int i = 0; i < 4; i++) x->data[i] = (tg_real)(0.5 + i);
    tg_tape *t = tg_tape_new((size_t)1 << 16);
    tg_gradcheck_result r = tg_gradcheck(t, hidden_dependence, NULL, &x, 1, GC_EPS, 1);
    cr_assert(r.max_rel_err > 0.1, "max_rel_err %.3e: the checker missed a wrong gradient",
              r.max_rel_err);
    cr_assert_eq(r.worst_input, 0);
    cr_assert_eq(r.worst_index, 0);
    tg_tape_free(t);
    tg_tensor_free(x);
}
