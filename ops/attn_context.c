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
        tg_real *yb = y->data + (size_t)b * H;
        for (int j = 0; j < H; j++) yb[j] = 0;
        for (int s = 0; s < S; s++) {
            tg_real w = a->data[(size_t)b * S + s];
            const tg_real *ms = m->data + ((size_t)s * B + b) * H;
            for (int j = 0; j < H; j++) yb[j] += w * ms[j];
        }
    });
    if (rec) tg_op_record(t, TG_OP_ATTN_CONTEXT, y, 2, a, m, NULL);
    return y;
}

void tg_vjp_attn_context(const tg_node *node, int threads)
{
    const tg_tensor *a = node->in[0], *m = node->in[1], *y = node->out;
    int B = a->rows, S = a->cols, H = m->cols;
    TG_PAR_FOR(threads, (long)B * S * H > TG_PAR_MIN, (int b = 0; b < B; b++), {
        const tg_real *gb = y->grad + (size_t)b * H;
        for (int s = 0; s < S; s++) {
            size_t row = ((size_t)s * B + b) * H;
            if (a->grad) a->grad[(size_t)b * S + s] += tg_rowdot(gb, m->data + row, H);
            if (m->grad) {
                tg_real w = a->data[(size_t)b * S + s];
                tg_real *dm = m->grad + row;
                for (int j = 0; j < H; j++) dm[j] += w * gb[j];
            }
        }
    });
}
