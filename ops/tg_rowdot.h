/* A dot product of two rows in a fixed order (private to ops/).
 * Why not a plain loop: a single running sum is a chain of dependent adds
 * that the compiler may not reorder (no -ffast-math), so it runs at one add
 * per FP latency; eight partial sums in a fixed order vectorize, and the
 * result never depends on threads. Used by the attention ops, which take
 * B*S such products per decoder step. */
#ifndef TG_ROWDOT_H
#define TG_ROWDOT_H

#include "tg_op.h"

static inline tg_real tg_rowdot(const tg_real *restrict x, const tg_real *restrict y, int n)
{
    tg_real acc[8] = {0};
    int j = 0;
    for (; j + 8 <= n; j += 8)
        for (int k = 0; k < 8; k++) acc[k] += x[j + k] * y[j + k];
    for (; j < n; j++) acc[0] += x[j] * y[j];
    return ((acc[0] + acc[1]) + (acc[2] + acc[3])) + ((acc[4] + acc[5]) + (acc[6] + acc[7]));
}

#endif
