/* relu: y = max(x, 0).
 * VJP: dx += dy where x > 0 (the subgradient at 0 is 0).
 * Saves: nothing beyond x. */
#include <math.h>

#include "tg_fastmath.h"

static void relu_run(tg_real *restrict y, const tg_real *restrict x, long n)
{
    for (long i = 0; i < n; i++) y[i] = x[i] > 0 ? x[i] : 0;
}

static void relu_vjp_run(tg_real *restrict dx, const tg_real *restrict dy,
                         const tg_real *restrict x, const tg_real *restrict y, long n)
{
    (void)y;
    for (long i = 0; i < n; i++) dx[i] += x[i] > 0 ? dy[i] : 0;
}

tg_tensor *tg_relu_(tg_tape *t, tg_tensor *x, tg_src at)
{
    (void)at;
    return tg_unary_forward(t, x, TG_OP_RELU, relu_run);
}

void tg_vjp_relu(const tg_node *node, int threads) { tg_unary_vjp(node, threads, relu_vjp_run); }
