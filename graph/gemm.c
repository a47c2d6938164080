/* GEMM: BLAS when the build has it, a portable blocked kernel otherwise,
 * and our own kernels for products with a single row (batch-1 training).
 *
 * Never nest thread pools: the library's own parallelism is OpenMP, so BLAS
 * runs single-threaded (programs call tg_blas_set_threads(1) at start-up) and
 * the fallback splits rows of C across OpenMP threads. Each element of C is
 * summed in the same order whatever the thread count. */
#include <stdint.h>
#include <string.h>
#include <strings.h> /* strcasecmp */

#include "tg_clones.h"
#include "tg_gemm.h"
#include "tg_panels.h"

/* ------------------------------------------------------------------ single-row products
 *
 * Batch-1 training (config d of BENCHMARKS.md) makes three level-2 products
 * per step and matrix: c = h W^T (one row times a matrix, transposed), the
 * VJP dh += dc W, and dW += dc^T h (a rank-1 update; for a weight the
 * engine now defers those and adds them with one GEMM, ops/matmul_tape.c). At
 * 100 x 100 OpenBLAS took 0.37 us for each gemv and 0.66 us for each ger
 * (sger runs one saxpy call per row): call and edge overhead, the arithmetic
 * is 20 kFLOP. These kernels make one pass with the accumulators in
 * registers (config d: 79 -> 70 us per step, before the deferral).
 *
 * They use GCC vector extensions of a fixed 64 bytes (16 floats, 8 doubles),
 * compiled for AVX-512, AVX2 and the baseline (TG_SIMD_CLONES, tg_clones.h):
 * on AVX2 a vector is two registers, on SSE2 four, and the lane arithmetic,
 * hence every result bit, is the same on all three. Separate multiply and
 * add (ISO C11: no contraction). Which kernel runs depends on the shape
 * only, never on the thread count. */

#define ALWAYS_INLINE inline __attribute__((always_inline))

#define VBYTES 64
#define VL ((int)(VBYTES / sizeof(tg_real))) /* lanes of a vector */
#define QL (VL / 4)                          /* lanes of a quarter vector */
#define MAX_NV 8                             /* vectors of columns per pass */
typedef tg_real vec __attribute__((vector_size(VBYTES)));
typedef tg_real qvec __attribute__((vector_size(VBYTES / 4)));
typedef tg_real vec_u __attribute__((vector_size(VBYTES), aligned(sizeof(tg_real)), may_alias));
typedef tg_real qvec_u
    __attribute__((vector_size(VBYTES / 4), aligned(sizeof(tg_real)), may_alias));
#define LOADV(p) (*(const vec_u *)(const void *)(p))
#define LOADQ(p) (*(const qvec_u *)(const void *)(p))

/* Products up to this many multiply-adds take the kernels below; larger
 * ones go to BLAS (or the fallback) as before. */
#define SMALL_WORK (1L << 20)

/* c[j] = beta c[j] + alpha s[j], with beta == 0 ignoring c (it may hold
 * anything) and beta == 1 adding exactly. */
static ALWAYS_INLINE tg_real finish(tg_real cj, tg_real alpha, tg_real beta, tg_real s)
{
    tg_real v = alpha == 1 ? s : alpha * s;
    return beta == 0 ? v : beta == 1 ? cj + v : beta * cj + v;
}

/* One pass over the k rows of B for nv whole vectors of columns plus nq
 * quarter vectors and ns single columns (the row's tail), all in registers:
 *   s[j] = sum_p a[p*inca] * B[p, j]    (p in order). */
