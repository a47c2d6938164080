/* add: C = A + B, where B is A's shape or a 1 x cols row broadcast to every row.
 * VJP: dA += dC;  dB += dC (same shape) or dB[j] += sum_i dC[i,j] (broadcast).
 * Saves nothing. */
#include "tg_fastmath.h"

tg_tensor *tg_add_(tg_tape *t, tg_tensor *a, tg_tensor *b, tg_src at)
{
    int bcast = b->rows == 1 && a->rows != 1;
    TG_CHECK(b->cols == a->cols && (bcast || b->rows == a->rows), at, "add",
             "shapes %dx%d and %dx%d differ (B may also be 1x%d)", a->rows, a->cols, b->rows,
             b->cols, a->cols);
    int rec = tg_op_records(t, a, b, NULL);
    tg_tensor *c = tg_op_output(t, a->rows, a->cols, rec);
    int rows = a->rows, cols = a->cols;
    long n = (long)rows * cols;
    TG_PAR_FOR(tg_tape_threads(t), n > TG_PAR_MIN, (int i = 0; i < rows; i++), {
        const tg_real *ai = a->data + (size_t)i * cols;
        const tg_real *bi = b->data + (bcast ? 0 : (size_t)i * cols);
        tg_real *ci = c->data + (size_t)i * cols;
        for (int j = 0; j < cols; j++) ci[j] = ai[j] + bi[j];
    });
    if (rec) tg_op_record(t, TG_OP_ADD, c, 2, a, b, NULL);
    return c;
}

/* A SIMD clone: on an output layer of 8000 words it reads N x 8000 values. */
TG_SIMD_CLONES void tg_col_sums_into(tg_real *acc, const tg_real *x, int rows, int cols)
{
    for (int i = 0; i < rows; i++) {
        const tg_real *xi = x + (size_t)i * cols;
        for (int j = 0; j < cols; j++) acc[j] += xi[j];
    }
}

void tg_vjp_add(const tg_node *node, int threads)
{
    const tg_tensor *a = node->in[0], *b = node->in[1], *c = node->out;
    size_t n = tg_numel(c);
    (void)threads;
    if (a->grad)
        for (size_t i = 0; i < n; i++) a->grad[i] += c->grad[i];
    if (!b->grad) return;
    if (b->rows == c->rows) {
        for (size_t i = 0; i < n; i++) b->grad[i] += c->grad[i];
        return;
    }
    tg_col_sums_into(b->grad, c->grad, c->rows, c->cols); /* broadcast */
}
