/* log: y = log(x), x > 0 (log of 0 is -inf, of a negative NaN, as in C).
 * VJP: dx += dy / x.
 * Saves: nothing beyond x. */
#include <math.h>

#include "tg_fastmath.h"

static void log_run(tg_real *restrict y, const tg_real *restrict x, long n)
{
    for (long i = 0; i < n; i++) y[i] = log(x[i]);
}

static void log_vjp_run(tg_real *restrict dx, const tg_real *restrict dy,
                        const tg_real *restrict x, const tg_real *restrict y, long n)
{
    (void)y;
    for (long i = 0; i < n; i++) dx[i] += dy[i] / x[i];
}

tg_tensor *tg_log_(tg_tape *t, tg_tensor *x, tg_src at)
{
    (void)at;
    return tg_unary_forward(t, x, TG_OP_LOG, log_run);
}

void tg_vjp_log(const tg_node *node, int threads) { tg_unary_vjp(node, threads, log_vjp_run); }
