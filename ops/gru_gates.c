/* gru_gates: the element-wise half of a GRU step, fused.
 *   inputs  xp, hp (B x 3H): x W_ih^T + b_ih and h W_hh^T + b_hh, gates r,z,n
 *           stacked in PyTorch's order; h (B x H): the previous state.
 *   r = sigmoid(xp_r + hp_r),  z = sigmoid(xp_z + hp_z),  n = tanh(xp_n + r * hp_n)
 *   h' = (1 - z) * n + z * h                    output (B x H)
 * VJP, g = dh':
 *   dz = g * (h - n),  dn = g * (1 - z),  dh += g * z
 *   da_n = dn * (1 - n^2):  dxp_n += da_n,  dhp_n += da_n * r
 *   da_r = da_n * hp_n * r(1-r),  da_z = dz * z(1-z):  dxp_{r,z} += da,  dhp_{r,z} += da
 * Saves: r, z, n (B x 3H); reads hp and h.
 * Why fused: composed, a step is 12 ops (adds, 4 column slices, sigmoid, tanh,
 * one-minus, 3 muls) each with its own B x H..3H tensor and gradient pass;
 * the fused step does one pass forward and one backward with SIMD exp/tanh.
 * Checked against the composed form in tests/gradcheck.c. */
#include "tg_fastmath.h"

TG_SIMD_CLONES static void gru_row(int H, const tg_real *restrict xp, const tg_real *restrict hp,
                                   const tg_real *restrict h, tg_real *restrict rzn,
                                   tg_real *restrict hn)
{
    for (int j = 0; j < H; j++) {
        tg_real r = tg_fsigmoid(xp[j] + hp[j]);
        tg_real z = tg_fsigmoid(xp[H + j] + hp[H + j]);
        tg_real n = tg_ftanh(xp[2 * H + j] + r * hp[2 * H + j]);
        rzn[j] = r;
        rzn[H + j] = z;
        rzn[2 * H + j] = n;
        hn[j] = (1 - z) * n + z * h[j];
    }
}

static inline void add_to(tg_real *restrict dst, const tg_real *restrict v, int n)
{
    if (dst)
        for (int j = 0; j < n; j++) dst[j] += v[j];
}

#define CHUNK 64 /* columns per pass: the gate gradients stay in L1 */

/* One row of the VJP into gx, gh (B x 3H rows) and dh (each may be NULL);
 * gate gradients go through a small buffer so every loop vectorizes. */
TG_SIMD_CLONES static void gru_row_vjp(int H, const tg_real *restrict rzn,
                                       const tg_real *restrict hp, const tg_real *restrict h,
                                       const tg_real *restrict g, tg_real *gx, tg_real *gh,
                                       tg_real *dh)
{
    tg_real dx[3][CHUNK], dn_h[CHUNK], dhp[CHUNK];
    for (int j0 = 0; j0 < H; j0 += CHUNK) {
        int w = H - j0 < CHUNK ? H - j0 : CHUNK;
        for (int k = 0; k < w; k++) {
            int j = j0 + k;
            tg_real r = rzn[j], z = rzn[H + j], n = rzn[2 * H + j], gj = g[j];
            tg_real da_n = gj * (1 - z) * (1 - n * n);
            dx[0][k] = da_n * hp[2 * H + j] * (r * (1 - r));
            dx[1][k] = gj * (h[j] - n) * (z * (1 - z));
            dx[2][k] = da_n;
            dn_h[k] = da_n * r;
            dhp[k] = gj * z;
        }
        for (int q = 0; q < 3; q++) add_to(gx ? gx + q * H + j0 : NULL, dx[q], w);
        for (int q = 0; q < 2; q++) add_to(gh ? gh + q * H + j0 : NULL, dx[q], w);
        add_to(gh ? gh + 2 * H + j0 : NULL, dn_h, w);
        add_to(dh ? dh + j0 : NULL, dhp, w);
    }
}

tg_tensor *tg_gru_gates_(tg_tape *t, tg_tensor *xp, tg_tensor *hp, tg_tensor *h, tg_src at)
{
    int B = h->rows, H = h->cols;
    TG_CHECK(xp->rows == B && hp->rows == B && xp->cols == 3 * H && hp->cols == 3 * H, at,
             "gru_gates", "xp %dx%d and hp %dx%d must be B x 3H for h %dx%d", xp->rows, xp->cols,
             hp->rows, hp->cols, B, H);
    int rec = tg_op_records(t, xp, hp, h);
    tg_tensor *y = tg_op_output(t, B, H, rec);
    tg_real *rzn = tg_tape_alloc(t, (size_t)B * 3 * H * sizeof(tg_real));
    long n = (long)B * H;
    TG_PAR_FOR(tg_tape_threads(t), n > TG_PAR_MIN, (int b = 0; b < B; b++), {
        size_t r3 = (size_t)b * 3 * H, r1 = (size_t)b * H;
        gru_row(H, xp->data + r3, hp->data + r3, h->data + r1, rzn + r3, y->data + r1);
    });
    if (rec) tg_op_record(t, TG_OP_GRU_GATES, y, 3, xp, hp, h)->saved = rzn;
    return y;
}

static int overlap(const tg_real *p, const tg_real *q, size_t n)
{
    return p && q && p < q + n && q < p + n;
}

void tg_vjp_gru_gates(const tg_node *node, int threads)
{
    const tg_tensor *xp = node->in[0], *hp = node->in[1], *h = node->in[2], *y = node->out;
    int B = h->rows, H = h->cols;
    /* restrict-qualified kernels: gradients sharing memory go one at a time */
    int split = overlap(xp->grad, hp->grad, (size_t)B * 3 * H);
    TG_PAR_FOR(threads, (long)B * H > TG_PAR_MIN, (int b = 0; b < B; b++), {
        size_t r3 = (size_t)b * 3 * H, r1 = (size_t)b * H;
        const tg_real *rzn = node->saved + r3, *hpr = hp->data + r3, *hr = h->data + r1;
        tg_real *gx = xp->grad ? xp->grad + r3 : NULL;
        tg_real *gh = hp->grad ? hp->grad + r3 : NULL;
        tg_real *dh = h->grad ? h->grad + r1 : NULL;
        const tg_real *g = y->grad + r1;
        if (split) {
            gru_row_vjp(H, rzn, hpr, hr, g, gx, NULL, dh);
            gru_row_vjp(H, rzn, hpr, hr, g, NULL, gh, NULL);
        } else {
            gru_row_vjp(H, rzn, hpr, hr, g, gx, gh, dh);
        }
    });
}
