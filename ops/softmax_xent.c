/* softmax_xent: fused softmax + cross-entropy, averaged over counted rows.
 *   For each row i of logits z (N x V) with targets[i] != ignore_index:
 *     l_i = logsumexp(z_i) - z_i[targets[i]]   (stable: shift by max z_i)
 *   y = (1/c) sum_i l_i, c = number of counted rows; y = 0 when c = 0.
 * VJP: dz_i += dy/c * (softmax(z_i) - onehot(targets[i])) for counted rows;
 *   ignored rows get no gradient. Targets are integers: never differentiated.
 *   When z is the logits of one layer and this is their only use, dz is
 *   written (=) and backward does not zero it first (tg_claim_grad_write): at
 *   N x V that zeroing and the read back were two passes over 30-60 MB.
 * Saves softmax(z) (N x V), the targets and c (iarg[1]); iarg[0] = ignore_index.
 * Why fused: the composed log(sum(exp(z))) overflows for large logits and
 * stores three N x V intermediates; this stores one. Checked against the
 * composed form in tests/engine/test_composed.c. */
#include <math.h>
#include <string.h>

#include "tg_fastmath.h"

tg_tensor *tg_softmax_xent_(tg_tape *t, tg_tensor *z, const int *targets, int ignore_index,
                            tg_src at)
{
    int n = z->rows, v = z->cols;
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
        total += tg_k_softmax_row(zi, NULL, p + (size_t)i * v, v) - zi[targets[i]];
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
    TG_PAR_FOR(threads, (long)n * v > TG_PAR_MIN, (int i = 0; i < n; i++), {
        int y = node->ints[i];
        tg_real *dz = z->grad + (size_t)i * v;
        if (y == ignore) {
            if (writes) memset(dz, 0, (size_t)v * sizeof(tg_real));
            continue;
        }
        if (writes)
            xent_row_vjp_write(v, g, node->saved + (size_t)i * v, dz);
        else
            xent_row_vjp(v, g, node->saved + (size_t)i * v, dz);
        dz[y] -= g;
    });
}
