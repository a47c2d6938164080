/* Gradients a VJP writes instead of adding to (graph/tg_engine.h,
 * tg_claim_grad_write): backward does not zero the gradient of an op output
 * whose one consumer writes it whole, so that gradient holds whatever the
 * arena held before. Each test fills it with NaN first, as a reused arena
 * could, and checks that:
 *   - the consumer writes every element (softmax_xent: ignored rows, no
 *     counted row; lstm_gates: both pre-activations; matmul, A plain or
 *     transposed, and affine: their left operand);
 *   - a second use of the tensor, as an input (stack_rows' list included),
 *     brings back zeroing and adding;
 *   - a backward from a tensor recorded before the writer, which never
 *     replays it, still sees that gradient as zero;
 *   - replica gradients that the shard reduction zeroed stay correct over
 *     repeated steps (graph/parallel.c). */
#include <criterion/criterion.h>
#include <math.h>
#include <string.h>

#include "tapegrad.h"
#include "tg_engine.h"

enum { N = 4, K = 3, V = 5 };

static const int targets[N] = {1, -1, 4, 0}; /* row 1 ignored (ignore_index -1) */

static void poison(tg_tensor *x)
{
    for (size_t i = 0; i < tg_numel(x); i++) x->grad[i] = (tg_real)NAN;
}

static tg_tensor *weights(void)
{
    tg_tensor *w = tg_tensor_alloc(K, V, 1);
    cr_assert_not_null(w);
    for (size_t i = 0; i < tg_numel(w); i++) w->data[i] = (tg_real)(0.37 * (double)i - 2.1);
    return w;
}

static tg_tensor *inputs(tg_tape *t)
{
    tg_tensor *x = tg_tensor_new(t, N, K, 0);
    for (size_t i = 0; i < tg_numel(x); i++) x->data[i] = (tg_real)(0.25 * (double)i - 1.0);
    return x;
}

/* z = x W, loss = xent(z) (+ sum of z stacked `extra` times when extra > 0):
 * returns z, whose gradient was poisoned before backward. */
static tg_tensor *run(tg_tape *t, tg_tensor *w, const int *tg, int extra)
{
    tg_tensor *z = tg_matmul(t, inputs(t), w, 0, 0);
    tg_tensor *loss = tg_softmax_xent(t, z, tg, -1);
    if (extra > 0) {
        tg_tensor *copies[2] = {z, z};
        loss = tg_add(t, loss, tg_sum(t, tg_stack_rows(t, copies, extra)));
    }
    poison(z);
    memset(w->grad, 0, tg_numel(w) * sizeof(tg_real));
    tg_backward(t, loss);
    return z;
}

static void expect_finite(const tg_tensor *x, const char *what)
{
    for (size_t i = 0; i < tg_numel(x); i++)
        cr_assert(isfinite((double)x->grad[i]), "%s: gradient %zu is %g", what, i,
                  (double)x->grad[i]);
}

Test(grad_write, softmax_xent_writes_every_logit_gradient)
{
    tg_tape *t = tg_tape_new((size_t)1 << 16);
    tg_tensor *w = weights();
    tg_tensor *z = run(t, w, targets, 0);
    expect_finite(z, "dz");
    expect_finite(w, "dW");
    for (int j = 0; j < V; j++) cr_assert_eq(z->grad[V + j], 0, "ignored row, column %d", j);
    for (int i = 0; i < N; i++) {
        double row = 0;
        for (int j = 0; j < V; j++) row += (double)z->grad[i * V + j];
        cr_assert(fabs(row) < 1e-6, "row %d of dz sums to %g, not 0", i, row);
    }
    tg_tape_free(t);
    tg_tensor_free(w);
}

Test(grad_write, no_counted_row_writes_zeros)
{
    const int none[N] = {-1, -1, -1, -1};
    tg_tape *t = tg_tape_new((size_t)1 << 16);
    tg_tensor *w = weights();
    tg_tensor *z = run(t, w, none, 0);
    for (size_t i = 0; i < tg_numel(z); i++) cr_assert_eq(z->grad[i], 0, "dz %zu", i);
    for (size_t i = 0; i < tg_numel(w); i++) cr_assert_eq(w->grad[i], 0, "dW %zu", i);
    tg_tape_free(t);
    tg_tensor_free(w);
}

/* The sum over `extra` stacked copies of z adds `extra` to each element of
 * dz: the writer must not overwrite it, whichever VJP runs first. */
Test(grad_write, a_second_use_adds_again)
{
    tg_tape *t = tg_tape_new((size_t)1 << 16), *t2 = tg_tape_new((size_t)1 << 16);
    tg_tensor *w = weights();
    tg_tensor *alone = run(t, w, targets, 0);
    for (int extra = 1; extra <= 2; extra++) {
        tg_tape_reset(t2);
        tg_tensor *z = run(t2, w, targets, extra);
        for (size_t i = 0; i < tg_numel(z); i++)
            cr_assert(fabs((double)z->grad[i] - (double)alone->grad[i] - extra) < 1e-6,
                      "%d stacked copies: dz %zu is %g, want %g + %d", extra, i,
                      (double)z->grad[i], (double)alone->grad[i], extra);
    }
    tg_tape_free(t);
    tg_tape_free(t2);
    tg_tensor_free(w);
}

