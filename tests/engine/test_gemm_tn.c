/* The AVX-512 weight-gradient kernel (graph/tg_panels.h, tg_gemm_tn_panels):
 * C = beta C + A^T B with A (k x m) and B (k x n) read in place. Checked
 * here, where the CPU runs AVX-512 (skipped elsewhere):
 *   - against sums in double over shapes with tails in every blocking: rows
 *     of C in blocks of 8 and of 256 (TN_MC), columns inside, at and past a
 *     panel of 32 and a block of 256 (TN_NC), k inside, at and past a block
 *     of 128 (TN_KC), beta 0 and 1, row strides wider than the shapes;
 *   - nothing outside C's block is written; an empty sum (k = 0) gives beta C;
 *   - two threads give one thread's bits;
 *   - rows given one by one (tg_gemm_tn_panels_rows) give the gathered bits,
 *     packed in the caller's room or in one made for the product;
 *   - tg_gemm's A^T B (a weight's gradient) gives the kernel's bits where it
 *     takes the kernel (tg_gemm_tn_taken), and matches double sums either way. */
#include <criterion/criterion.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "tg_gemm.h"
#include "tg_panels.h"

#define GUARD ((tg_real)12345.5)

static tg_real *random_matrix(tg_rng *r, int rows, int ld)
{
    tg_real *x = malloc((size_t)rows * ld * sizeof *x);
    cr_assert_not_null(x);
    for (size_t i = 0; i < (size_t)rows * ld; i++) x[i] = (tg_real)tg_rng_normal(r);
    return x;
}

static void skip_without_avx512(void)
{
    if (!tg_panels_isa_runs(TG_PANEL_AVX512))
        cr_skip_test("the AVX-512 kernel does not run here (%s)", tg_panel_kernel());
}

/* C (m x n, stride ldc, a guard row below) = beta C0 + A^T B on `threads`,
 * C0[x] = x mod 7; checks the guard, returns the worst error against double
 * sums over the sum's length (k terms: a float sum rounds by up to ~k eps
 * of its size; a wrong element is off by ~1). */
static double check(int m, int n, int k, int beta, int threads)
{
    tg_rng r;
    tg_rng_seed(&r, (uint64_t)(m * 7919 + n * 104729 + k * 31 + beta));
    int lda = m + 3, ldb = n + 5, ldc = n + 2;
    tg_real *a = random_matrix(&r, k, lda), *b = random_matrix(&r, k, ldb);
    tg_real *c = malloc((size_t)(m + 1) * ldc * sizeof *c);
    for (int x = 0; x < (m + 1) * ldc; x++) c[x] = x % ldc < n && x / ldc < m ? x % 7 : GUARD;
    cr_assert(tg_gemm_tn_panels(m, n, k, a, lda, b, ldb, beta, c, ldc, threads),
              "%dx%dx%d: no room to pack", m, n, k);
    double worst = 0;
    for (int x = 0; x < (m + 1) * ldc; x++) {
        int i = x / ldc, j = x % ldc;
        if (i >= m || j >= n) {
            cr_assert_eq(c[x], GUARD, "%dx%dx%d: wrote row %d column %d", m, n, k, i, j);
            continue;
        }
        double s = beta ? x % 7 : 0;
        for (int p = 0; p < k; p++) s += (double)a[(size_t)p * lda + i] * b[(size_t)p * ldb + j];
        worst = fmax(worst, fabs(s - (double)c[x]));
    }
    free(a);
    free(b);
    free(c);
    return worst / k;
}

