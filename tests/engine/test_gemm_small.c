/* tg_gemm on the shapes with a single row or a single inner index, which
 * graph/gemm.c serves with its own vector kernels (one row times a matrix,
 * the same transposed, rank-1 updates): every transpose flag, padded leading
 * dimensions, lengths around the vector widths (tails of quarter vectors and
 * single values), and alpha/beta as the VJPs and constructors use them,
 * against a double-precision reference. */
#include <criterion/criterion.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "tg_op.h"

#ifdef TG_REAL_DOUBLE
#define RTOL 1e-13
#else
#define RTOL 2e-6
#endif

static const int sizes[] = {1, 2, 3, 4, 5, 7, 8, 9, 15, 16, 17, 31, 33, 64, 100, 129, 200};
#define NSIZES ((int)(sizeof sizes / sizeof *sizes))

static double uniform(uint64_t *s)
{
    *s = *s * 6364136223846793005ull + 1442695040888963407ull;
    return (double)(*s >> 11) / 9007199254740992.0 * 2.0 - 1.0;
}

static tg_real *random_block(size_t n, uint64_t *s)
{
    tg_real *x = malloc((n ? n : 1) * sizeof *x);
    cr_assert_not_null(x);
    for (size_t i = 0; i < n; i++) x[i] = (tg_real)uniform(s);
    return x;
}

static double elem(const tg_real *x, int ld, int trans, int i, int j)
{
    return (double)(trans ? x[(size_t)j * ld + i] : x[(size_t)i * ld + j]);
}

/* C = alpha op(A) op(B) + beta C with leading dimensions padded by pad. */
static void check_shape(int ta, int tb, int m, int n, int k, double alpha, double beta, int pad,
                        uint64_t *s)
{
    int ar = ta ? k : m, ac = ta ? m : k, br = tb ? n : k, bc = tb ? k : n;
    int lda = ac + pad, ldb = bc + pad, ldc = n + pad;
    tg_real *a = random_block((size_t)ar * lda, s), *b = random_block((size_t)br * ldb, s);
    tg_real *c = random_block((size_t)m * ldc, s), *c0 = malloc((size_t)m * ldc * sizeof *c0);
    cr_assert_not_null(c0);
    if (beta == 0)
        for (size_t i = 0; i < (size_t)m * ldc; i++) c[i] = (tg_real)NAN; /* must be ignored */
    memcpy(c0, c, (size_t)m * ldc * sizeof *c);
    tg_gemm(ta, tb, m, n, k, (tg_real)alpha, a, lda, b, ldb, (tg_real)beta, c, ldc, 1);
    for (int i = 0; i < m; i++)
        for (int j = 0; j < ldc; j++) {
            size_t at = (size_t)i * ldc + j;
            if (j >= n) { /* padding is never written */
                cr_assert(memcmp(&c[at], &c0[at], sizeof *c) == 0 || (isnan(c[at]) && isnan(c0[at])),
                          "ta=%d tb=%d m=%d n=%d k=%d: padding C[%d,%d] written", ta, tb, m, n, k,
                          i, j);
                continue;
            }
            double want = 0, mag = 0;
            for (int p = 0; p < k; p++) {
                double t = elem(a, lda, ta, i, p) * elem(b, ldb, tb, p, j);
                want += t;
                mag += fabs(t);
            }
            want *= alpha;
            mag *= fabs(alpha);
            if (beta != 0) {
                want += beta * (double)c0[at];
                mag += fabs(beta * (double)c0[at]);
            }
            cr_assert(fabs((double)c[at] - want) <= RTOL * (mag + 1e-30) * 4,
                      "ta=%d tb=%d m=%d n=%d k=%d alpha=%g beta=%g pad=%d: C[%d,%d] = %.9g, "
                      "expected %.9g",
                      ta, tb, m, n, k, alpha, beta, pad, i, j, (double)c[at], want);
        }
    free(a);
    free(b);
    free(c);
    free(c0);
}

