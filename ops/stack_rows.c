/* stack_rows: y = [x_0; x_1; ...; x_{n-1}], the rows of each input in turn
 * (all with the same cols). Joins per-step outputs into one T*B x H tensor so
 * the output layer runs as a single matmul over every step.
 * VJP: dx_k += dy[rows of x_k].  Saves the input list (arena copy). */
#include <string.h>

#include "tg_op.h"

tg_tensor *tg_stack_rows_(tg_tape *t, tg_tensor *const *xs, int n, tg_src at)
{
    TG_CHECK(n > 0, at, "stack_rows", "need at least one tensor, got %d", n);
    int rows = 0, cols = xs[0]->cols, rec = 0;
    for (int k = 0; k < n; k++) {
        TG_CHECK(xs[k]->cols == cols, at, "stack_rows", "tensor %d is %dx%d, tensor 0 has %d cols",
                 k, xs[k]->rows, xs[k]->cols, cols);
        rows += xs[k]->rows;
        rec |= tg_op_records(t, xs[k], NULL, NULL);
    }
    tg_tensor *y = tg_op_output(t, rows, cols, rec);
    size_t off = 0;
    for (int k = 0; k < n; k++) {
        memcpy(y->data + off, xs[k]->data, tg_numel(xs[k]) * sizeof(tg_real));
        off += tg_numel(xs[k]);
    }
    if (rec) {
        tg_tensor **many = tg_tape_alloc(t, (size_t)n * sizeof *many);
        memcpy(many, xs, (size_t)n * sizeof *many);
        tg_node *node = tg_op_record(t, TG_OP_STACK_ROWS, y, 0, NULL, NULL, NULL);
        node->many = many;
        for (int k = 0; k < n; k++) tg_node_uses(xs[k]);
        node->iarg[0] = n;
    }
    return y;
}

void tg_vjp_stack_rows(const tg_node *node, int threads)
{
    (void)threads;
    size_t off = 0;
    for (int k = 0; k < node->iarg[0]; k++) {
        const tg_tensor *x = node->many[k];
        for (int r = 0; x->grad && r < x->rows; r++)
            tg_col_sums_into(x->grad + (size_t)r * x->cols,
                             node->out->grad + off + (size_t)r * x->cols, 1, x->cols);
        off += tg_numel(x);
    }
}
