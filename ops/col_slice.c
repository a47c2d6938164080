/* col_slice: y = x[:, c0 : c0+k] (a copy; columns are strided in row-major).
 * VJP: dx[:, c0 : c0+k] += dy.  Saves nothing; iarg[0] = c0. */
#include <string.h>

#include "tg_op.h"

tg_tensor *tg_col_slice_(tg_tape *t, tg_tensor *x, int c0, int k, tg_src at)
{
    TG_CHECK(c0 >= 0 && k > 0 && c0 + k <= x->cols, at, "col_slice",
             "columns %d..%d out of range for %dx%d", c0, c0 + k - 1, x->rows, x->cols);
    int rec = tg_op_records(t, x, NULL, NULL);
    tg_tensor *y = tg_op_output(t, x->rows, k, rec);
    for (int i = 0; i < x->rows; i++)
        memcpy(y->data + (size_t)i * k, x->data + (size_t)i * x->cols + c0, k * sizeof(tg_real));
    if (rec) tg_op_record(t, TG_OP_COL_SLICE, y, 1, x, NULL, NULL)->iarg[0] = c0;
    return y;
}

void tg_vjp_col_slice(const tg_node *node, int threads)
{
    const tg_tensor *x = node->in[0], *y = node->out;
    (void)threads;
    if (!x->grad) return;
    int c0 = node->iarg[0], k = y->cols;
    for (int i = 0; i < y->rows; i++) {
        tg_real *gx = x->grad + (size_t)i * x->cols + c0;
        const tg_real *gy = y->grad + (size_t)i * k;
        for (int j = 0; j < k; j++) gx[j] += gy[j];
    }
}
