/* Weight panels (graph/tg_panels.h): products with few rows against a leaf
 * matrix run on that matrix packed once per tape. Checked here:
 *   - C = A op(B) and dA = dC op(B)^T (added into a pre-filled gradient)
 *     against sums in double, over row counts that exercise every row block
 *     (8, 4, 2, 1) and column counts that end inside, at and past a panel;
 *   - the products really ran on panels where the CPU has them;
 *   - a leaf changed after tg_backward or tg_tape_reset is packed again, so
 *     stale panels never reach a result. */
#include <criterion/criterion.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "tg_op.h"
#include "tg_panels.h"

static tg_tensor *random_tensor(tg_rng *r, int rows, int cols, int grad)
{
    tg_tensor *x = tg_tensor_alloc(rows, cols, grad);
    cr_assert_not_null(x);
    for (size_t i = 0; i < tg_numel(x); i++) x->data[i] = (tg_real)tg_rng_normal(r);
    return x;
}

/* op(B)[p][j] */
static double opb(const tg_tensor *b, int tb, int p, int j)
{
    return tb ? (double)b->data[(size_t)j * b->cols + p] : (double)b->data[(size_t)p * b->cols + j];
}

/* The product C = A op(B) (A m x k, B a leaf) made twice on one tape, as a
 * recurrent step makes it (a matrix with few rows is packed at its second
 * use), each against double sums, and dA from both (seed G on each) against
 * 0.5 + 2 G op(B)^T; returns the worst error over the longest sum's length
 * (a float sum of n terms of size ~sqrt(n) rounds by up to ~n eps; a wrong
 * element is off by ~1). */
static double check_shape(int m, int n, int k, int tb)
{
    tg_rng r;
    tg_rng_seed(&r, (uint64_t)(m * 7919 + n * 104729 + k * 31 + tb));
    tg_tensor *a = random_tensor(&r, m, k, 1), *b = random_tensor(&r, tb ? n : k, tb ? k : n, 0);
    for (size_t i = 0; i < tg_numel(a); i++) a->grad[i] = 0.5f; /* VJPs add */
    tg_tape *t = tg_tape_new((size_t)1 << 22);
    tg_tensor *c[2] = {tg_matmul(t, a, b, 0, tb), tg_matmul(t, a, b, 0, tb)};
    if (tg_panels_available() && tg_panels_suit(m, n, k))
        cr_expect(tg_panels_held(tg_matmul_panel_cache(t), b, tb),
                  "%dx%dx%d tb=%d: the products did not pack B", m, n, k, tb);
    tg_real *seed = malloc((size_t)m * n * sizeof *seed);
    for (int i = 0; i < m * n; i++) seed[i] = (tg_real)tg_rng_normal(&r);
    tg_backward_seeded(t, tg_add(t, c[0], c[1]), seed);
    double worst = 0;
    for (int i = 0; i < m; i++)
        for (int j = 0; j < n; j++) {
            double s = 0;
            for (int p = 0; p < k; p++) s += (double)a->data[(size_t)i * k + p] * opb(b, tb, p, j);
            for (int v = 0; v < 2; v++)
                worst = fmax(worst, fabs(s - (double)c[v]->data[(size_t)i * n + j]));
        }
    for (int i = 0; i < m; i++) /* dA[i][p] = 0.5 + 2 sum_j G[i][j] op(B)[p][j] */
        for (int p = 0; p < k; p++) {
            double s = 0;
            for (int j = 0; j < n; j++) s += (double)seed[(size_t)i * n + j] * opb(b, tb, p, j);
            worst = fmax(worst, fabs(0.5 + 2 * s - (double)a->grad[(size_t)i * k + p]));
        }
    free(seed);
    tg_tape_free(t);
    tg_tensor_free(a);
    tg_tensor_free(b);
    return worst / (double)(k > n ? k : n);
}

Test(panels, products_and_input_gradients_match_double_sums)
{
    static const int ms[] = {1, 2, 3, 5, 7, 8, 9, 13, 16, 31, 64, 100, 257};
    static const int ns[] = {16, 17, 31, 32, 33, 100, 256};
    static const int ks[] = {8, 9, 100};
    cr_log_info("panel kernel %s", tg_panels_available() ? "available" : "not available (BLAS)");
    double tol = sizeof(tg_real) == sizeof(float) ? 2e-6 : 1e-14;
    for (size_t i = 0; i < sizeof ms / sizeof ms[0]; i++)
        for (size_t j = 0; j < sizeof ns / sizeof ns[0]; j++)
            for (size_t l = 0; l < sizeof ks / sizeof ks[0]; l++)
                for (int tb = 0; tb <= 1; tb++) {
                    double e = check_shape(ms[i], ns[j], ks[l], tb);
                    cr_assert(e <= tol, "%dx%dx%d tb=%d: off by %.3g (over the sum's length)",
                              ms[i], ns[j], ks[l], tb, e);
                }
}

/* The recurrent shapes of the benchmarks, W_hh^T at hidden 256 and 512. */
Test(panels, recurrent_shapes)
{
    double tol = sizeof(tg_real) == sizeof(float) ? 2e-6 : 1e-14;
    cr_assert(check_shape(16, 1024, 256, 1) <= tol);
    double e = check_shape(32, 2048, 512, 1);
    cr_log_info("32x2048x512: %.3g", e);
    cr_assert(e <= tol);
    cr_assert(check_shape(1, 100, 100, 1) <= tol);
}

