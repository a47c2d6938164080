/* exp: y = exp(x).
 * VJP: dx += dy * y.
 * Saves: the output y. */
#include <math.h>

#include "tg_fastmath.h"

static void exp_run(tg_real *restrict y, const tg_real *restrict x, long n)
{
    for (long i = 0; i < n; i++) y[i] = exp(x[i]);
}

static void exp_vjp_run(tg_real *restrict dx, const tg_real *restrict dy,
                        const tg_real *restrict x, const tg_real *restrict y, long n)
{
    (void)x;
    for (long i = 0; i < n; i++) dx[i] += dy[i] * y[i];
}

tg_tensor *tg_exp_(tg_tape *t, tg_tensor *x, tg_src at)
{
    (void)at;
    return tg_unary_forward(t, x, TG_OP_EXP, exp_run);
}

void tg_vjp_exp(const tg_node *node, int threads) { tg_unary_vjp(node, threads, exp_vjp_run); }
