/* affine: Y = X W^T + B, the product of a linear layer and its bias in one op.
 *   X m x k, W n x k (PyTorch's layout), B 1 x n (a bias row broadcast to every
 *   row) or m x n.
 * VJP:
 *   dX += dY W         dW += dY^T X    (matmul's, with W transposed; dX is
 *                      written, =, when this is X's one use: X is claimed)
 *   dB += dY           (m x n), or dB[j] += sum_i dY[i,j] (1 x n, rows in order)
 * Saves nothing beyond its inputs; iarg[0]: X was a constant of zeros (matmul's
 * tg_matmul_product skipped the product, and dW gets nothing).
 * Why not add(matmul(X, W^T), B): the product adds B's rows as it stores Y
 * (weight panels), or Y starts as B's rows and GEMM adds into it (beta 1),
 * so there is one m x n tensor and one gradient instead of two, and no pass
 * of add over them forward and backward; on an output layer of 8000 words
 * that was 5% of a training step (config g of BENCHMARKS.md), and the copy
 * of B into Y another 1.5%. The product runs where matmul's runs (weight
 * panels for few rows, else tg_gemm), and dW is deferred as matmul's is. */
#include "tg_op.h"

tg_tensor *tg_affine_(tg_tape *t, tg_tensor *x, tg_tensor *w, tg_tensor *b, tg_src at)
{
    int m = x->rows, k = x->cols, n = w->rows;
    TG_CHECK(w->cols == k, at, "affine", "inner sizes differ: X %dx%d, W %dx%d (used as W^T)",
             x->rows, x->cols, w->rows, w->cols);
    int bcast = b->rows == 1;
    TG_CHECK(b->cols == n && (bcast || b->rows == m), at, "affine",
             "B is %dx%d, want 1x%d or %dx%d", b->rows, b->cols, n, m, n);
    int rec = tg_op_records(t, x, w, b);
    tg_tensor *y = tg_op_output(t, m, n, rec);
    int zero_x = tg_matmul_product(t, x, w, 0, 1, b->data, bcast ? 0 : n, y->data);
    if (rec) {
        tg_op_record(t, TG_OP_AFFINE, y, 3, x, w, b)->iarg[0] = zero_x;
        tg_claim_grad_write(x);
    }
    return y;
}

void tg_vjp_affine(const tg_node *node, int threads)
{
    const tg_tensor *x = node->in[0], *w = node->in[1], *b = node->in[2], *y = node->out;
    tg_matmul_backprop(node, x, w, 0, 1, node->iarg[0], y, threads);
    if (!b->grad) return;
    if (b->rows == 1 && y->rows != 1)
        tg_col_sums_into(b->grad, y->grad, y->rows, y->cols);
    else
        for (size_t i = 0; i < tg_numel(y); i++) b->grad[i] += y->grad[i];
}
