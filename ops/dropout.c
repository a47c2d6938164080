/* dropout (inverted): y = x * m, m[i] = 1/(1-p) with probability 1-p, else 0.
 * The mask is drawn from the caller's generator, in element order.
 * VJP: dx += dy * m.  Saves the mask m.  p and the generator are not
 * differentiable. p == 0 returns x itself (nothing recorded). */
#include "tg_op.h"

tg_tensor *tg_dropout_(tg_tape *t, tg_tensor *x, double p, tg_rng *r, tg_src at)
{
    TG_CHECK(p >= 0 && p < 1, at, "dropout", "p = %g must be in [0, 1)", p);
    if (p == 0) return x;
    int rec = tg_op_records(t, x, NULL, NULL);
    tg_tensor *y = tg_op_output(t, x->rows, x->cols, rec);
    size_t n = tg_numel(x);
    tg_real *mask = tg_tape_alloc(t, n * sizeof(tg_real));
    tg_real keep = (tg_real)(1.0 / (1.0 - p));
    for (size_t i = 0; i < n; i++) {
        mask[i] = tg_rng_uniform(r) < p ? 0 : keep;
        y->data[i] = x->data[i] * mask[i];
    }
    if (rec) tg_op_record(t, TG_OP_DROPOUT, y, 1, x, NULL, NULL)->saved = mask;
    return y;
}

void tg_vjp_dropout(const tg_node *node, int threads)
{
    const tg_tensor *x = node->in[0], *y = node->out;
    (void)threads;
    if (!x->grad) return;
    for (size_t i = 0; i < tg_numel(y); i++) x->grad[i] += y->grad[i] * node->saved[i];
}
