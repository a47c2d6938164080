/* matmul: C = op(A) op(B), op(X) = X or X^T by the transpose flags.
 *   op(A) is M x K, op(B) is K x N, C is M x N.
 * VJP:
 *   A (not transposed):  dA += dC op(B)^T
 *   A (transposed):      dA += op(B) dC^T
 *   (= instead of +=, and backward does not zero dA first, when this is A's
 *   one use: A is claimed, tg_claim_grad_write; the stacked hidden states
 *   of an output layer, the gathered embedding rows)
 *   B (not transposed):  dB += op(A)^T dC
 *   B (transposed):      dB += dC^T op(A)
 * Saves nothing beyond its inputs (A and B are read again by the VJP).
 * iarg[0] = trans_a, iarg[1] = trans_b, iarg[2] = A was a constant of zeros (the
 * product and dB skipped: tg_matmul_product).
 * With few rows (M <= TG_DEFER_MAX_ROWS), the VJP defers dB to the end of
 * tg_backward (B a leaf: a weight, or a range of its columns as affine_cols
 * reads it) or to just before the VJP of the op that made B (a weight
 * computed on the tape), which adds all of B's such products (a range's
 * apart from the others') in one GEMM over their stacked rows (tg_defer_rows
 * in tg_op.h, kept in matmul's tape state, ops/matmul_tape.c): a recurrent
 * weight otherwise rewrites all of its gradient at every time step.
 * With two rows or more (tg_panels_suit; any number on a tape that holds
 * its parameters' panels), C and dA run on weight panels (graph/tg_panels.h):
 * op(B), resp. op(B)^T, packed once per tape and reused by every step's
 * product, instead of a BLAS call that re-packs B; with many rows the panel
 * kernel still runs at twice OpenBLAS's Haswell kernel. */

#include <string.h>

#include "tg_op.h"
#include "tg_panels.h"

/* C (m x n) = A op(B) + D (A m x k, not transposed; D as tg_gemm_panels_add
 * takes it; B the part of b in win) on panels when the shape suits and the
 * tape has them; 0: the caller uses tg_gemm. */
static int gemm_on_panels(tg_tape *t, int m, int n, int k, const tg_real *a, int lda,
                          const tg_tensor *b, const tg_panel_src *win, int tb, const tg_real *d,
                          int ldd, tg_real *c, int ldc)
{
    if (!t) return 0;
    /* one row goes to tg_gemm's one-row kernel, and on the AVX2 kernel
     * more than tg_panels_max_rows to OpenBLAS (faster there), unless the
     * tape holds its parameters' panels (decoding): then every row count
     * runs on them, so that a row's bits do not depend on how many rows
     * share its product (a sentence translated alone or in a batch: 1 row
     * against 2 differed in the last bits of most logits, and flipped about
     * 1 word in 40 000; on the AVX2 kernel a batch's source projections
     * past 191 tokens ran on OpenBLAS) */
    if (tg_tape_holds_param_panels(t) ? tg_panels_max_rows(n, k) == 0 : !tg_panels_suit(m, n, k))
        return 0;
    const tg_real *panels = tg_matmul_panels_of(t, b, win, tb, m);
    if (!panels) return 0;
    tg_gemm_panels_add(m, n, k, a, lda, panels, d, ldd, c, ldc, tg_tape_threads(t));
    return 1;
}

/* c (m x n, contiguous) = D (rows ldd apart; nothing to do when d is c). */
static void copy_addend(const tg_real *d, int ldd, int m, int n, tg_real *c)
{
    for (int i = 0; d != c && i < m; i++)
        memcpy(c + (size_t)i * n, d + (size_t)i * ldd, (size_t)n * sizeof *c);
}

/* A constant (no gradient wanted) that is all zeros: a recurrent cell's
 * first step from a zero state. Its product is zero and it adds nothing to
 * dB, so both are skipped (config f: 1.5% less CPU a step, its encoder
 * starting every batch from zeros; a: 2-4%). The scan stops at the first
 * nonzero value, so other constants cost a few reads; a NaN is not zero.
 * The one value that changes: a non-finite B times these zeros gives 0,
 * not the NaN of 0 * inf (the programs' guard checks parameters anyway). */
static int zero_constant(const tg_tensor *a)
{
    if (a->grad) return 0;
    for (size_t i = 0, n = tg_numel(a); i < n; i++)
        if (a->data[i] != 0) return 0;
    return 1;
}

/* The part of b that op(B) is: columns b_c0 .. b_c0+k-1 when transposed (k:
 * the product's inner size), else all of b. */