static ALWAYS_INLINE void row_pass(int nv, int nq, int ns, int k, tg_real alpha, const tg_real *a,
                                   int inca, const tg_real *b, int ldb, tg_real beta,
                                   tg_real *c)
{
    vec s[MAX_NV];
    qvec t[3] = {{0}, {0}, {0}};
    tg_real u[QL];
    for (int q = 0; q < nv; q++) s[q] = (vec){0};
    for (int e = 0; e < QL; e++) u[e] = 0;
    const int tail = nv * VL;
    for (int p = 0; p < k; p++) {
        const tg_real ap = a[(long)p * inca], *bp = b + (long)p * ldb;
        for (int q = 0; q < nv; q++) s[q] += ap * LOADV(bp + q * VL);
        for (int q = 0; q < 3; q++)
            if (q < nq) t[q] += ap * LOADQ(bp + tail + q * QL);
        for (int e = 0; e < QL - 1; e++)
            if (e < ns) u[e] += ap * bp[tail + nq * QL + e];
    }
    for (int q = 0; q < nv; q++)
        for (int l = 0; l < VL; l++) c[q * VL + l] = finish(c[q * VL + l], alpha, beta, s[q][l]);
    for (int q = 0; q < nq; q++)
        for (int l = 0; l < QL; l++)
            c[tail + q * QL + l] = finish(c[tail + q * QL + l], alpha, beta, t[q][l]);
    for (int e = 0; e < ns; e++)
        c[tail + nq * QL + e] = finish(c[tail + nq * QL + e], alpha, beta, u[e]);
}

/* c (1 x n) = beta c + alpha a B: a has k values (stride inca), B is k x n.
 * Columns go in passes of MAX_NV vectors; the last pass takes the tail. */
TG_SIMD_CLONES static void row_times_matrix(int n, int k, tg_real alpha, const tg_real *a,
                                            int inca, const tg_real *b, int ldb, tg_real beta,
                                            tg_real *c)
{
    int j = 0;
    for (; n - j > MAX_NV * VL; j += MAX_NV * VL)
        row_pass(MAX_NV, 0, 0, k, alpha, a, inca, b + j, ldb, beta, c + j);
    int r = n - j, nv = r / VL, nq = r % VL / QL, ns = r % QL;
    switch (nv) { /* constant vector counts: the accumulators stay in registers */
#define PASS(NV)                                                                                   \
    case NV:                                                                                       \
        row_pass(NV, nq, ns, k, alpha, a, inca, b + j, ldb, beta, c + j);                        \
        break;
        PASS(0) PASS(1) PASS(2) PASS(3) PASS(4) PASS(5) PASS(6) PASS(7) PASS(8)
#undef PASS
    default:
        break;
    }
}

/* Lane sums of four rows at once. Every row's lanes are added in the same
 * halving tree, h[l] += h[l + w] for w = VL/2, VL/4, .., 1, with the four
 * rows packed side by side in the vectors as the tree narrows: the shuffles
 * move lanes, only the adds round. sum_lanes4 leaves the four sums in lanes
 * 0, VL/4, VL/2, 3VL/4 of *out; sum_qlanes4 does the same for quarter
 * vectors, into out[0..3]. */
#define SHUF __builtin_shufflevector
/* (Vectors go in and out through pointers: a 64-byte vector passed by
 * value has a different ABI without AVX-512, and GCC says so.) */
#ifdef TG_REAL_DOUBLE
static ALWAYS_INLINE void sum_lanes4(vec *out, const vec s[4])
{
    vec a = s[0], b = s[1], c = s[2], d = s[3];
    vec x = SHUF(a, b, 0, 1, 2, 3, 8, 9, 10, 11) + SHUF(a, b, 4, 5, 6, 7, 12, 13, 14, 15);
    vec y = SHUF(c, d, 0, 1, 2, 3, 8, 9, 10, 11) + SHUF(c, d, 4, 5, 6, 7, 12, 13, 14, 15);
    vec z = SHUF(x, y, 0, 1, 4, 5, 8, 9, 12, 13) + SHUF(x, y, 2, 3, 6, 7, 10, 11, 14, 15);
    *out = z + SHUF(z, z, 1, 0, 3, 2, 5, 4, 7, 6);
}

