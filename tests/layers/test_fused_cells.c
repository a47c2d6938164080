/* The built-in LSTM and GRU run their gate math as one fused op; here each is
 * compared with the same cell written in primitive ops (tg_cell_*_composed):
 * same weights, a 2-layer stack over ragged lengths, same loss, same final
 * state and same gradients for every parameter and the input. */
#include <criterion/criterion.h>

#include "layer_util.h"

#define T 5
#define B 3
#define I 4
#define H 6

typedef struct run {
    double loss;
    tg_real h[B * H], c[B * H];
    tg_real grad_x[T * B * I];
    tg_params *p;
} run;

static void run_stack(const tg_cell_kind *kind, run *out)
{
    static const int lengths[B] = {5, 3, 1};
    static const int targets[T * B] = {0, 1, 2, 3, 4, 5, 0, 1, 2, 3, 4, 5, 0, 1, 2};
    tg_rng r;
    tg_rng_seed(&r, 42); /* same seed: both kinds get identical weights */
    out->p = tg_params_new();
    tg_rnn_stack st;
    cr_assert_eq(tg_rnn_stack_init(&st, out->p, "rnn", kind, I, H, 2, 0.0, &r), 0);
    tg_tape *t = tg_tape_new(1 << 22);
    tg_tensor *x = tg_tensor_new(t, T * B, I, 1);
    fill_normal(x, &r, 1.0);
    tg_state fin[2];
    tg_tensor *y = stack_x(t, &st, x, T, B, NULL, lengths, fin, NULL);
    tg_tensor *loss = tg_softmax_xent(t, y, targets, -1);
    tg_backward(t, loss);
    out->loss = loss->data[0];
    memcpy(out->h, fin[1].h->data, sizeof out->h);
    if (fin[1].c) memcpy(out->c, fin[1].c->data, sizeof out->c);
    memcpy(out->grad_x, x->grad, sizeof out->grad_x);
    tg_tape_free(t);
}

static void compare(const tg_cell_kind *fused, const tg_cell_kind *composed)
{
    run a, b;
    memset(&a, 0, sizeof a);
    memset(&b, 0, sizeof b);
    run_stack(fused, &a);
    run_stack(composed, &b);
    /* the float build's fused kernels use vectorised exp/tanh (a few ulps) */
    double tol = EQ_TOL * 10;
    cr_expect_leq(fabs(a.loss - b.loss), tol * fmax(1, fabs(b.loss)), "loss %g vs %g", a.loss,
                  b.loss);
    cr_expect_leq(max_abs_diff(a.h, b.h, B * H), tol, "final h");
    cr_expect_leq(max_abs_diff(a.c, b.c, B * H), tol, "final c");
    cr_expect_leq(max_abs_diff(a.grad_x, b.grad_x, T * B * I), tol, "d loss / d x");
    cr_assert_eq(tg_params_numel(a.p), tg_params_numel(b.p));
    cr_expect_leq(max_abs_diff(tg_params_grad(a.p), tg_params_grad(b.p), tg_params_numel(a.p)),
                  tol, "parameter gradients");
    cr_expect_gt(max_abs_diff(tg_params_grad(a.p), (tg_real[1024]){0}, tg_params_numel(a.p)), 0,
                 "gradients must not be all zero");
    tg_params_free(a.p);
    tg_params_free(b.p);
}

Test(fused_cells, lstm_equals_composed) { compare(&tg_cell_lstm, &tg_cell_lstm_composed); }
Test(fused_cells, gru_equals_composed) { compare(&tg_cell_gru, &tg_cell_gru_composed); }
