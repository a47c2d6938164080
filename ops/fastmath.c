/* SIMD element-wise kernels over the inline functions of tg_fastmath.h. */
#include "tg_fastmath.h"

TG_SIMD_CLONES void tg_k_sigmoid(tg_real *y, const tg_real *x, long n)
{
    for (long i = 0; i < n; i++) y[i] = tg_fsigmoid(x[i]);
}

TG_SIMD_CLONES void tg_k_tanh(tg_real *y, const tg_real *x, long n)
{
    for (long i = 0; i < n; i++) y[i] = tg_ftanh(x[i]);
}
