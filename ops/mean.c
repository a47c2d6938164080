/* mean: y = (1/n) sum_ij x[i,j], n = rows * cols, a 1 x 1 tensor.
 * VJP: dx[i,j] += dy / n.  Saves nothing. */
#include "tg_op.h"

tg_tensor *tg_mean_(tg_tape *t, tg_tensor *x, tg_src at)
{
    (void)at;
    int rec = tg_op_records(t, x, NULL, NULL);
    tg_tensor *y = tg_op_output(t, 1, 1, rec);
    double s = 0;
    for (size_t i = 0; i < tg_numel(x); i++) s += x->data[i];
    y->data[0] = (tg_real)(s / (double)tg_numel(x));
    if (rec) tg_op_record(t, TG_OP_MEAN, y, 1, x, NULL, NULL);
    return y;
}

void tg_vjp_mean(const tg_node *node, int threads)
{
    const tg_tensor *x = node->in[0];
    (void)threads;
    if (!x->grad) return;
    tg_real g = (tg_real)(node->out->grad[0] / (double)tg_numel(x));
    for (size_t i = 0; i < tg_numel(x); i++) x->grad[i] += g;
}
