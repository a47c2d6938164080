/* concat: y = [a | b], columns of a then columns of b (same rows).
 * VJP: da += dy[:, :a.cols];  db += dy[:, a.cols:].  Saves nothing. */
#include <string.h>

#include "tg_op.h"

tg_tensor *tg_concat_(tg_tape *t, tg_tensor *a, tg_tensor *b, tg_src at)
{
    TG_CHECK(a->rows == b->rows, at, "concat", "row counts differ: %dx%d and %dx%d", a->rows,
             a->cols, b->rows, b->cols);
    int rec = tg_op_records(t, a, b, NULL);
    int ca = a->cols, cb = b->cols, cy = ca + cb;
    tg_tensor *y = tg_op_output(t, a->rows, cy, rec);
    for (int i = 0; i < a->rows; i++) {
        memcpy(y->data + (size_t)i * cy, a->data + (size_t)i * ca, ca * sizeof(tg_real));
        memcpy(y->data + (size_t)i * cy + ca, b->data + (size_t)i * cb, cb * sizeof(tg_real));
    }
    if (rec) tg_op_record(t, TG_OP_CONCAT, y, 2, a, b, NULL);
    return y;
}

static void add_cols(tg_real *dst, int dst_cols, const tg_real *src, int src_cols, int c0,
                     int rows)
{
    for (int i = 0; i < rows; i++)
        for (int j = 0; j < dst_cols; j++)
            dst[(size_t)i * dst_cols + j] += src[(size_t)i * src_cols + c0 + j];
}

void tg_vjp_concat(const tg_node *node, int threads)
{
    const tg_tensor *a = node->in[0], *b = node->in[1], *y = node->out;
    (void)threads;
    if (a->grad) add_cols(a->grad, a->cols, y->grad, y->cols, 0, y->rows);
    if (b->grad) add_cols(b->grad, b->cols, y->grad, y->cols, a->cols, y->rows);
}