Test(gemm_tn, matches_double_sums_over_tails)
{
    skip_without_avx512();
    static const int ms[] = {1, 3, 8, 9, 13, 127, 128, 130, 256, 260};
    static const int ns[] = {1, 16, 31, 32, 33, 100, 256, 257, 512, 530};
    static const int ks[] = {1, 64, 127, 128, 129, 300};
    for (size_t i = 0; i < sizeof ms / sizeof *ms; i++)
        for (size_t j = 0; j < sizeof ns / sizeof *ns; j++)
            for (size_t l = 0; l < sizeof ks / sizeof *ks; l++)
                for (int beta = 0; beta <= 1; beta++) {
                    double e = check(ms[i], ns[j], ks[l], beta, 1);
                    cr_assert(e <= 2e-6, "%dx%dx%d beta=%d: off by %.3g over the sum's length",
                              ms[i], ns[j], ks[l], beta, e);
                }
}

/* The shapes of the benchmarks' weight gradients: W_hh at hidden 256 (a
 * sweep's deferred products, 1024 rows), the output layer at vocabulary
 * 1000 (f). */
Test(gemm_tn, weight_gradient_shapes)
{
    skip_without_avx512();
    cr_assert(check(1024, 256, 1024, 1, 1) <= 2e-6);
    cr_assert(check(1000, 256, 384, 1, 2) <= 2e-6);
}

/* k past one run of B's packing (1024 rows at a time), with a tail, over
 * two row blocks and a column tail: every element's k blocks in order. */
Test(gemm_tn, k_longer_than_one_packing_run)
{
    skip_without_avx512();
    for (int beta = 0; beta <= 1; beta++)
        for (int threads = 1; threads <= 2; threads++) {
            double e = check(300, 257, 2300, beta, threads);
            cr_assert(e <= 2e-6, "300x257x2300 beta=%d threads=%d: off by %.3g", beta, threads, e);
        }
}

/* No rows to sum over (k = 0): C = beta C, as a GEMM's empty sum is. */
Test(gemm_tn, an_empty_sum_gives_beta_c)
{
    skip_without_avx512();
    tg_real a[1] = {1}, b[1] = {1}, c[9 * 40];
    for (int beta = 0; beta <= 1; beta++) {
        for (int x = 0; x < 9 * 40; x++) c[x] = x % 40 < 33 ? 5 : GUARD;
        cr_assert(tg_gemm_tn_panels(9, 33, 0, a, 9, b, 33, beta, c, 40, 1));
        for (int x = 0; x < 9 * 40; x++)
            cr_assert_eq(c[x], x % 40 >= 33 ? GUARD : beta ? 5 : 0, "beta %d, element %d", beta,
                         x);
    }
}

Test(gemm_tn, threads_change_no_bit)
{
    skip_without_avx512();
    tg_rng r;
    tg_rng_seed(&r, 29);
    int m = 301, n = 257, k = 300;
    tg_real *a = random_matrix(&r, k, m), *b = random_matrix(&r, k, n);
    size_t bytes = (size_t)m * n * sizeof(tg_real);
    tg_real *c1 = malloc(bytes), *c2 = malloc(bytes);
    for (int beta = 0; beta <= 1; beta++) {
        for (int x = 0; x < m * n; x++) c1[x] = c2[x] = (tg_real)(x % 7);
        cr_assert(tg_gemm_tn_panels(m, n, k, a, m, b, n, beta, c1, n, 1));
        cr_assert(tg_gemm_tn_panels(m, n, k, a, m, b, n, beta, c2, n, 2));
        cr_assert(memcmp(c1, c2, bytes) == 0, "beta=%d: 1 and 2 threads differ", beta);
    }
    free(a);
    free(b);
    free(c1);
    free(c2);
}

/* The rows given one by one, in a shuffled order (as deferred products lie
 * in the arena), give the bits of the kernel on the rows gathered. */
