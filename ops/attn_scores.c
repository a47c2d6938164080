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

/* Example b's row of scores: m0 = its row at step 0, step s at m0 + s*B*H.
 * The per-example loops are SIMD clones (tg_fastmath.h): built for the
 * baseline x86-64 they ran on 4-float vectors, and the attention ops took 3%
 * of a training step of config g. */
TG_SIMD_CLONES static void scores_row(int S, int B, int H, const tg_real *qb, const tg_real *m0,
                                      tg_real *yb)
{
    for (int s = 0; s < S; s++) yb[s] = tg_rowdot(qb, m0 + (size_t)s * B * H, H);
}

/* Example b's part of the VJP (dq, dm may be NULL). */
TG_SIMD_CLONES static void scores_row_vjp(int S, int B, int H, const tg_real *gy,
                                          const tg_real *qb, const tg_real *m0, tg_real *dq,
                                          tg_real *dm0)
{
    for (int s = 0; s < S; s++) {
        tg_real g = gy[s];
        size_t off = (size_t)s * B * H;
        if (dq) {
            const tg_real *ms = m0 + off;
            for (int j = 0; j < H; j++) dq[j] += g * ms[j];
        }
        if (dm0) {
            tg_real *dm = dm0 + off;
            for (int j = 0; j < H; j++) dm[j] += g * qb[j];
        }
    }
}

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
        scores_row(S, B, H, q->data + (size_t)b * H, m->data + (size_t)b * H,
                   y->data + (size_t)b * S);
    });
    if (rec) tg_op_record(t, TG_OP_ATTN_SCORES, y, 2, q, m, NULL);
    return y;
}

void tg_vjp_attn_scores(const tg_node *node, int threads)
{
    const tg_tensor *q = node->in[0], *m = node->in[1], *y = node->out;
    int B = q->rows, H = q->cols, S = y->cols;
    TG_PAR_FOR(threads, (long)B * S * H > TG_PAR_MIN, (int b = 0; b < B; b++), {
        scores_row_vjp(S, B, H, y->grad + (size_t)b * S, q->data + (size_t)b * H,
                       m->data + (size_t)b * H, q->grad ? q->grad + (size_t)b * H : NULL,
                       m->grad ? m->grad + (size_t)b * H : NULL);
    });
}
