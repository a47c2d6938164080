/* Deferred weight gradients (tg_defer_rows in ops/tg_op.h): a matmul of few
 * rows hands its contribution to a weight's gradient over, and all of a
 * weight's are added with one GEMM over their stacked rows: after the sweep
 * for a leaf, before the VJP of the op that made it for an op output.
 * The graph here is a recurrence of batch 1 (rank-1 products), of batch 3
 * (rows of h with a stride) and of batch 8 (enough rows for the weight-
 * gradient kernel, which reads the products in place), with both transpose flags on the weight (h W^T
 * and h U) and a one-column left operand (c^T V), over odd sizes.
 *   - the gradients equal those of a tape whose arena is exactly as large as
 *     the forward pass (no room for the bookkeeping: every product is added
 *     at once, rank-1 by rank-1), to rounding;
 *   - so do those of the graph with each weight behind scale(w, 1), an op
 *     output, whose products must be added before scale's VJP reads them;
 *   - pre-filled leaf gradients are added to, not overwritten;
 *   - a second backward over the same tape gives the same bits, and a
 *     backward leaves the arena where it found it;
 *   - an arena with no room for the bookkeeping falls back to adding at once,
 *     op-output weights included. */
#include <criterion/criterion.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "tapegrad.h"
#include "tg_gemm.h"

#ifdef TG_REAL_DOUBLE
#define RTOL 1e-12
#else
#define RTOL 2e-5
#endif

enum { E = 11, H = 37, T = 9, N_LEAF = 6 };

typedef struct model {
    int batch;
    tg_tensor *x, *wx, *wh, *u, *c, *v; /* x: T*batch x E inputs; c: H x 1 */
    tg_tensor *leaf[N_LEAF];
} model;

static tg_tensor *heap(tg_rng *r, int rows, int cols, double scale)
{
    tg_tensor *x = tg_tensor_alloc(rows, cols, 1);
    cr_assert_not_null(x);
    for (size_t i = 0; i < tg_numel(x); i++) x->data[i] = (tg_real)(scale * tg_rng_normal(r));
    return x;
}

static void model_init(model *m, int batch)
{
    tg_rng r;
    tg_rng_seed(&r, 77);
    m->batch = batch;
    m->x = heap(&r, T * batch, E, 1.0);
    m->wx = heap(&r, H, E, 0.3);
    m->wh = heap(&r, H, H, 0.2);
    m->u = heap(&r, H, H, 0.1);
    m->c = heap(&r, H, 1, 0.5);
    m->v = heap(&r, H, H, 0.2);
    tg_tensor *all[N_LEAF] = {m->x, m->wx, m->wh, m->u, m->c, m->v};
    memcpy(m->leaf, all, sizeof all);
}

static void model_free(model *m)
{
    for (int i = 0; i < N_LEAF; i++) tg_tensor_free(m->leaf[i]);
}

static void zero_grads(model *m)
{
    for (int i = 0; i < N_LEAF; i++)
        memset(m->leaf[i]->grad, 0, tg_numel(m->leaf[i]) * sizeof(tg_real));
}

/* h_t = tanh(x_t Wx^T + h_{t-1} Wh^T + h_{t-1} U + c^T V); loss = sum of
 * h_t * (t+1) / T over all steps. through_scale puts every weight behind
 * scale(w, 1), an op output: its contributions are deferred until just
 * before scale's VJP (matmul's settle hook). */
static tg_tensor *loss_of(tg_tape *t, model *m, int through_scale)
{
    tg_tensor *wx = m->wx, *wh = m->wh, *u = m->u, *v = m->v;
    if (through_scale) {
        wx = tg_scale(t, wx, 1.0);
        wh = tg_scale(t, wh, 1.0);
        u = tg_scale(t, u, 1.0);
        v = tg_scale(t, v, 1.0);
    }
    tg_tensor *bias = tg_matmul(t, m->c, v, 1, 0); /* 1 x H: op(A) = c^T */
    tg_tensor *h = tg_tensor_new(t, m->batch, H, 0), *loss = NULL;
    for (int s = 0; s < T; s++) {
        tg_tensor *xs = tg_row_slice(t, m->x, s * m->batch, m->batch);
        tg_tensor *pre = tg_add(t, tg_matmul(t, xs, wx, 0, 1), tg_matmul(t, h, wh, 0, 1));
        h = tg_tanh(t, tg_add(t, tg_add(t, pre, tg_matmul(t, h, u, 0, 0)), bias));
        tg_tensor *ls = tg_scale(t, tg_sum(t, h), (double)(s + 1) / T);
        loss = loss ? tg_add(t, loss, ls) : ls;
    }
    return loss;
}

/* An arena exactly as large as the forward pass needs: no room left for
 * deferring anything. */
static size_t forward_bytes(model *m, int through_scale)
{
    tg_tape *probe = tg_tape_new((size_t)1 << 20);
    loss_of(probe, m, through_scale);
    size_t need = tg_tape_arena_used(probe);
    tg_tape_free(probe);
    return need;
}

