/* one_minus: y = 1 - x (the GRU's complement gate).
 * VJP: dx -= dy.
 * Saves: nothing. */
#include <math.h>

#include "tg_fastmath.h"

static void one_minus_run(tg_real *restrict y, const tg_real *restrict x, long n)
{
    for (long i = 0; i < n; i++) y[i] = 1 - x[i];
}

static void one_minus_vjp_run(tg_real *restrict dx, const tg_real *restrict dy,
                              const tg_real *restrict x, const tg_real *restrict y, long n)
{
    (void)x, (void)y;
    for (long i = 0; i < n; i++) dx[i] += -dy[i];
}

tg_tensor *tg_one_minus_(tg_tape *t, tg_tensor *x, tg_src at)
{
    (void)at;
    return tg_unary_forward(t, x, TG_OP_ONE_MINUS, one_minus_run);
}

void tg_vjp_one_minus(const tg_node *node, int threads)
{
    tg_unary_vjp(node, threads, one_minus_vjp_run);
}