static const double coefs[][2] = {{1, 0}, {1, 1}, {0.5, -2}};

Test(gemm_small, one_row_times_matrix_every_flag)
{
    uint64_t s = 1;
    for (int ta = 0; ta < 2; ta++)
        for (int tb = 0; tb < 2; tb++)
            for (int x = 0; x < NSIZES; x++)
                for (int y = 0; y < NSIZES; y += 3)
                    for (int c = 0; c < 3; c++)
                        check_shape(ta, tb, 1, sizes[x], sizes[y], coefs[c][0], coefs[c][1],
                                    (x + y) % 3, &s);
}

Test(gemm_small, rank1_update_every_flag)
{
    uint64_t s = 2;
    for (int ta = 0; ta < 2; ta++)
        for (int tb = 0; tb < 2; tb++)
            for (int x = 1; x < NSIZES; x += 2)
                for (int y = 0; y < NSIZES; y++)
                    for (int c = 0; c < 3; c++)
                        check_shape(ta, tb, sizes[x], sizes[y], 1, coefs[c][0], coefs[c][1],
                                    (x + y) % 3, &s);
}

Test(gemm_small, one_column_and_larger_shapes_still_right)
{
    uint64_t s = 3;
    for (int ta = 0; ta < 2; ta++)
        for (int tb = 0; tb < 2; tb++) {
            check_shape(ta, tb, 37, 1, 19, 1, 1, 1, &s);
            check_shape(ta, tb, 5, 7, 3, 1, 0, 0, &s);
            check_shape(ta, tb, 1, 1200, 1000, 1, 1, 0, &s); /* past the kernels' size limit */
        }
}

/* The kernels' lanes do not depend on where the data sits: the same
 * product from shifted copies of the operands gives the same bits. */
Test(gemm_small, results_do_not_depend_on_alignment)
{
    if (!tg_gemm_small_own())
        cr_skip_test("level-2 BLAS runs these shapes here (%s), not our kernels", tg_blas_core());
    uint64_t s = 4;
    const int n = 100, k = 100;
    tg_real *a = random_block(k + 16, &s), *b = random_block((size_t)n * k + 16, &s);
    tg_real *c = random_block((size_t)n * k + 16, &s), *c1 = malloc(((size_t)n * k + 16) * sizeof *c1);
    cr_assert_not_null(c1);
    tg_real ref[100], got[100];
    for (int tb = 0; tb < 2; tb++) {
        tg_gemm(0, tb, 1, n, k, 1, a, k, b, k, 0, ref, n, 1);
        for (int off = 1; off < 16; off++) {
            memmove(a + off, a, k * sizeof *a);
            memmove(b + off, b, (size_t)n * k * sizeof *b);
            tg_gemm(0, tb, 1, n, k, 1, a + off, k, b + off, k, 0, got, n, 1);
            cr_assert(memcmp(ref, got, sizeof ref) == 0, "tb=%d: offset %d changes the bits", tb,
                      off);
            memmove(a, a + off, k * sizeof *a);
            memmove(b, b + off, (size_t)n * k * sizeof *b);
        }
    }
    /* rank-1 update into C at every offset */
    memcpy(c1, c, ((size_t)n * k + 16) * sizeof *c);
    tg_gemm(1, 0, n, k, 1, 1, a, n, b, k, 1, c1, k, 1);
    for (int off = 1; off < 16; off++) {
        tg_real *d = malloc(((size_t)n * k + 16) * sizeof *d);
        cr_assert_not_null(d);
        memcpy(d + off, c, (size_t)n * k * sizeof *c);
        tg_gemm(1, 0, n, k, 1, 1, a, n, b, k, 1, d + off, k, 1);
        cr_assert(memcmp(d + off, c1, (size_t)n * k * sizeof *c) == 0,
                  "rank-1 update: offset %d changes the bits", off);
        free(d);
    }
    free(a);
    free(b);
    free(c);
    free(c1);
}