/* grads[i] = the leaves' gradients after one backward from zero; with
 * at_once, on a tape with no room to defer. */
static void gradients(model *m, int through_scale, int at_once, tg_real *grads[N_LEAF])
{
    tg_tape *t = tg_tape_new(at_once ? forward_bytes(m, through_scale) : (size_t)1 << 20);
    zero_grads(m);
    tg_backward(t, loss_of(t, m, through_scale));
    for (int i = 0; i < N_LEAF; i++) {
        grads[i] = malloc(tg_numel(m->leaf[i]) * sizeof(tg_real));
        cr_assert_not_null(grads[i]);
        memcpy(grads[i], m->leaf[i]->grad, tg_numel(m->leaf[i]) * sizeof(tg_real));
    }
    tg_tape_free(t);
}

static void free_grads(tg_real *g[N_LEAF])
{
    for (int i = 0; i < N_LEAF; i++) free(g[i]);
}

static void expect_close(const model *m, tg_real *const got[N_LEAF], tg_real *const want[N_LEAF],
                         const char *what)
{
    for (int i = 0; i < N_LEAF; i++) {
        size_t n = tg_numel(m->leaf[i]);
        double scale = 0;
        for (size_t j = 0; j < n; j++) scale = fmax(scale, fabs((double)want[i][j]));
        cr_assert(scale > 0, "%s: leaf %d has a zero gradient", what, i);
        for (size_t j = 0; j < n; j++)
            cr_assert(fabs((double)got[i][j] - (double)want[i][j]) <= RTOL * scale,
                      "%s: leaf %d element %zu: %.9g vs %.9g", what, i, j, (double)got[i][j],
                      (double)want[i][j]);
    }
}

static void deferred_equal_at_once(int batch, int through_scale)
{
    model m;
    model_init(&m, batch);
    tg_real *deferred[N_LEAF], *chain[N_LEAF];
    gradients(&m, through_scale, 0, deferred);
    gradients(&m, 0, 1, chain);
    expect_close(&m, deferred, chain, through_scale ? "op outputs deferred" : "leaves deferred");
    free_grads(deferred);
    free_grads(chain);
    model_free(&m);
}

Test(defer, deferred_gradients_equal_the_rank1_chain) { deferred_equal_at_once(1, 0); }
Test(defer, deferred_row_products_equal_the_chain) { deferred_equal_at_once(3, 0); }
Test(defer, op_output_weights_settled_before_their_op) { deferred_equal_at_once(1, 1); }
Test(defer, op_output_row_products_settled_before_their_op) { deferred_equal_at_once(3, 1); }
/* Batch 8: a weight's 72 stacked rows are enough for the weight-gradient
 * kernel (tg_gemm_tn_taken), which then reads the products where they are,
 * listed row by row, instead of copies (ops/matmul_tape.c, add_listed);
 * W_x (11 columns) and c stay stacked. */
Test(defer, listed_row_products_equal_the_chain)
{
    cr_log_info("37 x 37 weights over 72 rows: %s", tg_gemm_tn_taken(H, H, T * 8)
                                                        ? "listed, on the kernel"
                                                        : "stacked (the kernel does not run here)");
    deferred_equal_at_once(8, 0);
}
Test(defer, op_output_listed_row_products_settled) { deferred_equal_at_once(8, 1); }

/* Two ranges of one weight's columns (tg_affine_cols: a decoder's W_ih seen
 * from its embedding's and its context's columns), of the same width, each
 * with its products deferred: kept apart, each added into its own columns
 * (stacked with batch 3, listed on the weight-gradient kernel with batch 8:
 * 72 rows), against sums in double. loss = sum over steps of
 * sum((xa_s W[:, 0:R]^T + xb_s W[:, R:2R]^T) * coef_s). */
static void column_ranges_deferred_apart(int batch)
{
    enum { R = 20, NW = 40 };
    tg_rng r;
    tg_rng_seed(&r, 99);
    tg_tensor *w = heap(&r, NW, 2 * R, 0.3), *xa = heap(&r, T * batch, R, 1.0);
    tg_tensor *xb = heap(&r, T * batch, R, 1.0), *coef = heap(&r, T * batch, NW, 1.0);
    memset(w->grad, 0, tg_numel(w) * sizeof *w->grad);
    tg_tape *t = tg_tape_new((size_t)1 << 22);
    tg_tensor *loss = NULL;
    for (int s = 0; s < T; s++) {
        tg_tensor *ya = tg_affine_cols(t, tg_row_slice(t, xa, s * batch, batch), w, 0, NULL);
        tg_tensor *yb = tg_affine_cols(t, tg_row_slice(t, xb, s * batch, batch), w, R, NULL);
        tg_tensor *ls = tg_sum(t, tg_mul(t, tg_add(t, ya, yb),
                                         tg_row_slice(t, coef, s * batch, batch)));
        loss = loss ? tg_add(t, loss, ls) : ls;
    }
    tg_backward(t, loss);
    double worst = 0;
    for (int j = 0; j < NW; j++)
        for (int q = 0; q < 2 * R; q++) {
            const tg_tensor *x = q < R ? xa : xb;
            double want = 0;
            for (int i = 0; i < T * batch; i++)
                want += (double)coef->data[(size_t)i * NW + j] *
                        (double)x->data[(size_t)i * R + q % R];
            double got = (double)w->grad[(size_t)j * 2 * R + q];
            worst = fmax(worst, fabs(got - want) / fmax(1.0, fabs(want)));
        }
    cr_assert(worst < RTOL * 10, "batch %d: dW off by %g (relative)", batch, worst);
    tg_tape_free(t);
    tg_tensor *all[4] = {w, xa, xb, coef};
    for (int i = 0; i < 4; i++) tg_tensor_free(all[i]);
}