/* Two lanes per quarter vector: four rows take two results. */
static ALWAYS_INLINE void sum_qlanes4(tg_real out[4], const qvec t[4])
{
    qvec ab = SHUF(t[0], t[1], 0, 2) + SHUF(t[0], t[1], 1, 3);
    qvec cd = SHUF(t[2], t[3], 0, 2) + SHUF(t[2], t[3], 1, 3);
    out[0] = ab[0];
    out[1] = ab[1];
    out[2] = cd[0];
    out[3] = cd[1];
}
#else
static ALWAYS_INLINE void sum_lanes4(vec *out, const vec s[4])
{
    vec a = s[0], b = s[1], c = s[2], d = s[3];
    vec x = SHUF(a, b, 0, 1, 2, 3, 4, 5, 6, 7, 16, 17, 18, 19, 20, 21, 22, 23) +
            SHUF(a, b, 8, 9, 10, 11, 12, 13, 14, 15, 24, 25, 26, 27, 28, 29, 30, 31);
    vec y = SHUF(c, d, 0, 1, 2, 3, 4, 5, 6, 7, 16, 17, 18, 19, 20, 21, 22, 23) +
            SHUF(c, d, 8, 9, 10, 11, 12, 13, 14, 15, 24, 25, 26, 27, 28, 29, 30, 31);
    vec z = SHUF(x, y, 0, 1, 2, 3, 8, 9, 10, 11, 16, 17, 18, 19, 24, 25, 26, 27) +
            SHUF(x, y, 4, 5, 6, 7, 12, 13, 14, 15, 20, 21, 22, 23, 28, 29, 30, 31);
    vec w = z + SHUF(z, z, 2, 3, 0, 1, 6, 7, 4, 5, 10, 11, 8, 9, 14, 15, 12, 13);
    *out = w + SHUF(w, w, 1, 0, 3, 2, 5, 4, 7, 6, 9, 8, 11, 10, 13, 12, 15, 14);
}

static ALWAYS_INLINE void sum_qlanes4(tg_real out[4], const qvec t[4])
{
    qvec x = SHUF(t[0], t[1], 0, 1, 4, 5) + SHUF(t[0], t[1], 2, 3, 6, 7);
    qvec y = SHUF(t[2], t[3], 0, 1, 4, 5) + SHUF(t[2], t[3], 2, 3, 6, 7);
    qvec r = SHUF(x, y, 0, 2, 4, 6) + SHUF(x, y, 1, 3, 5, 7);
    for (int i = 0; i < 4; i++) out[i] = r[i];
}
#endif

/* dot(row r of B, a) for the four rows at b[0], b[1], b[2], b[3]: lane
 * partial sums over whole vectors, then over quarter vectors, then single
 * values; the three parts are added in that order. */
static ALWAYS_INLINE void dot_rows4(const tg_real *const b[4], int k, const tg_real *a,
                                    tg_real out[4])
{
    vec s[4] = {{0}, {0}, {0}, {0}}, sv;
    qvec t[4] = {{0}, {0}, {0}, {0}};
    tg_real u[4] = {0, 0, 0, 0}, tq[4];
    int p = 0;
    for (; p + VL <= k; p += VL) {
        vec x = LOADV(a + p);
        for (int r = 0; r < 4; r++) s[r] += LOADV(b[r] + p) * x;
    }
    for (; p + QL <= k; p += QL) {
        qvec x = LOADQ(a + p);
        for (int r = 0; r < 4; r++) t[r] += LOADQ(b[r] + p) * x;
    }
    for (; p < k; p++)
        for (int r = 0; r < 4; r++) u[r] += b[r][p] * a[p];
    sum_lanes4(&sv, s);
    sum_qlanes4(tq, t);
    for (int r = 0; r < 4; r++) out[r] = sv[r * (VL / 4)] + tq[r] + u[r];
}

/* c (1 x n) = beta c + alpha a B^T: a has k contiguous values, B is n x k:
 * c[j] is the dot product of row j of B with a, four rows at a time (the
 * last group repeats its last row: the same arithmetic, results dropped). */
TG_SIMD_CLONES static void matrix_times_vector(int n, int k, tg_real alpha, const tg_real *b,
                                               int ldb, const tg_real *a, tg_real beta,
                                               tg_real *c)
{
    for (int j = 0; j < n; j += 4) {
        const tg_real *rows[4];
        tg_real d[4];
        for (int r = 0; r < 4; r++) rows[r] = b + (long)(j + r < n ? j + r : n - 1) * ldb;
        dot_rows4(rows, k, a, d);
        for (int r = 0; r < 4 && j + r < n; r++) c[j + r] = finish(c[j + r], alpha, beta, d[r]);
    }
}

