/* sum: y = sum_ij x[i,j], a 1 x 1 tensor. Accumulated in double, in a fixed order.
 * VJP: dx[i,j] += dy.  Saves nothing. */
#include "tg_op.h"

tg_tensor *tg_sum_(tg_tape *t, tg_tensor *x, tg_src at)
{
    (void)at;
    int rec = tg_op_records(t, x, NULL, NULL);
    tg_tensor *y = tg_op_output(t, 1, 1, rec);
    double s = 0;
    for (size_t i = 0; i < tg_numel(x); i++) s += x->data[i];
    y->data[0] = (tg_real)s;
    if (rec) tg_op_record(t, TG_OP_SUM, y, 1, x, NULL, NULL);
    return y;
}

void tg_vjp_sum(const tg_node *node, int threads)
{
    const tg_tensor *x = node->in[0];
    (void)threads;
    if (!x->grad) return;
    tg_real g = node->out->grad[0];
    for (size_t i = 0; i < tg_numel(x); i++) x->grad[i] += g;
}