/* h = tanh(x), y = sum(x), then xent(h): backward(y) replays y and tanh but
 * not xent, so tanh's VJP reads dh, which must be zero, not what was there. */
Test(grad_write, backward_from_before_the_writer_sees_zero)
{
    tg_tape *t = tg_tape_new((size_t)1 << 16);
    tg_tensor *x = tg_tensor_new(t, N, V, 1);
    for (size_t i = 0; i < tg_numel(x); i++) x->data[i] = (tg_real)(0.1 * (double)i);
    tg_tensor *h = tg_tanh(t, x);
    tg_tensor *y = tg_sum(t, x);
    tg_softmax_xent(t, h, targets, -1);
    poison(h);
    tg_backward(t, y);
    for (size_t i = 0; i < tg_numel(x); i++) cr_assert_eq(x->grad[i], 1, "dx %zu", i);
    tg_tape_free(t);
}

/* ------------------------------------------------ lstm_gates' two inputs */

enum { B = 3, H = 70 }; /* two of the VJP's 64-column chunks */

/* xp = x Wx, hp = h Wh (B x 4H each, op outputs), y = lstm_gates(xp, hp, c),
 * loss = sum(y * coef) (+ sum(xp) + sum(hp) when second_use): returns the
 * gradient of Wx then Wh (2 * K * 4H values) in out, with xp's and hp's
 * gradients poisoned before backward. */
static void lstm_run(int second_use, tg_real *out)
{
    tg_tape *t = tg_tape_new((size_t)1 << 16);
    tg_tensor *w[2];
    for (int k = 0; k < 2; k++) {
        w[k] = tg_tensor_alloc(K, 4 * H, 1);
        cr_assert_not_null(w[k]);
        for (size_t i = 0; i < tg_numel(w[k]); i++)
            w[k]->data[i] = (tg_real)(0.11 * (double)((i * 7 + k) % 13) - 0.6);
    }
    tg_tensor *in[3];
    for (int k = 0; k < 3; k++) {
        in[k] = tg_tensor_new(t, B, k < 2 ? K : H, 0);
        for (size_t i = 0; i < tg_numel(in[k]); i++)
            in[k]->data[i] = (tg_real)(0.3 * (double)((i * 5 + k) % 7) - 0.9);
    }
    tg_tensor *xp = tg_matmul(t, in[0], w[0], 0, 0), *hp = tg_matmul(t, in[1], w[1], 0, 0);
    tg_tensor *y = tg_lstm_gates(t, xp, hp, in[2]), *coef = tg_tensor_new(t, 2 * B, H, 0);
    for (size_t i = 0; i < tg_numel(coef); i++) coef->data[i] = (tg_real)(0.2 * (double)i - 1);
    tg_tensor *loss = tg_sum(t, tg_mul(t, y, coef));
    if (second_use) loss = tg_add(t, loss, tg_add(t, tg_sum(t, xp), tg_sum(t, hp)));
    poison(xp);
    poison(hp);
    cr_assert_eq(tg_grad_writes(xp) && tg_grad_writes(hp), !second_use,
                 "lstm_gates' claim on xp and hp (second use: %d)", second_use);
    tg_backward(t, loss);
    expect_finite(xp, "dxp");
    expect_finite(hp, "dhp");
    for (int k = 0; k < 2; k++) {
        memcpy(out + (size_t)k * K * 4 * H, w[k]->grad, tg_numel(w[k]) * sizeof(tg_real));
        tg_tensor_free(w[k]);
    }
    tg_tape_free(t);
}

/* Written over the poison, the gradients of xp and hp are those of the
 * same graph where a second use of each (sum, whose gradient is 1) brings
 * back zeroing and adding: that one's dW is the first's plus in^T 1. */
Test(grad_write, lstm_gates_writes_both_projections)
{
    tg_real alone[2 * K * 4 * H], twice[2 * K * 4 * H];
    lstm_run(0, alone);
    lstm_run(1, twice);
    for (int k = 0; k < 2; k++)
        for (int p = 0; p < K; p++)
            for (int j = 0; j < 4 * H; j++) {
                double col = 0; /* sum over the batch of in[k][b][p] */
                for (int b = 0; b < B; b++)
                    col += 0.3 * (double)(((size_t)(b * K + p) * 5 + k) % 7) - 0.9;
                size_t i = ((size_t)k * K + p) * 4 * H + j;
                /* float rounding of two sums near |twice|: relative */
                cr_assert(fabs((double)twice[i] - (double)alone[i] - col) <
                              1e-5 * fmax(1, fabs((double)twice[i])),
                          "dW%d[%d][%d]: %g with a second use, %g alone, want + %g", k, p, j,
                          (double)twice[i], (double)alone[i], col);
            }
}