/* C (m x n) = beta C + (alpha x[i]) y[j]: x has m values (stride incx), y n
 * contiguous ones. Each row of C is read and written once, in whole vectors
 * aligned to 64 bytes (a row of 100 floats starts at any multiple of 16
 * bytes, and stores that straddle two cache lines cost two), with quarter
 * vectors and single values before and after. One rounding per element,
 * however it is grouped. */
#define STOREV(p, v) memcpy((p), &(v), sizeof(vec))
#define STOREQ(p, v) memcpy((p), &(v), sizeof(qvec))
static ALWAYS_INLINE int rank1_edge(tg_real *ci, const tg_real *y, tg_real xi, int j, int end)
{
    for (; j + QL <= end; j += QL) {
        qvec v = LOADQ(ci + j) + xi * LOADQ(y + j);
        STOREQ(ci + j, v);
    }
    for (; j < end; j++) ci[j] += xi * y[j];
    return j;
}

TG_SIMD_CLONES static void rank1_update(int m, int n, tg_real alpha, const tg_real *x, int incx,
                                       const tg_real *y, tg_real beta, tg_real *c, int ldc)
{
    for (int i = 0; i < m; i++) {
        const tg_real xi = alpha * x[(long)i * incx];
        tg_real *ci = c + (long)i * ldc;
        if (beta != 1) {
            for (int j = 0; j < n; j++) ci[j] = finish(ci[j], 1, beta, xi * y[j]);
            continue;
        }
        int lead = (int)((VBYTES - (uintptr_t)ci % VBYTES) % VBYTES / sizeof(tg_real));
        int j = rank1_edge(ci, y, xi, 0, lead < n ? lead : n);
        for (; j + VL <= n; j += VL) {
            vec v = *(const vec *)(const void *)(ci + j) + xi * LOADV(y + j);
            *(vec *)(void *)(ci + j) = v;
        }
        rank1_edge(ci, y, xi, j, n);
    }
}

/* The kernels above for the shapes they serve; 0 for any other product. */
static int single_row(int ta, int tb, int m, int n, int k, tg_real alpha, const tg_real *a, int lda,
                      const tg_real *b, int ldb, tg_real beta, tg_real *c, int ldc)
{
    if ((long)m * n * k > SMALL_WORK) return 0;
    if (m == 1 && !tb) { /* c = a B: rows of B scaled by the values of a */
        row_times_matrix(n, k, alpha, a, ta ? lda : 1, b, ldb, beta, c);
        return 1;
    }
    if (m == 1 && (!ta || lda == 1)) { /* c = a B^T: dot products with B's rows */
        matrix_times_vector(n, k, alpha, b, ldb, a, beta, c);
        return 1;
    }
    if (k == 1 && (!tb || ldb == 1) && m > 1) { /* column of op(A) times row of op(B) */
        rank1_update(m, n, alpha, a, ta ? 1 : lda, b, beta, c, ldc);
        return 1;
    }
    return 0;
}

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

/* The kernels above hold a 64-byte vector in one register only with
 * AVX-512: on AVX2 GCC splits every vector in two and the passes of 8
 * vectors spill to the stack (config d, batch-1 RNN 100 on Zen 3: 0.29 ms a
 * step with them, 0.125 ms with OpenBLAS's gemv/ger). So they serve where
 * the weight panels run AVX-512 (TG_ISA can force the AVX2 choice), and
 * level-2 BLAS everywhere else. */
int tg_gemm_small_own(void) { return tg_panels_isa() == TG_PANEL_AVX512; }

/* A weight's gradient, G^T X (tg_gemm_tn_panels): ours wherever the panels
 * run AVX-512. Where the OpenBLAS core has no AVX-512 kernels (0.3.21 runs
 * its Haswell kernels on Zen 4 and Zen 5, which it does not know) ours runs
 * these products about 2x faster. Against OpenBLAS's own AVX-512 kernels
 * (SkylakeX core) the product alone is a match: on Zen 5 ours was 3-8%
 * faster on gradients of 1000 rows or more and 6% slower on 256 x 8000, on
 * an Intel Xeon within 2% either way; but ours reads the rows of a step's
 * deferred products where they are (ops/matmul_tape.c), where the BLAS
 * needs them stacked into matrices first (a copy of every row), and on the
 * Xeon config f took 3-5% less time a step at 1 thread, config a 4%
 * (BENCHMARKS.md, session 16; on Zen 5 f was the same either way). */
