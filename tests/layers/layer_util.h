/* Helpers shared by the layer suites (header-only, static). */
#ifndef LAYER_UTIL_H
#define LAYER_UTIL_H

#include <math.h>

#include "tapegrad.h"
#include "tg_layers.h"

/* Finite differences are meaningful in the double build (tight); the float
 * build runs the same checks with a larger step and a tolerance set by float
 * rounding: |f| ~ 1e2 times 6e-8 over 2*eps = 1e-2 gives ~3e-4 of noise, and
 * the O(eps^2) truncation term ~1e-4, so 5e-3 still catches any wrong term
 * (those show up as errors of order 1e-1 and more). */
#ifdef TG_REAL_DOUBLE
#define GC_EPS 1e-6
#define GC_TOL 1e-6
#define EQ_TOL 1e-12 /* same math, different GEMM shapes */
#else
#define GC_EPS 1e-2
#define GC_TOL 5e-3
#define EQ_TOL 2e-6
#endif

/* A lone cell over T steps of X from s0 (lengths may be NULL): the cell as a
 * one-layer stack through tg_rnn_forward. */
static inline tg_tensor *unroll_cell(tg_tape *t, const tg_cell *cell, tg_tensor *X, int T, int B,
                                     tg_state s0, const int *lengths, tg_state *final)
{
    tg_rnn_stack one = tg_rnn_stack_of_cell(cell);
    tg_rnn_run run = {.T = T, .B = B, .x = X, .init = &s0, .lengths = lengths, .final = final};
    return tg_rnn_forward(t, &one, &run);
}

/* A stack over X (T*B rows) with everything else as named. */
static inline tg_tensor *stack_x(tg_tape *t, const tg_rnn_stack *s, tg_tensor *X, int T, int B,
                                 const tg_state *init, const int *lengths, tg_state *final,
                                 tg_rng *dropout_rng)
{
    tg_rnn_run run = {.T = T, .B = B, .x = X, .init = init, .lengths = lengths, .final = final,
                      .dropout_rng = dropout_rng};
    return tg_rnn_forward(t, s, &run);
}

/* The same fed by ids through emb. */
static inline tg_tensor *stack_ids(tg_tape *t, const tg_rnn_stack *s, const tg_embed *emb,
                                   const int *ids, int T, int B, const tg_state *init,
                                   const int *lengths, tg_state *final, tg_rng *dropout_rng)
{
    tg_rnn_run run = {.T = T, .B = B, .emb = emb, .ids = ids, .init = init, .lengths = lengths,
                      .final = final, .dropout_rng = dropout_rng};
    return tg_rnn_forward(t, s, &run);
}

static inline void fill_normal(tg_tensor *x, tg_rng *r, double scale)
{
    for (size_t i = 0; i < tg_numel(x); i++) x->data[i] = (tg_real)(scale * tg_rng_normal(r));
}

static inline double max_abs_diff(const tg_real *a, const tg_real *b, size_t n)
{
    double d = 0;
    for (size_t i = 0; i < n; i++) {
        double e = fabs((double)a[i] - (double)b[i]);
        if (!(e <= d)) d = e;
    }
    return d;
}

/* The parameters of cell c, in registration order; returns how many. */
static inline int cell_params(const tg_cell *c, tg_tensor **out)
{
    tg_tensor *all[8] = {c->w_ih, c->w_hh, c->b_ih, c->b_hh,
                         c->extra[0], c->extra[1], c->extra[2], c->extra[3]};
    int n = 0;
    for (int i = 0; i < 8; i++)
        if (all[i]) out[n++] = all[i];
    return n;
}

#endif
