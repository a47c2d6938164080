/* attn_scores: per-example dot products of queries with a time-major memory.
 *   q (B x H), m (S*B x H, step s of example b in row s*B + b, as the unroll
 *   returns its outputs) -> y (B x S):
 *     y[b, s] = q[b] . m[s*B + b]
 *   (a batched q m^T over the B row groups of m, without copying m into
 *   batch-major order: attention's scores.)
 * VJP: dq[b] += sum_s dy[b, s] m[s*B + b];   dm[s*B + b] += dy[b, s] q[b].
 *   Example b writes only its own rows of dq and dm, so the loop over b may
 *   run on threads with results independent of their number.
 * Saves nothing beyond its inputs. */
#include "tg_fastmath.h"
#include "tg_rowdot.h"

tg_tensor *tg_attn_scores_(tg_tape *t, tg_tensor *q, tg_tensor *m, tg_src at)
{
    int B = q->rows, H = q->cols;
    TG_CHECK(B > 0 && m->cols == H && m->rows > 0 && m->rows % B == 0, at, "attn_scores",
             "query %dx%d and memory %dx%d: memory must be S*B x H with B=%d, H=%d", q->rows,
             q->cols, m->rows, m->cols, B, H);
    int S = m->rows / B;
    int rec = tg_op_records(t, q, m, NULL);
    tg_tensor *y = tg_op_output(t, B, S, rec);
    TG_PAR_FOR(tg_tape_threads(t), (long)B * S * H > TG_PAR_MIN, (int b = 0; b < B; b++), {
        const tg_real *qb = q->data + (size_t)b * H;
        for (int s = 0; s < S; s++)
            y->data[(size_t)b * S + s] = tg_rowdot(qb, m->data + ((size_t)s * B + b) * H, H);
    });
    if (rec) tg_op_record(t, TG_OP_ATTN_SCORES, y, 2, q, m, NULL);
    return y;
}

void tg_vjp_attn_scores(const tg_node *node, int threads)
{
    const tg_tensor *q = node->in[0], *m = node->in[1], *y = node->out;
    int B = q->rows, H = q->cols, S = y->cols;
    TG_PAR_FOR(threads, (long)B * S * H > TG_PAR_MIN, (int b = 0; b < B; b++), {
        const tg_real *qb = q->data + (size_t)b * H;
        for (int s = 0; s < S; s++) {
            tg_real g = y->grad[(size_t)b * S + s];
            size_t row = ((size_t)s * B + b) * H;
            if (q->grad) {
                tg_real *dq = q->grad + (size_t)b * H;
                const tg_real *ms = m->data + row;
                for (int j = 0; j < H; j++) dq[j] += g * ms[j];
            }
            if (m->grad) {
                tg_real *dm = m->grad + row;
                for (int j = 0; j < H; j++) dm[j] += g * qb[j];
            }
        }
    });
}
