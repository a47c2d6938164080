/* log: y = log(x), x > 0 (log of 0 is -inf, of a negative NaN, as in C).
 * VJP: dx += dy / x.
 * Saves: nothing beyond x. */
#include <math.h>

#include "tg_fastmath.h"

tg_tensor *tg_log_(tg_tape *t, tg_tensor *x, tg_src at)
{
    (void)at;
    int rec = tg_op_records(t, x, NULL, NULL);
    tg_tensor *y = tg_op_output(t, x->rows, x->cols, rec);
    long n = (long)tg_numel(y);
    TG_PAR_FOR(tg_tape_threads(t), n > TG_PAR_MIN, (long i = 0; i < n; i++), {
        tg_real v = x->data[i];
        y->data[i] = log(v);
    });
    if (rec) tg_op_record(t, TG_OP_LOG, y, 1, x, NULL, NULL);
    return y;
}

void tg_vjp_log(const tg_node *node, int threads)
{
    const tg_tensor *x = node->in[0], *y = node->out;
    if (!x->grad) return;
    long n = (long)tg_numel(y);
    TG_PAR_FOR(threads, n > TG_PAR_MIN, (long i = 0; i < n; i++), {
        tg_real g = y->grad[i], out = y->data[i], v = x->data[i];
        (void)out;
        (void)v;
        x->grad[i] += g / v;
    });
}
