/* softmax_xent: fused softmax + cross-entropy, averaged over counted rows,
 * with optional label smoothing e in [0, 1) (PyTorch's
 * cross_entropy(label_smoothing=e): the target is (1-e) onehot + e/V).
 *   For each row i of logits z (N x V) with targets[i] != ignore_index:
 *     lse_i = logsumexp(z_i)   (stable: shift by max z_i)
 *     l_i = lse_i - (1-e) z_i[targets[i]] - e mean_j z_i[j]
 *         (= (1-e)(-log p_i[y]) + e mean_j(-log p_i[j]); e = 0: lse_i - z_i[y])
 *   y = (1/c) sum_i l_i, c = number of counted rows; y = 0 when c = 0.
 * VJP: dz_i += dy/c * (softmax(z_i) - (1-e) onehot(targets[i]) - e/V) for
 *   counted rows; ignored rows get no gradient. Targets are integers: never
 *   differentiated. e = 0 runs the unsmoothed loops (the same bits as before
 *   smoothing existed).
 *   When z is the logits of one layer and this is their only use, dz is
 *   written (=) and backward does not zero it first (tg_claim_grad_write): at
 *   N x V that zeroing and the read back were two passes over 30-60 MB.
 * Saves softmax(z) (N x V), the targets and c (iarg[1]); iarg[0] =
 * ignore_index, farg = e.
 * Why fused: the composed log(sum(exp(z))) overflows for large logits and
 * stores three N x V intermediates; this stores one. Checked against the
 * composed form in tests/engine/test_composed.c. */
#include <math.h>
#include <string.h>

#include "tg_fastmath.h"

/* mean_j z[j] in double: the smoothed part of a row's loss */
static double row_mean(const tg_real *z, int v)
{
    double s = 0;
    for (int j = 0; j < v; j++) s += z[j];
    return s / v;
}

tg_tensor *tg_softmax_xent_(tg_tape *t, tg_tensor *z, const int *targets, int ignore_index,
                            tg_src at)
{
    return tg_softmax_xent_smoothed_(t, z, targets, ignore_index, 0, at);
}

tg_tensor *tg_softmax_xent_smoothed_(tg_tape *t, tg_tensor *z, const int *targets,
                                     int ignore_index, double smoothing, tg_src at)
{
    int n = z->rows, v = z->cols;
    TG_CHECK(smoothing >= 0 && smoothing < 1, at, "softmax_xent",
             "label smoothing %g outside [0, 1)", smoothing);
    int counted = 0;
    for (int i = 0; i < n; i++) {
        if (targets[i] == ignore_index) continue;
        TG_CHECK(targets[i] >= 0 && targets[i] < v, at, "softmax_xent",
                 "target %d at row %d is outside [0, %d) for logits %dx%d", targets[i], i, v, n,
                 v);
        counted++;
    }
    int rec = tg_op_records(t, z, NULL, NULL);
    tg_tensor *y = tg_op_output(t, 1, 1, rec);
    tg_real *p = tg_tape_alloc(t, tg_numel(z) * sizeof(tg_real));
    double total = 0;
    for (int i = 0; i < n; i++) {
        if (targets[i] == ignore_index) continue;
        const tg_real *zi = z->data + (size_t)i * v;
        double lse = tg_k_softmax_row(zi, NULL, p + (size_t)i * v, v);
        if (smoothing == 0)
            total += lse - zi[targets[i]];
        else
            total += lse - (1 - smoothing) * zi[targets[i]] - smoothing * row_mean(zi, v);
    }
    y->data[0] = (tg_real)(counted ? total / counted : 0);
    if (rec) {
        int *saved = tg_tape_ints(t, (size_t)n);
        memcpy(saved, targets, (size_t)n * sizeof(int));
        tg_node *node = tg_op_record(t, TG_OP_SOFTMAX_XENT, y, 1, z, NULL, NULL);
        node->ints = saved;
        node->saved = p;
        node->iarg[0] = ignore_index;
        node->iarg[1] = counted;
        node->farg = smoothing;
        tg_claim_grad_write(z);
    }
    return y;
}

/* dz += g p over one row (a SIMD clone: the VJP's only loop over N x V). */
TG_SIMD_CLONES static void xent_row_vjp(int v, tg_real g, const tg_real *restrict p,
                                        tg_real *restrict dz)
{
    for (int j = 0; j < v; j++) dz[j] += g * p[j];
}

/* dz += g p - u over one row (u = g e / V: label smoothing's share), or
 * dz = 0 + (g p - u) when write (the bits of adding to a zeroed row). */
TG_SIMD_CLONES static void xent_row_vjp_smoothed(int v, tg_real g, tg_real u, int write,
                                                 const tg_real *restrict p, tg_real *restrict dz)
{
    if (write)
        for (int j = 0; j < v; j++) dz[j] = (tg_real)0 + (g * p[j] - u);
    else
        for (int j = 0; j < v; j++) dz[j] += g * p[j] - u;
}

/* dz = g p over one row: the same values as adding to a zeroed row. */
TG_SIMD_CLONES static void xent_row_vjp_write(int v, tg_real g, const tg_real *restrict p,
                                              tg_real *restrict dz)
{
    for (int j = 0; j < v; j++) dz[j] = g * p[j];
}

void tg_vjp_softmax_xent(const tg_node *node, int threads)
{
    const tg_tensor *z = node->in[0];
    int n = z->rows, v = z->cols, ignore = node->iarg[0], counted = node->iarg[1];
    if (!z->grad) return;
    int writes = tg_grad_writes(z);
    if (counted == 0) {
        if (writes) memset(z->grad, 0, tg_numel(z) * sizeof(tg_real));
        return;
    }
    tg_real g = (tg_real)(node->out->grad[0] / counted);
    double e = node->farg;
    tg_real u = (tg_real)(node->out->grad[0] / counted * e / v), gy = (tg_real)(g * (1 - e));
    TG_PAR_FOR(threads, (long)n * v > TG_PAR_MIN, (int i = 0; i < n; i++), {
        int y = node->ints[i];
        tg_real *dz = z->grad + (size_t)i * v;
        if (y == ignore) {
            if (writes) memset(dz, 0, (size_t)v * sizeof(tg_real));
            continue;
        }
        if (e > 0) {
            xent_row_vjp_smoothed(v, g, u, writes, node->saved + (size_t)i * v, dz);
            dz[y] -= gy;
        } else {
            if (writes)
                xent_row_vjp_write(v, g, node->saved + (size_t)i * v, dz);
            else
                xent_row_vjp(v, g, node->saved + (size_t)i * v, dz);
            dz[y] -= g;
        }
    });
}
