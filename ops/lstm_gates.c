/* lstm_gates: the element-wise half of an LSTM step, fused.
 *   inputs  xp, hp (B x 4H): input and recurrent pre-activations, gates i,f,g,o
 *           stacked in PyTorch's order; c (B x H): the previous cell state.
 *   a = xp + hp;  i = sigmoid(a_i), f = sigmoid(a_f), g = tanh(a_g), o = sigmoid(a_o)
 *   c' = f * c + i * g;   h' = o * tanh(c')
 *   output Y (2B x H): rows 0..B-1 hold h', rows B..2B-1 hold c', so that
 *   tg_row_slice gives h' and c' without copies.
 * VJP, with dh = dY[0:B], dc' = dY[B:2B], tc = tanh(c'):
 *   dC = dc' + dh * o * (1 - tc^2)            (total gradient reaching c')
 *   da_i = dC * g * i(1-i),  da_f = dC * c * f(1-f),  da_g = dC * i * (1-g^2),
 *   da_o = dh * tc * o(1-o)
 *   dxp += da;  dhp += da;  dc += dC * f.
 *   xp and hp are claimed (tg_claim_grad_write): when this is the only use
 *   of one (the step's recurrent product, a per-step projection), its
 *   gradient is written (=) and backward does not zero it first: in an LSTM
 *   of batch 16 and 64 steps those zeroings were 4 MB a step.
 * Saves: the activated gates [i f g o] (B x 4H) and tc (B x H); reads c.
 * lstm_gates_rows: the same with xp's row b taken from row pos[b] of xs (the
 *   unroll's rows of a projection by distinct ids): equal, bit for bit, to
 *   lstm_gates over tg_embedding(xs, pos, B) (when xs and hp do not share
 *   gradient memory), without that gathered copy and its gradient.
 *   VJP: dxs[pos[b]] += da_b, rows in order (one after another: rows may
 *   share a row of xs). When hp's gradient is written whole it holds da: the
 *   rows run in parallel into it, then its rows are added into xs's (on one
 *   thread, each right after its row); else the rows run one after
 *   another, adding as they go. Saves pos.
 * Why fused: composed, a step is 15 ops (2 adds, 4 column slices, 3 sigmoids,
 * 2 tanh, 3 muls, 1 add) each making a B x H..4H tensor and its gradient; in
 * config a of BENCHMARKS.md those passes and libm's scalar exp/tanh took about
 * a third of the step. Checked against the composed form in tests/gradcheck.c. */
#include <string.h>

#include "tg_fastmath.h"

/* One row of the forward: act = [i f g o], tc = tanh(c'), h and c' out.
 * A loop per activation, then the cell: short loop bodies, each element's
 * chain of one exp and one division (one loop over all five spilled
 * registers and took 10-15% longer, Zen 5). The same operations on every
 * element, so the same bits. */
TG_SIMD_CLONES static void lstm_row(int H, const tg_real *restrict xp, const tg_real *restrict hp,
                                    const tg_real *restrict c, tg_real *restrict act,
                                    tg_real *restrict tc, tg_real *restrict h,
                                    tg_real *restrict cn)
{
    for (int j = 0; j < 2 * H; j++) act[j] = tg_fsigmoid(xp[j] + hp[j]);
    for (int j = 2 * H; j < 3 * H; j++) act[j] = tg_ftanh(xp[j] + hp[j]);
    for (int j = 3 * H; j < 4 * H; j++) act[j] = tg_fsigmoid(xp[j] + hp[j]);
    for (int j = 0; j < H; j++) {
        tg_real cc = act[H + j] * c[j] + act[j] * act[2 * H + j];
        tg_real t = tg_ftanh(cc);
        tc[j] = t;
        cn[j] = cc;
        h[j] = act[3 * H + j] * t;
    }
}

/* Adds v into dst (n values), when dst is wanted. */
static inline void add_to(tg_real *restrict dst, const tg_real *restrict v, int n)
{
    if (dst)
        for (int j = 0; j < n; j++) dst[j] += v[j];
}

/* dst = 0 + v when write (a claimed gradient), else dst += v; nothing when
 * dst is not wanted. 0 + v gives the bits of adding to a zeroed gradient (-0
 * becomes +0), and it is an add, so GCC does not make the loop a memcpy
 * (rep movsq, whose start-up per 64 values took a quarter of this VJP). */
