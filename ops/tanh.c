/* tanh: y = tanh(x) (SIMD tg_fastmath.h in the float build, libm in the double one).
 * VJP: dx += dy * (1 - y^2).
 * Saves: the output y. */
#include <math.h>

#include "tg_fastmath.h"

static void tanh_vjp_run(tg_real *restrict dx, const tg_real *restrict dy,
                         const tg_real *restrict x, const tg_real *restrict y, long n)
{
    (void)x;
    for (long i = 0; i < n; i++) dx[i] += dy[i] * (1 - y[i] * y[i]);
}

tg_tensor *tg_tanh_(tg_tape *t, tg_tensor *x, tg_src at)
{
    (void)at;
    return tg_unary_forward(t, x, TG_OP_TANH, tg_k_tanh);
}

void tg_vjp_tanh(const tg_node *node, int threads) { tg_unary_vjp(node, threads, tanh_vjp_run); }
