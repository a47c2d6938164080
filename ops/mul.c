/* mul (Hadamard): C = A * B element-wise, where B is A's shape or a 1 x cols
 * row broadcast to every row (as add broadcasts a bias): a per-unit weight
 * times a batch, e.g. a peephole LSTM's w_c * c or IndRNN's u * h.
 *   same shape:  C[i,j] = A[i,j] B[i,j]
 *   broadcast:   C[i,j] = A[i,j] B[0,j]
 * VJP: dA += dC * B (B broadcast as in the forward);
 *      dB += dC * A (same shape) or dB[j] += sum_i dC[i,j] A[i,j] (broadcast,
 *      rows summed in order 0..rows-1, never split over threads).
 * Saves nothing beyond its inputs. */
#include "tg_fastmath.h"

tg_tensor *tg_mul_(tg_tape *t, tg_tensor *a, tg_tensor *b, tg_src at)
{
    int bcast = b->rows == 1 && a->rows != 1;
    TG_CHECK(a->cols == b->cols && (bcast || a->rows == b->rows), at, "mul",
             "shapes %dx%d and %dx%d differ (B may also be 1x%d)", a->rows, a->cols, b->rows,
             b->cols, a->cols);
    int rec = tg_op_records(t, a, b, NULL);
    tg_tensor *c = tg_op_output(t, a->rows, a->cols, rec);
    long n = (long)tg_numel(c);
    if (bcast) {
        int rows = a->rows, cols = a->cols;
        TG_PAR_FOR(tg_tape_threads(t), n > TG_PAR_MIN, (int i = 0; i < rows; i++), {
            const tg_real *ai = a->data + (size_t)i * cols;
            tg_real *ci = c->data + (size_t)i * cols;
            for (int j = 0; j < cols; j++) ci[j] = ai[j] * b->data[j];
        });
    } else {
        TG_PAR_FOR(tg_tape_threads(t), n > TG_PAR_MIN, (long i = 0; i < n; i++), {
            c->data[i] = a->data[i] * b->data[i];
        });
    }
    if (rec) tg_op_record(t, TG_OP_MUL, c, 2, a, b, NULL);
    return c;
}

/* The broadcast case: dA row by row, dB as a fixed-order column sum. */
static void vjp_mul_broadcast(const tg_tensor *a, const tg_tensor *b, const tg_tensor *c,
                              int threads)
{
    int rows = c->rows, cols = c->cols;
    long n = (long)tg_numel(c);
    if (a->grad)
        TG_PAR_FOR(threads, n > TG_PAR_MIN, (int i = 0; i < rows; i++), {
            const tg_real *gi = c->grad + (size_t)i * cols;
            tg_real *dai = a->grad + (size_t)i * cols;
            for (int j = 0; j < cols; j++) dai[j] += gi[j] * b->data[j];
        });
    if (b->grad)
        for (int i = 0; i < rows; i++) {
            const tg_real *gi = c->grad + (size_t)i * cols, *ai = a->data + (size_t)i * cols;
            for (int j = 0; j < cols; j++) b->grad[j] += gi[j] * ai[j];
        }
}

void tg_vjp_mul(const tg_node *node, int threads)
{
    const tg_tensor *a = node->in[0], *b = node->in[1], *c = node->out;
    if (b->rows != c->rows) {
        vjp_mul_broadcast(a, b, c, threads);
        return;
    }
    long n = (long)tg_numel(c);
    TG_PAR_FOR(threads, n > TG_PAR_MIN, (long i = 0; i < n; i++), {
        if (a->grad) a->grad[i] += c->grad[i] * b->data[i];
        if (b->grad) b->grad[i] += c->grad[i] * a->data[i];
    });
}