Test(defer, column_ranges_stacked_apart) { column_ranges_deferred_apart(3); }
Test(defer, column_ranges_listed_apart) { column_ranges_deferred_apart(8); }

Test(defer, prefilled_gradients_accumulate)
{
    model m;
    model_init(&m, 1);
    tg_real *fresh[N_LEAF], *want[N_LEAF];
    gradients(&m, 0, 0, fresh);
    tg_tape *t = tg_tape_new((size_t)1 << 20);
    for (int i = 0; i < N_LEAF; i++) {
        want[i] = malloc(tg_numel(m.leaf[i]) * sizeof(tg_real));
        cr_assert_not_null(want[i]);
        for (size_t j = 0; j < tg_numel(m.leaf[i]); j++) {
            m.leaf[i]->grad[j] = (tg_real)(0.25 * (double)(j % 7) - 0.5);
            want[i][j] = m.leaf[i]->grad[j] + fresh[i][j];
        }
    }
    tg_backward(t, loss_of(t, &m, 0));
    tg_real *got[N_LEAF];
    for (int i = 0; i < N_LEAF; i++) got[i] = m.leaf[i]->grad;
    expect_close(&m, got, want, "pre-filled");
    tg_tape_free(t);
    free_grads(fresh);
    free_grads(want);
    model_free(&m);
}

static void second_backward_same_bits(int batch, int through_scale)
{
    model m;
    model_init(&m, batch);
    tg_tape *t = tg_tape_new((size_t)1 << 20);
    tg_tensor *loss = loss_of(t, &m, through_scale);
    size_t level = tg_tape_arena_used(t);
    zero_grads(&m);
    tg_backward(t, loss);
    cr_assert_eq(tg_tape_arena_used(t), level, "backward left %zu bytes in the arena",
                 tg_tape_arena_used(t) - level);
    /* the row copies of Wh's products were there (T - 1 of them: the first
     * step's h is a constant of zeros, whose product is skipped), so the
     * products were deferred; each weight's copies are given back after its
     * GEMM, so this is the largest weight's, not their sum */
    cr_assert(tg_tape_arena_high_water(t) >=
                  level + (size_t)(T - 1) * batch * (H + H) * sizeof(tg_real),
              "backward used %zu bytes above the forward pass",
              tg_tape_arena_high_water(t) - level);
    tg_real *first[N_LEAF];
    for (int i = 0; i < N_LEAF; i++) {
        first[i] = malloc(tg_numel(m.leaf[i]) * sizeof(tg_real));
        cr_assert_not_null(first[i]);
        memcpy(first[i], m.leaf[i]->grad, tg_numel(m.leaf[i]) * sizeof(tg_real));
    }
    zero_grads(&m);
    tg_backward(t, loss);
    for (int i = 0; i < N_LEAF; i++)
        cr_assert(memcmp(first[i], m.leaf[i]->grad, tg_numel(m.leaf[i]) * sizeof(tg_real)) == 0,
                  "leaf %d: second backward differs", i);
    free_grads(first);
    tg_tape_free(t);
    model_free(&m);
}

Test(defer, second_backward_same_bits_and_arena_level_kept) { second_backward_same_bits(1, 0); }
Test(defer, rows_second_backward_same_bits) { second_backward_same_bits(3, 0); }
Test(defer, op_outputs_second_backward_same_bits) { second_backward_same_bits(3, 1); }

static void full_arena_adds_at_once(int batch)
{
    model m;
    model_init(&m, batch);
    tg_real *want[N_LEAF];
    gradients(&m, 0, 0, want); /* leaves deferred, room to spare */
    /* the op-output weights with no room: each product added at once, before
     * scale's VJP reads the weight's gradient */
    tg_tape *t = tg_tape_new(forward_bytes(&m, 1));
    tg_tensor *loss = loss_of(t, &m, 1);
    cr_assert_eq(tg_tape_arena_used(t), tg_tape_arena_capacity(t));
    zero_grads(&m);
    tg_backward(t, loss);
    tg_real *got[N_LEAF];
    for (int i = 0; i < N_LEAF; i++) got[i] = m.leaf[i]->grad;
    expect_close(&m, got, want, "full arena");
    tg_tape_free(t);
    free_grads(want);
    model_free(&m);
}

Test(defer, full_arena_adds_at_once) { full_arena_adds_at_once(1); }
Test(defer, rows_full_arena_adds_at_once) { full_arena_adds_at_once(3); }