static inline void put(tg_real *restrict dst, const tg_real *restrict v, int n, int write)
{
    if (dst && write)
        for (int j = 0; j < n; j++) dst[j] = (tg_real)0 + v[j];
    else
        add_to(dst, v, n);
}

#define CHUNK 64 /* columns per pass: the gate gradients stay in L1 */

/* One row of the VJP: da from dh and dc', into gx and gh (each may be NULL;
 * written when wx, resp. wh, else added to), and dC * f added into dc (may be
 * NULL). Gate gradients are computed into a small buffer first, so every
 * loop is branch-free and vectorizes. */
TG_SIMD_CLONES static void lstm_row_vjp(int H, const tg_real *restrict act,
                                        const tg_real *restrict tc, const tg_real *restrict c,
                                        const tg_real *restrict dh, const tg_real *restrict dcn,
                                        tg_real *gx, int wx, tg_real *gh, int wh, tg_real *dc)
{
    tg_real da[4][CHUNK], dcp[CHUNK];
    for (int j0 = 0; j0 < H; j0 += CHUNK) {
        int w = H - j0 < CHUNK ? H - j0 : CHUNK;
        for (int k = 0; k < w; k++) {
            int j = j0 + k;
            tg_real i = act[j], f = act[H + j], g = act[2 * H + j], o = act[3 * H + j], t = tc[j];
            tg_real dC = dcn[j] + dh[j] * o * (1 - t * t);
            da[0][k] = dC * g * (i * (1 - i));
            da[1][k] = dC * c[j] * (f * (1 - f));
            da[2][k] = dC * i * (1 - g * g);
            da[3][k] = dh[j] * t * (o * (1 - o));
            dcp[k] = dC * f;
        }
        for (int q = 0; q < 4; q++) {
            put(gx ? gx + q * H + j0 : NULL, da[q], w, wx);
            put(gh ? gh + q * H + j0 : NULL, da[q], w, wh);
        }
        add_to(dc ? dc + j0 : NULL, dcp, w);
    }
}

/* lstm_row_vjp's usual case, with no buffer: da written (=) into gh (the
 * step's recurrent product, claimed), nothing into gx (xs's rows get
 * gh's rows afterwards), dC * f added into dc. The same operations. */
TG_SIMD_CLONES static void lstm_row_vjp_gh(int H, const tg_real *restrict act,
                                           const tg_real *restrict tc,
                                           const tg_real *restrict c,
                                           const tg_real *restrict dh,
                                           const tg_real *restrict dcn, tg_real *restrict gh,
                                           tg_real *restrict dc)
{
    for (int j = 0; j < H; j++) {
        tg_real i = act[j], f = act[H + j], g = act[2 * H + j], o = act[3 * H + j], t = tc[j];
        tg_real dC = dcn[j] + dh[j] * o * (1 - t * t);
        gh[j] = (tg_real)0 + dC * g * (i * (1 - i));
        gh[H + j] = (tg_real)0 + dC * c[j] * (f * (1 - f));
        gh[2 * H + j] = (tg_real)0 + dC * i * (1 - g * g);
        gh[3 * H + j] = (tg_real)0 + dh[j] * t * (o * (1 - o));
        dc[j] += dC * f;
    }
}

/* Both forms: xp's row b is xs's row pos[b], or row b when pos is NULL. */
static tg_tensor *gates(tg_tape *t, tg_tensor *xs, const int *pos, tg_tensor *hp, tg_tensor *c,
                        tg_src at)
{
    int B = c->rows, H = c->cols;
    TG_CHECK((pos || xs->rows == B) && hp->rows == B && xs->cols == 4 * H && hp->cols == 4 * H,
             at, "lstm_gates", "xp %dx%d and hp %dx%d must be B x 4H for c %dx%d", xs->rows,
             xs->cols, hp->rows, hp->cols, B, H);
    for (int b = 0; pos && b < B; b++)
        TG_CHECK(pos[b] >= 0 && pos[b] < xs->rows, at, "lstm_gates",
                 "row %d of xp is row %d of a %dx%d matrix", b, pos[b], xs->rows, xs->cols);
    int rec = tg_op_records(t, xs, hp, c);
    tg_tensor *y = tg_op_output(t, 2 * B, H, rec);
    tg_real *act = tg_tape_alloc(t, (size_t)B * 5 * H * sizeof(tg_real)); /* rows [i f g o tc] */
    long n = (long)B * H;
    TG_PAR_FOR(tg_tape_threads(t), n > TG_PAR_MIN, (int b = 0; b < B; b++), {
        size_t r4 = (size_t)b * 4 * H, r1 = (size_t)b * H, r5 = (size_t)b * 5 * H;
        const tg_real *x = xs->data + (pos ? (size_t)pos[b] * 4 * H : r4);
        lstm_row(H, x, hp->data + r4, c->data + r1, act + r5, act + r5 + 4 * H, y->data + r1,
                 y->data + (size_t)B * H + r1);
    });
    if (rec) {
        tg_node *node = tg_op_record(t, TG_OP_LSTM_GATES, y, 3, xs, hp, c);
        node->saved = act;
        if (pos) {
            int *saved = tg_tape_ints(t, (size_t)B);
            memcpy(saved, pos, (size_t)B * sizeof *saved);
            node->ints = saved;
        } else {
            tg_claim_grad_write(xs);
        }
        tg_claim_grad_write(hp);
    }
    return y;
}

