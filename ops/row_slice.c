/* row_slice: y = x[r0 : r0+k, :] as a view, with no copy. Row blocks of a
 * row-major matrix are contiguous, so y->data and y->grad point into x's.
 * VJP: dx[r0 : r0+k, :] += dy — already done, because dy *is* that block of
 * dx: every consumer of y adds straight into x's gradient. The node is kept
 * so the tape shows the op; its VJP has nothing left to do.
 * Saves nothing. y does not own its gradient, so backward never zeroes it
 * (zeroing it would wipe part of x's, e.g. a parameter's, gradient).
 * A view of a parameter is one for the weight panels too (TG_F_PARAM): its
 * products pack it once a step for every shard, and a decoding tape that
 * holds its parameters' panels holds its panels (an MGU cell's W_hf and
 * W_hc are row views of W_hh: on BLAS at every decoding step, a row's
 * logits differed alone and in a batch). */
#include "tg_op.h"

tg_tensor *tg_row_slice_(tg_tape *t, tg_tensor *x, int r0, int k, tg_src at)
{
    TG_CHECK(r0 >= 0 && k > 0 && r0 + k <= x->rows, at, "row_slice",
             "rows %d..%d out of range for %dx%d", r0, r0 + k - 1, x->rows, x->cols);
    tg_tensor *y = tg_tape_alloc(t, sizeof *y);
    y->rows = k;
    y->cols = x->cols;
    y->data = x->data + (size_t)r0 * x->cols;
    y->grad = NULL;
    y->flags = x->flags & TG_F_PARAM; /* a block of a parameter is fixed as it is */
    if (tg_op_records(t, x, NULL, NULL)) {
        y->grad = x->grad + (size_t)r0 * x->cols;
        tg_op_record(t, TG_OP_ROW_SLICE, y, 1, x, NULL, NULL)->iarg[0] = r0;
    }
    return y;
}

void tg_vjp_row_slice(const tg_node *node, int threads)
{
    (void)node;
    (void)threads;
}
