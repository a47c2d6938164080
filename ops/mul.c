/* mul (Hadamard): C = A * B element-wise (same shapes).
 * VJP: dA += dC * B;  dB += dC * A.  Saves nothing beyond its inputs. */
#include "tg_fastmath.h"

tg_tensor *tg_mul_(tg_tape *t, tg_tensor *a, tg_tensor *b, tg_src at)
{
    TG_CHECK(a->rows == b->rows && a->cols == b->cols, at, "mul", "shapes %dx%d and %dx%d differ",
             a->rows, a->cols, b->rows, b->cols);
    int rec = tg_op_records(t, a, b, NULL);
    tg_tensor *c = tg_op_output(t, a->rows, a->cols, rec);
    long n = (long)tg_numel(c);
    TG_PAR_FOR(tg_tape_threads(t), n > TG_PAR_MIN, (long i = 0; i < n; i++), {
        c->data[i] = a->data[i] * b->data[i];
    });
    if (rec) tg_op_record(t, TG_OP_MUL, c, 2, a, b, NULL);
    return c;
}

void tg_vjp_mul(const tg_node *node, int threads)
{
    const tg_tensor *a = node->in[0], *b = node->in[1], *c = node->out;
    long n = (long)tg_numel(c);
    TG_PAR_FOR(threads, n > TG_PAR_MIN, (long i = 0; i < n; i++), {
        if (a->grad) a->grad[i] += c->grad[i] * b->data[i];
        if (b->grad) b->grad[i] += c->grad[i] * a->data[i];
    });
}
