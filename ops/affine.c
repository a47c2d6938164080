/* affine: Y = X W^T + B, the product of a linear layer and its bias in one op.
 *   X m x k, W n x k (PyTorch's layout), B 1 x n (a bias row broadcast to every
 *   row) or m x n.
 * affine_cols: Y = X W[:, c0 : c0+k]^T (+ B), W n x K with c0 + k <= K, B as
 *   above or none: a product with a range of W's columns, read in place.
 * VJP:
 *   dX += dY W         dW += dY^T X    (matmul's, with W transposed; dX is
 *                      written, =, when this is X's one use: X is claimed;
 *                      with a range, W and dW are its columns c0 .. c0+k-1)
 *   dB += dY           (m x n), or dB[j] += sum_i dY[i,j] (1 x n, rows in order)
 * Saves nothing beyond its inputs; iarg[0]: X was a constant of zeros (matmul's
 * tg_matmul_product skipped the product, and dW gets nothing); iarg[1]: c0.
 * Why a column range: a decoder's layer 0 reads [embedding | context] (or
 * [embedding | input feed]) through one W_ih; the embedding's part is
 * projected once for all steps, the context's once a sentence, the feed's at
 * every step. Column slices of W_ih (col_slice) were copies made on every
 * shard's tape, whose products ran on BLAS or on panels each shard packed
 * for itself, and whose gradients were added back column by column; the
 * range is packed once from the parameter for every shard, and its gradient
 * goes straight into W's columns (the built-in corpus's main job: those
 * slices' products on BLAS and their copies were about a tenth of a step).
 * Why not add(matmul(X, W^T), B): the product adds B's rows as it stores Y
 * (weight panels), or Y starts as B's rows and GEMM adds into it (beta 1),
 * so there is one m x n tensor and one gradient instead of two, and no pass
 * of add over them forward and backward; on an output layer of 8000 words
 * that was 5% of a training step (config g of BENCHMARKS.md), and the copy
 * of B into Y another 1.5%. The product runs where matmul's runs (weight
 * panels for few rows, else tg_gemm), and dW is deferred as matmul's is. */
#include "tg_op.h"

static tg_tensor *affine(tg_tape *t, tg_tensor *x, tg_tensor *w, int c0, tg_tensor *b,
                         tg_src at, const char *op)
{
    int m = x->rows, n = w->rows;
    int bcast = b && b->rows == 1;
    TG_CHECK(!b || (b->cols == n && (bcast || b->rows == m)), at, op,
             "B is %dx%d, want 1x%d or %dx%d", b->rows, b->cols, n, m, n);
    int rec = tg_op_records(t, x, w, b);
    tg_tensor *y = tg_op_output(t, m, n, rec);
    int zero_x = tg_matmul_product(t, x, w, c0, 0, 1, b ? b->data : NULL, bcast ? 0 : n, y->data);
    if (rec) {
        tg_node *node = tg_op_record(t, TG_OP_AFFINE, y, b ? 3 : 2, x, w, b);
        node->iarg[0] = zero_x;
        node->iarg[1] = c0;
        tg_claim_grad_write(x);
    }
    return y;
}

tg_tensor *tg_affine_(tg_tape *t, tg_tensor *x, tg_tensor *w, tg_tensor *b, tg_src at)
{
    TG_CHECK(w->cols == x->cols, at, "affine",
             "inner sizes differ: X %dx%d, W %dx%d (used as W^T)", x->rows, x->cols, w->rows,
             w->cols);
    TG_CHECK(b != NULL, at, "affine", "no bias (tg_affine_cols takes none)");
    return affine(t, x, w, 0, b, at, "affine");
}

tg_tensor *tg_affine_cols_(tg_tape *t, tg_tensor *x, tg_tensor *w, int c0, tg_tensor *b,
                           tg_src at)
{
    TG_CHECK(c0 >= 0 && c0 <= w->cols - x->cols, at, "affine_cols",
             "columns %d..%d of W %dx%d for X %dx%d: outside W", c0, c0 + x->cols - 1, w->rows,
             w->cols, x->rows, x->cols);
    return affine(t, x, w, c0, b, at, "affine_cols");
}

void tg_vjp_affine(const tg_node *node, int threads)
{
    const tg_tensor *x = node->in[0], *w = node->in[1], *b = node->in[2], *y = node->out;
    tg_matmul_backprop(node, x, w, node->iarg[1], 0, 1, node->iarg[0], y, threads);
    if (!b || !b->grad) return;
    if (b->rows == 1 && y->rows != 1)
        tg_col_sums_into(b->grad, y->grad, y->rows, y->cols);
    else
        for (size_t i = 0; i < tg_numel(y); i++) b->grad[i] += y->grad[i];
}
