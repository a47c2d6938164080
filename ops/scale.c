/* scale: y = c * x for a constant c (farg).
 * VJP: dx += c * dy.  Saves nothing; c is not differentiable. */
#include "tg_fastmath.h"

tg_tensor *tg_scale_(tg_tape *t, tg_tensor *x, double c, tg_src at)
{
    (void)at;
    int rec = tg_op_records(t, x, NULL, NULL);
    tg_tensor *y = tg_op_output(t, x->rows, x->cols, rec);
    tg_real cr = (tg_real)c;
    long n = (long)tg_numel(y);
    TG_PAR_FOR(tg_tape_threads(t), n > TG_PAR_MIN, (long i = 0; i < n; i++), {
        y->data[i] = cr * x->data[i];
    });
    if (rec) tg_op_record(t, TG_OP_SCALE, y, 1, x, NULL, NULL)->farg = c;
    return y;
}

void tg_vjp_scale(const tg_node *node, int threads)
{
    const tg_tensor *x = node->in[0], *y = node->out;
    if (!x->grad) return;
    tg_real cr = (tg_real)node->farg;
    long n = (long)tg_numel(y);
    TG_PAR_FOR(threads, n > TG_PAR_MIN, (long i = 0; i < n; i++), {
        x->grad[i] += cr * y->grad[i];
    });
}