#ifndef TG_REAL_DOUBLE
int tg_gemm_tn_taken(int m, int n, int k)
{
    return tg_gemm_tn_suits(m, n, k); /* 0 unless the panels run AVX-512 */
}
#else
int tg_gemm_tn_taken(int m, int n, int k)
{
    (void)m, (void)n, (void)k;
    return 0;
}
#endif

void tg_gemm(int ta, int tb, int m, int n, int k, tg_real alpha, const tg_real *a, int lda,
             const tg_real *b, int ldb, tg_real beta, tg_real *c, int ldc, int threads)
{
    (void)threads; /* BLAS runs single-threaded (above); our kernels use them */
    if (tg_gemm_small_own() && single_row(ta, tb, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc))
        return;
    if (level2(ta, tb, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc)) return;
#ifndef TG_REAL_DOUBLE
    if (ta && !tb && alpha == 1 && (beta == 0 || beta == 1) && tg_gemm_tn_taken(m, n, k) &&
        tg_gemm_tn_panels(m, n, k, a, lda, b, ldb, beta != 0, c, ldc, threads))
        return; /* (0: no memory for its packing; BLAS needs none of ours) */
#endif
#ifdef TG_REAL_DOUBLE
    cblas_dgemm(CblasRowMajor, ta ? CblasTrans : CblasNoTrans, tb ? CblasTrans : CblasNoTrans, m,
                n, k, alpha, a, lda, b, ldb, beta, c, ldc);
#else
    cblas_sgemm(CblasRowMajor, ta ? CblasTrans : CblasNoTrans, tb ? CblasTrans : CblasNoTrans, m,
                n, k, alpha, a, lda, b, ldb, beta, c, ldc);
#endif
}

#else

int tg_gemm_tn_taken(int m, int n, int k)
{
    (void)m, (void)n, (void)k;
    return 0; /* the portable GEMM below is the fallback build's point */
}

int tg_gemm_small_own(void) { return 1; }

static inline tg_real at(const tg_real *x, int ld, int trans, int i, int j)
{
    return trans ? x[(size_t)j * ld + i] : x[(size_t)i * ld + j];
}

void tg_gemm(int ta, int tb, int m, int n, int k, tg_real alpha, const tg_real *a, int lda,
             const tg_real *b, int ldb, tg_real beta, tg_real *c, int ldc, int threads)
{
    if (single_row(ta, tb, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc)) return;
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
const char *tg_blas_core_advice(void)
{
#if defined(__x86_64__) && defined(__GNUC__)
    /* OpenBLAS's x86-64 cores without AVX2 + FMA kernels */
    static const char *const old[] = {"Prescott", "Core2",     "Penryn", "Dunnington", "Nehalem",
                                      "Atom",     "Sandybridge", "Opteron", "Opteron_SSE3",
                                      "Barcelona", "Bobcat",    "Bulldozer", "Katmai",
                                      "Coppermine", "Northwood", "Banias", "generic"};
    if (!__builtin_cpu_supports("avx2") || !__builtin_cpu_supports("fma")) return NULL;
    /* a build for one core ignores OPENBLAS_CORETYPE */
    const char *config = openblas_get_config();
    if (!config || !strstr(config, "DYNAMIC_ARCH")) return NULL;
    /* SkylakeX's kernels use AVX-512 VL, BW and DQ besides F: naming it
     * where one is missing would stop the program at its first product */
    int skylakex = __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512vl") &&
                   __builtin_cpu_supports("avx512bw") && __builtin_cpu_supports("avx512dq");
    const char *core = openblas_get_corename();
    for (size_t i = 0; core && i < sizeof old / sizeof *old; i++)
        if (!strcasecmp(core, old[i])) return skylakex ? "SkylakeX" : "Haswell";
#endif
    return NULL;
}
#elif defined(TG_USE_CBLAS)
void tg_blas_set_threads(int n) { (void)n; }
const char *tg_blas_core(void) { return "cblas"; }
const char *tg_blas_core_advice(void) { return NULL; }
#else
void tg_blas_set_threads(int n) { (void)n; }
const char *tg_blas_core(void) { return "fallback"; }
const char *tg_blas_core_advice(void) { return NULL; }
#endif
