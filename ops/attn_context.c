/* attn_context: per-example weighted sums of a time-major memory.
 *   a (B x S), m (S*B x H, step s of example b in row s*B + b) -> y (B x H):
 *     y[b] = sum_s a[b, s] m[s*B + b]
 *   (a batched a m over the B row groups of m: attention's context vector.)
 * VJP: da[b, s] += dy[b] . m[s*B + b];   dm[s*B + b] += a[b, s] dy[b].
 *   Example b writes only its own rows of da and dm (threads over b give
 *   the same results for any count).
 * Saves nothing beyond its inputs. */
#include "tg_fastmath.h"
#include "tg_rowdot.h"

/* Example b's context: ab its S weights, m0 its memory row at step 0 (step
 * s at m0 + s*B*H). SIMD clones, as attn_scores' loops. */
TG_SIMD_CLONES static void context_row(int S, int B, int H, const tg_real *ab, const tg_real *m0,
                                       tg_real *restrict yb)
{
    for (int j = 0; j < H; j++) yb[j] = 0;
    for (int s = 0; s < S; s++) {
        tg_real w = ab[s];
        const tg_real *ms = m0 + (size_t)s * B * H;
        for (int j = 0; j < H; j++) yb[j] += w * ms[j];
    }
}

/* Example b's part of the VJP (da, dm0 may be NULL). */
TG_SIMD_CLONES static void context_row_vjp(int S, int B, int H, const tg_real *restrict gb,
                                           const tg_real *ab, const tg_real *m0, tg_real *da,
                                           tg_real *dm0)
{
    for (int s = 0; s < S; s++) {
        size_t off = (size_t)s * B * H;
        if (da) da[s] += tg_rowdot(gb, m0 + off, H);
        if (dm0) {
            tg_real w = ab[s], *dm = dm0 + off;
            for (int j = 0; j < H; j++) dm[j] += w * gb[j];
        }
    }
}

tg_tensor *tg_attn_context_(tg_tape *t, tg_tensor *a, tg_tensor *m, tg_src at)
{
    int B = a->rows, S = a->cols;
    TG_CHECK(B > 0 && S > 0 && m->rows == S * B, at, "attn_context",
             "weights %dx%d and memory %dx%d: memory must be S*B x H with S=%d, B=%d", a->rows,
             a->cols, m->rows, m->cols, S, B);
    int H = m->cols;
    int rec = tg_op_records(t, a, m, NULL);
    tg_tensor *y = tg_op_output(t, B, H, rec);
    TG_PAR_FOR(tg_tape_threads(t), (long)B * S * H > TG_PAR_MIN, (int b = 0; b < B; b++), {
        context_row(S, B, H, a->data + (size_t)b * S, m->data + (size_t)b * H,
                    y->data + (size_t)b * H);
    });
    if (rec) tg_op_record(t, TG_OP_ATTN_CONTEXT, y, 2, a, m, NULL);
    return y;
}

void tg_vjp_attn_context(const tg_node *node, int threads)
{
    const tg_tensor *a = node->in[0], *m = node->in[1], *y = node->out;
    int B = a->rows, S = a->cols, H = m->cols;
    TG_PAR_FOR(threads, (long)B * S * H > TG_PAR_MIN, (int b = 0; b < B; b++), {
        context_row_vjp(S, B, H, y->grad + (size_t)b * H, a->data + (size_t)b * S,
                        m->data + (size_t)b * H, a->grad ? a->grad + (size_t)b * S : NULL,
                        m->grad ? m->grad + (size_t)b * H : NULL);
    });
}
