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

/* The largest x[j] over kept positions (mask NULL: all; at least one kept):
 * tg_row_max's lanes without a mask, exact either way. */
static inline __attribute__((always_inline)) tg_real kept_max(const tg_real *x, const int *mask,
                                                              int k)
{
    if (!mask) return tg_row_max(x, k);
    int j = 0;
    while (mask[j]) j++;
    tg_real mx = x[j];
    for (; j < k; j++)
        if (!mask[j] && x[j] > mx) mx = x[j];
    return mx;
}

TG_SIMD_CLONES double tg_k_softmax_row(const tg_real *restrict x, const int *restrict mask,
                                       tg_real *restrict y, int k)
{
    tg_real mx = kept_max(x, mask, k);
    if (mask)
        for (int j = 0; j < k; j++) y[j] = mask[j] ? 0 : tg_fexp(x[j] - mx);
    else
        for (int j = 0; j < k; j++) y[j] = tg_fexp(x[j] - mx);
    double acc[8] = {0};
    int j = 0;
    for (; j + 8 <= k; j += 8)
        for (int q = 0; q < 8; q++) acc[q] += y[j + q];
    for (; j < k; j++) acc[j % 8] += y[j];
    double s = ((acc[0] + acc[1]) + (acc[2] + acc[3])) + ((acc[4] + acc[5]) + (acc[6] + acc[7]));
    tg_real inv = (tg_real)(1.0 / s); /* s >= 1: the max term is exp(0) */
    for (int q = 0; q < k; q++) y[q] *= inv;
    return (double)mx + log(s);
}
