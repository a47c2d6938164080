/* softmax: a softmax over each row of x (N x K), leaving out masked positions.
 *   mask (N*K ints, row-major like x; nonzero = leave out) or NULL = none.
 *   y[i,j] = exp(x[i,j] - m_i) / sum_{k kept} exp(x[i,k] - m_i)   for kept j
 *   y[i,j] = 0                                                     for masked j
 *   m_i = max over kept k of x[i,k] (stable for any magnitude).
 *   A row whose positions are all masked is all zeros (never NaN): attention
 *   over an empty source gives a zero context.
 * VJP: dx[i,j] += y[i,j] * (dy[i,j] - sum_k y[i,k] dy[i,k]); masked positions
 *   (y = 0) and all-masked rows get nothing. The mask is an integer input:
 *   copied into nothing, never differentiated (the VJP reads y alone).
 * Saves: the output y. Masked values of x are never read, so -inf or NaN
 * there changes nothing. */
#include "tg_fastmath.h"

/* One row: y = softmax of x over kept positions, 0 elsewhere
 * (tg_k_softmax_row: the same bits padded and alone). */
static void softmax_row(const tg_real *x, const int *mask, tg_real *y, int k)
{
    int kept = 0;
    for (int j = 0; j < k && !kept; j++) kept = !mask || !mask[j];
    if (!kept) { /* every position masked */
        for (int j = 0; j < k; j++) y[j] = 0;
        return;
    }
    tg_k_softmax_row(x, mask, y, k);
}

tg_tensor *tg_softmax_(tg_tape *t, tg_tensor *x, const int *mask, tg_src at)
{
    TG_CHECK(x->rows > 0 && x->cols > 0, at, "softmax", "empty input %dx%d", x->rows, x->cols);
    int rec = tg_op_records(t, x, NULL, NULL);
    tg_tensor *y = tg_op_output(t, x->rows, x->cols, rec);
    int n = x->rows, k = x->cols;
    TG_PAR_FOR(tg_tape_threads(t), (long)n * k > TG_PAR_MIN, (int i = 0; i < n; i++), {
        softmax_row(x->data + (size_t)i * k, mask ? mask + (size_t)i * k : NULL,
                    y->data + (size_t)i * k, k);
    });
    if (rec) tg_op_record(t, TG_OP_SOFTMAX, y, 1, x, NULL, NULL);
    return y;
}

void tg_vjp_softmax(const tg_node *node, int threads)
{
    const tg_tensor *x = node->in[0], *y = node->out;
    if (!x->grad) return;
    int n = y->rows, k = y->cols;
    TG_PAR_FOR(threads, (long)n * k > TG_PAR_MIN, (int i = 0; i < n; i++), {
        const tg_real *yi = y->data + (size_t)i * k, *gi = y->grad + (size_t)i * k;
        tg_real *dx = x->grad + (size_t)i * k;
        double dot = 0;
        for (int j = 0; j < k; j++) dot += (double)yi[j] * gi[j];
        for (int j = 0; j < k; j++) dx[j] += yi[j] * (gi[j] - (tg_real)dot);
    });
}