/* y = A B^T on one tape, twice, with B's values changed in between. */
static void expect_follows(tg_tape *t, tg_tensor *a, tg_tensor *b, const char *when)
{
    tg_tensor *y = tg_matmul(t, a, b, 0, 1);
    for (int i = 0; i < a->rows; i++)
        for (int j = 0; j < b->rows; j++) {
            double s = 0;
            for (int p = 0; p < a->cols; p++)
                s += (double)a->data[(size_t)i * a->cols + p] * (double)b->data[(size_t)j * b->cols + p];
            cr_assert(fabs(s - (double)y->data[(size_t)i * b->rows + j]) < 1e-4,
                      "%s: stale panels (%d,%d): %g vs %g", when, i, j, s,
                      (double)y->data[(size_t)i * b->rows + j]);
        }
}

Test(panels, changed_leaf_is_packed_again)
{
    tg_rng r;
    tg_rng_seed(&r, 5);
    tg_tensor *a = random_tensor(&r, 4, 40, 1), *b = random_tensor(&r, 48, 40, 1);
    tg_tape *t = tg_tape_new((size_t)1 << 20);
    tg_tensor *y = tg_matmul(t, a, b, 0, 1);
    expect_follows(t, a, b, "first use");
    tg_backward(t, tg_sum(t, y));
    for (size_t i = 0; i < tg_numel(b); i++) b->data[i] -= 0.1f * b->grad[i]; /* an SGD step */
    expect_follows(t, a, b, "after tg_backward, same tape");
    tg_tape_reset(t);
    for (size_t i = 0; i < tg_numel(b); i++) b->data[i] *= -2;
    expect_follows(t, a, b, "after tg_tape_reset");
    tg_tape_free(t);
    tg_tensor_free(a);
    tg_tensor_free(b);
}

/* The kernel writes C's m x n block and nothing else: every row is followed
 * by guard columns (ldc > n) and the block by a guard row, which must keep
 * their values (masked stores are invisible to AddressSanitizer). */
Test(panels, kernel_writes_only_its_block)
{
    if (!tg_panels_available()) return; /* nothing runs on panels here */
    tg_rng r;
    tg_rng_seed(&r, 17);
    const int ms[] = {1, 2, 3, 4, 5, 8, 9, 15}, ns[] = {16, 17, 31, 32, 33, 47, 63, 64, 65};
    const tg_real guard = (tg_real)12345.5;
    for (size_t i = 0; i < sizeof ms / sizeof ms[0]; i++)
        for (size_t j = 0; j < sizeof ns / sizeof ns[0]; j++) {
            int m = ms[i], n = ns[j], k = 9, ldc = n + 3;
            tg_tensor *a = random_tensor(&r, m, k, 0), *b = random_tensor(&r, n, k, 0);
            tg_panel_cache *cache = tg_panel_cache_new();
            const tg_real *p = tg_panels_of(cache, b, 1, 128);
            cr_assert_not_null(p);
            tg_real *c = malloc((size_t)(m + 1) * ldc * sizeof *c);
            for (int beta = 0; beta <= 1; beta++) {
                for (int x = 0; x < (m + 1) * ldc; x++) c[x] = guard;
                tg_gemm_panels(m, n, k, a->data, k, p, beta, c, ldc, 1);
                for (int x = 0; x < (m + 1) * ldc; x++) {
                    int row = x / ldc, col = x % ldc;
                    if (row < m && col < n) continue;
                    cr_assert_eq(c[x], guard, "m=%d n=%d beta=%d: wrote row %d column %d", m, n,
                                 beta, row, col);
                }
            }
            free(c);
            tg_panel_cache_free(cache);
            tg_tensor_free(a);
            tg_tensor_free(b);
        }
}

/* A large product split over threads gives the single thread's bits. */
Test(panels, threads_change_no_bit)
{
    if (!tg_panels_available()) return;
    tg_rng r;
    tg_rng_seed(&r, 23);
    int m = 301, n = 257, k = 256;
    tg_tensor *a = random_tensor(&r, m, k, 0), *b = random_tensor(&r, n, k, 0);
    tg_panel_cache *cache = tg_panel_cache_new();
    const tg_real *p = tg_panels_of(cache, b, 1, 128);
    cr_assert_not_null(p);
    tg_real *c1 = malloc((size_t)m * n * sizeof *c1), *c2 = malloc((size_t)m * n * sizeof *c2);
    for (int beta = 0; beta <= 1; beta++) {
        for (int x = 0; x < m * n; x++) c1[x] = c2[x] = (tg_real)(x % 7);
        tg_gemm_panels(m, n, k, a->data, k, p, beta, c1, n, 1);
        tg_gemm_panels(m, n, k, a->data, k, p, beta, c2, n, 2);
        cr_assert(memcmp(c1, c2, (size_t)m * n * sizeof *c1) == 0, "beta=%d: 1 and 2 threads differ",
                  beta);
    }
    free(c1);
    free(c2);
    tg_panel_cache_free(cache);
    tg_tensor_free(a);
    tg_tensor_free(b);
}
