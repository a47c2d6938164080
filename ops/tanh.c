/* tanh: y = tanh(x) (SIMD tg_fastmath.h in the float build, libm in the double one).
 * VJP: dx += dy * (1 - y^2).
 * Saves: the output y. */
#include <math.h>

#include "tg_fastmath.h"

tg_tensor *tg_tanh_(tg_tape *t, tg_tensor *x, tg_src at)
{
    (void)at;
    int rec = tg_op_records(t, x, NULL, NULL);
    tg_tensor *y = tg_op_output(t, x->rows, x->cols, rec);
    long n = (long)tg_numel(y);
    /* SIMD kernel (tg_fastmath.h), one contiguous block per thread */
    int nth = tg_tape_threads(t);
    if (nth > 1 && n > TG_PAR_MIN) {
#pragma omp parallel num_threads(nth)
        {
            long lo, hi;
            tg_block_range(n, tg_omp_id(), tg_omp_count(), &lo, &hi);
            tg_k_tanh(y->data + lo, x->data + lo, hi - lo);
        }
    } else {
        tg_k_tanh(y->data, x->data, n);
    }
    if (rec) tg_op_record(t, TG_OP_TANH, y, 1, x, NULL, NULL);
    return y;
}

void tg_vjp_tanh(const tg_node *node, int threads)
{
    const tg_tensor *x = node->in[0], *y = node->out;
    if (!x->grad) return;
    long n = (long)tg_numel(y);
    TG_PAR_FOR(threads, n > TG_PAR_MIN, (long i = 0; i < n; i++), {
        tg_real g = y->grad[i], out = y->data[i], v = x->data[i];
        (void)out;
        (void)v;
        x->grad[i] += g * (1 - out * out);
    });
}