static tg_panel_src window(const tg_tensor *b, int b_c0, int tb, int k)
{
    if (b_c0 && !tb)
        tg_misuse(TG_HERE, "matmul", "a column range of B (%d) needs B transposed", b_c0);
    return tg_panel_src_cols(b, b_c0, tb ? k : b->cols);
}

int tg_matmul_product(tg_tape *t, const tg_tensor *a, const tg_tensor *b, int b_c0, int ta,
                      int tb, const tg_real *d, int ldd, tg_real *c)
{
    int m = ta ? a->cols : a->rows, k = ta ? a->rows : a->cols, n = tb ? b->rows : b->cols;
    if (zero_constant(a)) {
        if (d) copy_addend(d, ldd, m, n, c);
        else memset(c, 0, (size_t)m * n * sizeof *c);
        return 1;
    }
    tg_panel_src win = window(b, b_c0, tb, k);
    if (!ta && gemm_on_panels(t, m, n, k, a->data, a->cols, b, &win, tb, d, ldd, c, n)) return 0;
    if (d) copy_addend(d, ldd, m, n, c); /* then beta 1; without D, beta 0 ignores c */
    tg_gemm(ta, tb, m, n, k, 1, a->data, a->cols, win.data, win.ld, d ? 1 : 0, c, n,
            tg_tape_threads(t));
    return 0;
}

tg_tensor *tg_matmul_(tg_tape *t, tg_tensor *a, tg_tensor *b, int ta, int tb, tg_src at)
{
    int m = ta ? a->cols : a->rows, k = ta ? a->rows : a->cols;
    int kb = tb ? b->cols : b->rows, n = tb ? b->rows : b->cols;
    TG_CHECK(k == kb, at, "matmul", "inner sizes differ: A %dx%d%s, B %dx%d%s", a->rows,
             a->cols, ta ? "^T" : "", b->rows, b->cols, tb ? "^T" : "");
    int rec = tg_op_records(t, a, b, NULL);
    tg_tensor *c = tg_op_output(t, m, n, rec);
    int zero_a = tg_matmul_product(t, a, b, 0, ta, tb, NULL, 0, c->data);
    if (rec) {
        tg_node *node = tg_op_record(t, TG_OP_MATMUL, c, 2, a, b, NULL);
        node->iarg[0] = ta;
        node->iarg[1] = tb;
        node->iarg[2] = zero_a;
        tg_claim_grad_write(a); /* the VJP writes dA whole (a second use undoes it) */
    }
    return c;
}

void tg_matmul_backprop(const tg_node *node, const tg_tensor *a, const tg_tensor *b, int b_c0,
                        int ta, int tb, int zero_a, const tg_tensor *c, int threads)
{
    if (zero_a) return; /* a has no gradient, and adds nothing to b's */
    int m = c->rows, n = c->cols, k = ta ? a->rows : a->cols;
    tg_panel_src win = window(b, b_c0, tb, k);
    if (a->grad) {
        int beta = !tg_grad_writes(a); /* claimed and used once: written, not added */
        if (!ta) {
            /* dA = dC op(B)^T: panels of op(B)^T, i.e. of b with the other transpose */
            if (!gemm_on_panels(node->tape, m, k, n, c->grad, n, b, &win, !tb,
                                beta ? a->grad : NULL, a->cols, a->grad, a->cols))
                tg_gemm(0, !tb, m, k, n, 1, c->grad, n, win.data, win.ld, beta, a->grad, a->cols,
                        threads);
        }
        else
            tg_gemm(tb, 1, k, m, n, 1, win.data, win.ld, c->grad, n, beta, a->grad, a->cols,
                    threads);
    }
    /* op(A) as m contiguous rows of k: A itself (k = a->cols), or for m == 1
     * a k x 1 A too */
    if (b->grad && (m == 1 || (!ta && m <= TG_DEFER_MAX_ROWS)) &&
        tg_defer_rows(node, b, b_c0, tb, c->grad, n, a->data, k, m))
        return;
    if (b->grad) { /* into the window's columns of b's gradient */
        tg_real *gb = b->grad + b_c0;
        if (!tb)
            tg_gemm(!ta, 0, k, n, m, 1, a->data, a->cols, c->grad, n, 1, gb, b->cols, threads);
        else
            tg_gemm(1, ta, n, k, m, 1, c->grad, n, a->data, a->cols, 1, gb, b->cols, threads);
    }
}

void tg_vjp_matmul(const tg_node *node, int threads)
{
    tg_matmul_backprop(node, node->in[0], node->in[1], 0, node->iarg[0], node->iarg[1],
                       node->iarg[2], node->out, threads);
}