/* ------------------------------------------------ matmul's and affine's left operand */

enum { KINDS = 3 }; /* matmul A W, matmul A^T W, affine A W^T + b */

/* a = tanh(x0) (an op output), z = product of a (by kind), loss =
 * sum(z * coef) (+ sum(a) when second_use), with a's gradient poisoned
 * before backward: x0's gradient into out (N * K values). */
static void product_run(int kind, int second_use, tg_real *out)
{
    tg_tape *t = tg_tape_new((size_t)1 << 16);
    tg_tensor *x0 = tg_tensor_new(t, N, K, 1);
    for (size_t i = 0; i < tg_numel(x0); i++) x0->data[i] = (tg_real)(0.2 * (double)i - 1.1);
    int wr = kind == 1 ? N : kind == 2 ? V : K, wc = kind == 2 ? K : V; /* W's shape */
    tg_tensor *w = tg_tensor_new(t, wr, wc, 1), *bias = tg_tensor_new(t, 1, V, 1);
    for (size_t i = 0; i < tg_numel(w); i++) w->data[i] = (tg_real)(0.13 * (double)(i % 11) - 0.7);
    tg_tensor *a = tg_tanh(t, x0);
    tg_tensor *z = kind == 2 ? tg_affine(t, a, w, bias) : tg_matmul(t, a, w, kind == 1, 0);
    tg_tensor *coef = tg_tensor_new(t, z->rows, z->cols, 0);
    for (size_t i = 0; i < tg_numel(coef); i++) coef->data[i] = (tg_real)(0.3 * (double)i - 2);
    tg_tensor *loss = tg_sum(t, tg_mul(t, z, coef));
    if (second_use) loss = tg_add(t, loss, tg_sum(t, a));
    poison(a);
    cr_assert_eq(tg_grad_writes(a), !second_use, "kind %d: claim on A (second use: %d)", kind,
                 second_use);
    tg_backward(t, loss);
    expect_finite(a, "dA");
    memcpy(out, x0->grad, tg_numel(x0) * sizeof(tg_real));
    tg_tape_free(t);
}

/* Written over the poison, dA gives the dx0 of the graph where a second use
 * of A (sum: gradient 1) brings back zeroing and adding, less that use's
 * share, 1 - tanh(x0)^2. */
Test(grad_write, matmul_and_affine_write_their_left_operand)
{
    for (int kind = 0; kind < KINDS; kind++) {
        tg_real alone[N * K], twice[N * K];
        product_run(kind, 0, alone);
        product_run(kind, 1, twice);
        for (int i = 0; i < N * K; i++) {
            double th = tanh(0.2 * i - 1.1), share = 1 - th * th;
            cr_assert(fabs((double)twice[i] - (double)alone[i] - share) <
                          1e-5 * fmax(1, fabs((double)twice[i])),
                      "kind %d, dx0[%d]: %g with a second use, %g alone, want + %g", kind, i,
                      (double)twice[i], (double)alone[i], share);
        }
    }
}

/* ------------------------------------------------ replicas the reduction zeroes */

static double shard_step(int shard, tg_tape *t, tg_params *p, void *ctx)
{
    (void)ctx;
    tg_tensor *w = tg_params_at(p, 0);
    const int tg2[N] = {shard, 2, 4 - shard, 3};
    tg_tensor *loss = tg_softmax_xent(t, tg_matmul(t, inputs(t), w, 0, 0), tg2, -1);
    tg_backward(t, loss);
    return (double)loss->data[0];
}

Test(grad_write, repeated_steps_give_the_same_reduced_gradient)
{
    tg_params *m = tg_params_new();
    cr_assert_not_null(m);
    tg_rng r;
    tg_rng_seed(&r, 5);
    cr_assert_not_null(tg_param_uniform(m, "w", K, V, &r, 0.5));
    tg_workers *wk = tg_workers_new(m, 3, (size_t)1 << 16);
    cr_assert_not_null(wk);
    size_t n = tg_params_numel(m);
    tg_real first[K * V];
    cr_assert_eq(n, (size_t)K * V);
    for (int step = 0; step < 3; step++)
        for (int threads = 1; threads <= 2; threads++) {
            tg_params_zero_grad(m);
            tg_workers_run(wk, threads, shard_step, NULL);
            if (step == 0 && threads == 1) memcpy(first, tg_params_grad(m), sizeof first);
            cr_assert_eq(memcmp(first, tg_params_grad(m), sizeof first), 0,
                         "step %d on %d threads: the reduced gradient changed", step, threads);
            for (int s = 0; s < 3; s++)
                for (size_t i = 0; i < n; i++)
                    cr_assert_eq(tg_params_grad(tg_workers_params(wk, s))[i], 0,
                                 "replica %d gradient %zu not zeroed by the reduction", s, i);
        }
    tg_workers_free(wk);
    tg_params_free(m);
}
