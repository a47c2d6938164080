/* sub: C = A - B (same shapes).
 * VJP: dA += dC;  dB -= dC.  Saves nothing. */
#include "tg_fastmath.h"

tg_tensor *tg_sub_(tg_tape *t, tg_tensor *a, tg_tensor *b, tg_src at)
{
    TG_CHECK(a->rows == b->rows && a->cols == b->cols, at, "sub", "shapes %dx%d and %dx%d differ",
             a->rows, a->cols, b->rows, b->cols);
    int rec = tg_op_records(t, a, b, NULL);
    tg_tensor *c = tg_op_output(t, a->rows, a->cols, rec);
    long n = (long)tg_numel(c);
    TG_PAR_FOR(tg_tape_threads(t), n > TG_PAR_MIN, (long i = 0; i < n; i++), {
        c->data[i] = a->data[i] - b->data[i];
    });
    if (rec) tg_op_record(t, TG_OP_SUB, c, 2, a, b, NULL);
    return c;
}

void tg_vjp_sub(const tg_node *node, int threads)
{
    const tg_tensor *a = node->in[0], *b = node->in[1], *c = node->out;
    size_t n = tg_numel(c);
    (void)threads;
    if (a->grad)
        for (size_t i = 0; i < n; i++) a->grad[i] += c->grad[i];
    if (b->grad)
        for (size_t i = 0; i < n; i++) b->grad[i] -= c->grad[i];
}
