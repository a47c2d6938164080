/* GEMM: BLAS when the build has it, a portable blocked kernel otherwise.
 *
 * Never nest thread pools: the library's own parallelism is OpenMP, so BLAS
 * runs single-threaded (programs call tg_blas_set_threads(1) at start-up) and
 * the fallback splits rows of C across OpenMP threads. Each element of C is
 * summed in the same order whatever the thread count. */
#include "tg_op.h"

#if defined(TG_USE_CBLAS)
#include <cblas.h>

#ifdef TG_REAL_DOUBLE
#define GEMV cblas_dgemv
#define GER cblas_dger
#else
#define GEMV cblas_sgemv
#define GER cblas_sger
#endif

/* Shapes with a single row, column or inner index go to level-2 BLAS:
 * OpenBLAS's gemm packs both operands even for one row, which cost more
 * than the product itself in batch-1 training (config d of BENCHMARKS.md).
 * Returns 0 when the shape is a real matrix product. */
static int level2(int ta, int tb, int m, int n, int k, tg_real alpha, const tg_real *a, int lda,
                  const tg_real *b, int ldb, tg_real beta, tg_real *c, int ldc)
{
    if (m == 1) { /* c (1 x n) = a op(B): op(B)^T times the vector a */
        GEMV(CblasRowMajor, tb ? CblasNoTrans : CblasTrans, tb ? n : k, tb ? k : n, alpha, b, ldb,
             a, ta ? lda : 1, beta, c, 1);
        return 1;
    }
    if (n == 1) { /* c (m x 1, stride ldc) = op(A) b */
        GEMV(CblasRowMajor, ta ? CblasTrans : CblasNoTrans, ta ? k : m, ta ? m : k, alpha, a, lda,
             b, tb ? 1 : ldb, beta, c, ldc);
        return 1;
    }
    if (k == 1) { /* C = beta C + alpha (column of op(A)) (row of op(B)) */
        for (int i = 0; beta != 1 && i < m; i++)
            for (int j = 0; j < n; j++)
                c[(size_t)i * ldc + j] = beta == 0 ? 0 : beta * c[(size_t)i * ldc + j];
        GER(CblasRowMajor, m, n, alpha, a, ta ? 1 : lda, b, tb ? ldb : 1, c, ldc);
        return 1;
    }
    return 0;
}

void tg_gemm(int ta, int tb, int m, int n, int k, tg_real alpha, const tg_real *a, int lda,
             const tg_real *b, int ldb, tg_real beta, tg_real *c, int ldc, int threads)
{
    (void)threads;
    if (level2(ta, tb, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc)) return;
#ifdef TG_REAL_DOUBLE
    cblas_dgemm(CblasRowMajor, ta ? CblasTrans : CblasNoTrans, tb ? CblasTrans : CblasNoTrans, m,
                n, k, alpha, a, lda, b, ldb, beta, c, ldc);
#else
    cblas_sgemm(CblasRowMajor, ta ? CblasTrans : CblasNoTrans, tb ? CblasTrans : CblasNoTrans, m,
                n, k, alpha, a, lda, b, ldb, beta, c, ldc);
#endif
}

#else

static inline tg_real at(const tg_real *x, int ld, int trans, int i, int j)
{
    return trans ? x[(size_t)j * ld + i] : x[(size_t)i * ld + j];
}

void tg_gemm(int ta, int tb, int m, int n, int k, tg_real alpha, const tg_real *a, int lda,
             const tg_real *b, int ldb, tg_real beta, tg_real *c, int ldc, int threads)
{
    long work = (long)m * n * k;
#pragma omp parallel for schedule(static) num_threads(threads) if (work > 262144 && threads > 1)
    for (int i = 0; i < m; i++) {
        tg_real *ci = c + (size_t)i * ldc;
        for (int j = 0; j < n; j++) ci[j] = beta == 0 ? 0 : beta * ci[j];
        for (int p = 0; p < k; p++) {
            tg_real aip = alpha * at(a, lda, ta, i, p);
            if (!tb) {
                const tg_real *bp = b + (size_t)p * ldb;
                for (int j = 0; j < n; j++) ci[j] += aip * bp[j];
            } else {
                for (int j = 0; j < n; j++) ci[j] += aip * b[(size_t)j * ldb + p];
            }
        }
    }
}
#endif

#if defined(TG_USE_CBLAS) && defined(TG_HAVE_OPENBLAS)
void tg_blas_set_threads(int n) { openblas_set_num_threads(n < 1 ? 1 : n); }
const char *tg_blas_core(void) { return openblas_get_corename(); }
#elif defined(TG_USE_CBLAS)
void tg_blas_set_threads(int n) { (void)n; }
const char *tg_blas_core(void) { return "cblas"; }
#else
void tg_blas_set_threads(int n) { (void)n; }
const char *tg_blas_core(void) { return "fallback"; }
#endif