tg_tensor *tg_lstm_gates_(tg_tape *t, tg_tensor *xp, tg_tensor *hp, tg_tensor *c, tg_src at)
{
    return gates(t, xp, NULL, hp, c, at);
}

tg_tensor *tg_lstm_gates_rows_(tg_tape *t, tg_tensor *xs, const int *pos, tg_tensor *hp,
                               tg_tensor *c, tg_src at)
{
    TG_CHECK(pos != NULL, at, "lstm_gates_rows", "no row indices");
    return gates(t, xs, pos, hp, c, at);
}

static int overlap(const tg_real *p, size_t np, const tg_real *q, size_t nq)
{
    return p && q && p < q + nq && q < p + np;
}

void tg_vjp_lstm_gates(const tg_node *node, int threads)
{
    const tg_tensor *xs = node->in[0], *hp = node->in[1], *c = node->in[2], *y = node->out;
    const int *pos = node->ints;
    int B = c->rows, H = c->cols;
    size_t n4 = (size_t)B * 4 * H;
    /* restrict-qualified kernels: gradients that share memory (xp == hp)
     * are updated one after the other, as the composed ops would */
    int split = overlap(xs->grad, tg_numel(xs), hp->grad, n4);
    int wx = !pos && tg_grad_writes(xs), wh = tg_grad_writes(hp);
    /* rows read by index add into xs's rows in row order, never two at once:
     * from hp's gradient when it holds da, after the rows when they run in
     * parallel, else as each row is done (in L1 still); else as each row
     * runs, one after another */
    int scatter = pos && xs->grad && hp->grad && wh && !split;
    int parallel = threads > 1 && (!pos || scatter) && (long)B * H > TG_PAR_MIN;
    TG_PAR_FOR(parallel ? threads : 1, 1, (int b = 0; b < B; b++), {
        const tg_real *act = node->saved + (size_t)b * 5 * H;
        size_t r4 = (size_t)b * 4 * H, r1 = (size_t)b * H;
        size_t x4 = pos ? (size_t)pos[b] * 4 * H : r4;
        tg_real *gx = xs->grad && !scatter ? xs->grad + x4 : NULL;
        tg_real *gh = hp->grad ? hp->grad + r4 : NULL;
        tg_real *dc = c->grad ? c->grad + r1 : NULL;
        const tg_real *dh = y->grad + r1, *dcn = y->grad + (size_t)B * H + r1;
        if (!gx && gh && wh && dc && !split) {
            lstm_row_vjp_gh(H, act, act + 4 * H, c->data + r1, dh, dcn, gh, dc);
        } else if (split) {
            lstm_row_vjp(H, act, act + 4 * H, c->data + r1, dh, dcn, gx, wx, NULL, 0, dc);
            lstm_row_vjp(H, act, act + 4 * H, c->data + r1, dh, dcn, NULL, 0, gh, wh, NULL);
        } else {
            lstm_row_vjp(H, act, act + 4 * H, c->data + r1, dh, dcn, gx, wx, gh, wh, dc);
        }
        if (scatter && !parallel) tg_col_sums_into(xs->grad + x4, gh, 1, 4 * H);
    });
    for (int b = 0; scatter && parallel && b < B; b++)
        tg_col_sums_into(xs->grad + (size_t)pos[b] * 4 * H, hp->grad + (size_t)b * 4 * H, 1,
                         4 * H);
}