Test(gemm_tn, listed_rows_give_the_gathered_bits)
{
    skip_without_avx512();
    tg_rng r;
    tg_rng_seed(&r, 37);
    int m = 77, n = 45, k = 300;
    tg_real *a = random_matrix(&r, k, m), *b = random_matrix(&r, k, n);
    tg_real *sa = random_matrix(&r, k, m + 1), *sb = random_matrix(&r, k, n + 2); /* stores */
    const tg_real **arows = malloc((size_t)k * sizeof *arows);
    const tg_real **brows = malloc((size_t)k * sizeof *brows);
    for (int q = 0; q < k; q++) { /* row q kept at row (7 q) mod k of the stores */
        int at = (7 * q) % k;
        memcpy(sa + (size_t)at * (m + 1), a + (size_t)q * m, (size_t)m * sizeof *a);
        memcpy(sb + (size_t)at * (n + 2), b + (size_t)q * n, (size_t)n * sizeof *b);
        arows[q] = sa + (size_t)at * (m + 1);
        brows[q] = sb + (size_t)at * (n + 2);
    }
    size_t bytes = (size_t)m * n * sizeof(tg_real), room_bytes = tg_gemm_tn_room(m, n, k, 1);
    tg_real *c1 = malloc(bytes), *c2 = malloc(bytes);
    tg_real *room = aligned_alloc(64, (room_bytes + 63) / 64 * 64);
    for (size_t x = 0; x < room_bytes / sizeof *room; x++) room[x] = NAN; /* left over, unread */
    for (int beta = 0; beta <= 1; beta++)
        for (int given = 0; given <= 1; given++) { /* packing room the caller's, or made */
            for (int x = 0; x < m * n; x++) c1[x] = c2[x] = (tg_real)(x % 7);
            cr_assert(tg_gemm_tn_panels(m, n, k, a, m, b, n, beta, c1, n, 1));
            cr_assert(tg_gemm_tn_panels_rows(m, n, k, arows, brows, beta, c2, n, 1,
                                             given ? room : NULL));
            cr_assert(memcmp(c1, c2, bytes) == 0, "beta=%d, room %s: listed rows differ", beta,
                      given ? "given" : "made");
        }
    free(room);
    free(arows);
    free(brows);
    free(a);
    free(b);
    free(sa);
    free(sb);
    free(c1);
    free(c2);
}

/* tg_gemm(1, 0, ..): the weight gradient's call. Where it takes the kernel
 * (the panels run AVX-512, whatever the BLAS core) its bits are the kernel's;
 * everywhere, it matches double sums. */
Test(gemm_tn, tg_gemm_weight_gradient)
{
    tg_rng r;
    tg_rng_seed(&r, 31);
    int m = 200, n = 100, k = 300;
    tg_real *a = random_matrix(&r, k, m), *b = random_matrix(&r, k, n);
    size_t bytes = (size_t)m * n * sizeof(tg_real);
    tg_real *c = malloc(bytes), *d = malloc(bytes);
    for (int x = 0; x < m * n; x++) c[x] = d[x] = (tg_real)(x % 7);
    tg_gemm(1, 0, m, n, k, 1, a, m, b, n, 1, c, n, 1);
    double worst = 0;
    for (int i = 0; i < m; i++)
        for (int j = 0; j < n; j++) {
            double s = (i * n + j) % 7;
            for (int p = 0; p < k; p++) s += (double)a[(size_t)p * m + i] * b[(size_t)p * n + j];
            worst = fmax(worst, fabs(s - (double)c[i * n + j]));
        }
    double tol = sizeof(tg_real) == sizeof(float) ? 2e-6 : 1e-14;
    cr_assert(worst / k <= tol, "off by %.3g over the sum's length", worst / k);
    cr_log_info("tg_gemm %s the kernel (BLAS core %s)",
                tg_gemm_tn_taken(m, n, k) ? "takes" : "does not take", tg_blas_core());
    if (tg_gemm_tn_taken(m, n, k)) {
        cr_assert(tg_gemm_tn_panels(m, n, k, a, m, b, n, 1, d, n, 1));
        cr_assert(memcmp(c, d, bytes) == 0, "tg_gemm took the kernel, yet its bits differ");
    }
    free(a);
    free(b);
    free(c);
    free(d);
}
