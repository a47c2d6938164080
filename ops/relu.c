/* relu: y = max(x, 0).
 * VJP: dx += dy where x > 0 (the subgradient at 0 is 0).
 * Saves: nothing beyond x. */
#include <math.h>

#include "tg_fastmath.h"

tg_tensor *tg_relu_(tg_tape *t, tg_tensor *x, tg_src at)
{
    (void)at;
    int rec = tg_op_records(t, x, NULL, NULL);
    tg_tensor *y = tg_op_output(t, x->rows, x->cols, rec);
    long n = (long)tg_numel(y);
    TG_PAR_FOR(tg_tape_threads(t), n > TG_PAR_MIN, (long i = 0; i < n; i++), {
        tg_real v = x->data[i];
        y->data[i] = v > 0 ? v : 0;
    });
    if (rec) tg_op_record(t, TG_OP_RELU, y, 1, x, NULL, NULL);
    return y;
}

void tg_vjp_relu(const tg_node *node, int threads)
{
    const tg_tensor *x = node->in[0], *y = node->out;
    if (!x->grad) return;
    long n = (long)tg_numel(y);
    TG_PAR_FOR(threads, n > TG_PAR_MIN, (long i = 0; i < n; i++), {
        tg_real g = y->grad[i], out = y->data[i], v = x->data[i];
        (void)out;
        (void)v;
        x->grad[i] += v > 0 ? g : 0;
    });
}
