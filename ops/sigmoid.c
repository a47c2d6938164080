/* sigmoid: y = 1 / (1 + exp(-x)), computed without overflow for large |x|
 * (SIMD exp of tg_fastmath.h in the float build, libm in the double one).
 * VJP: dx += dy * y * (1 - y).
 * Saves: the output y. */
#include <math.h>

#include "tg_fastmath.h"

static void sigmoid_vjp_run(tg_real *restrict dx, const tg_real *restrict dy,
                            const tg_real *restrict x, const tg_real *restrict y, long n)
{
    (void)x;
    for (long i = 0; i < n; i++) dx[i] += dy[i] * y[i] * (1 - y[i]);
}

tg_tensor *tg_sigmoid_(tg_tape *t, tg_tensor *x, tg_src at)
{
    (void)at;
    return tg_unary_forward(t, x, TG_OP_SIGMOID, tg_k_sigmoid);
}

void tg_vjp_sigmoid(const tg_node *node, int threads)
{
    tg_unary_vjp(node, threads, sigmoid_vjp_run);
}
