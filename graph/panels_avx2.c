/* The AVX2+FMA weight-panel kernel (see tg_panels.h), for CPUs without
 * AVX-512: the panels graph/panels.c packs (32 columns, K rows), multiplied
 * with 256-bit registers.
 *
 * Arithmetic: as the AVX-512 kernel, every element of C is one FMA chain
 * over k in order starting from zero, added at the end to D's element (C
 * itself, or a bias row) when there is a D,
 * so both kernels give the same bits (tests/engine/test_panels.c checks it
 * where a CPU has both); only the register blocking differs, and that
 * changes which element is computed next, never how.
 *
 * Blocking: a panel is done in two halves of 16 columns. A block of 6 rows
 * keeps its 6 x 16 outputs in 12 ymm registers while k runs; each k loads
 * the half's k-th row once (two ymm) and broadcasts A[i][k] per row: 15 of
 * the 16 registers, the 6x16 shape of the Haswell kernels of BLIS and
 * OpenBLAS. Rows in blocks of 6, then 4, 2, 1; a half with fewer than 16
 * valid columns (the last one) loads and stores C through lane masks. */
#include "tg_panels.h"

#if TG_PANELS_X86
#include <immintrin.h>
#include <stdint.h>

#define PANEL 32 /* columns per panel, as graph/panels.c packs them */
#define HALF 16  /* columns per block: two ymm registers */
#define MR_MAX 6 /* rows per block */
#define CHUNK_BYTES ((size_t)256 << 10) /* rows of A per chunk: at most about this much */

/* Lanes 0 .. v-1 of a ymm set (v clamped to 0 .. 8), for maskload/maskstore. */
__attribute__((target("avx2,fma"))) static inline __m256i lanes_below(int v)
{
    static const int32_t ones_then_zeros[16] = {-1, -1, -1, -1, -1, -1, -1, -1,
                                                0,  0,  0,  0,  0,  0,  0,  0};
    v = v < 0 ? 0 : v > 8 ? 8 : v;
    return _mm256_loadu_si256((const __m256i *)(const void *)(ones_then_zeros + 8 - v));
}

/* C[i][j] = (di ? di[j] : 0) + acc, j < nv (nv <= 16) of the row at ci. */
__attribute__((target("avx2,fma"), always_inline)) static inline void
store_row(float *ci, __m256 lo, __m256 hi, const float *di, int nv)
{
    if (nv == HALF) {
        if (di) {
            lo = _mm256_add_ps(_mm256_loadu_ps(di), lo);
            hi = _mm256_add_ps(_mm256_loadu_ps(di + 8), hi);
        }
        _mm256_storeu_ps(ci, lo);
        _mm256_storeu_ps(ci + 8, hi);
        return;
    }
    __m256i m0 = lanes_below(nv), m1 = lanes_below(nv - 8);
    if (di) {
        lo = _mm256_add_ps(_mm256_maskload_ps(di, m0), lo);
        hi = _mm256_add_ps(_mm256_maskload_ps(di + 8, m1), hi);
    }
    _mm256_maskstore_ps(ci, m0, lo);
    _mm256_maskstore_ps(ci + 8, m1, hi);
}

/* MR rows of A against one half panel (16 columns of which nv are C's):
 * C[0..MR-1][0..nv-1] = the chain + D's row i at d + i ldd (none when d is
 * NULL). MR is a constant at every call, so the accumulators live in
 * registers. */
__attribute__((target("avx2,fma"), always_inline)) static inline void
block(const int MR, int k, const float *a, int lda, const float *half, const float *d, size_t ldd,
      float *c, int ldc, int nv)
{
    __m256 acc[MR_MAX][2];
#pragma GCC unroll 6
    for (int i = 0; i < MR; i++) acc[i][0] = acc[i][1] = _mm256_setzero_ps();
    for (int kk = 0; kk < k; kk++) {
        __m256 b0 = _mm256_load_ps(half + (size_t)kk * PANEL);
        __m256 b1 = _mm256_load_ps(half + (size_t)kk * PANEL + 8);
#pragma GCC unroll 6
        for (int i = 0; i < MR; i++) {
            __m256 ai = _mm256_broadcast_ss(a + (size_t)i * lda + kk);
            acc[i][0] = _mm256_fmadd_ps(ai, b0, acc[i][0]);
            acc[i][1] = _mm256_fmadd_ps(ai, b1, acc[i][1]);
        }
    }
#pragma GCC unroll 6
    for (int i = 0; i < MR; i++)
        store_row(c + (size_t)i * ldc, acc[i][0], acc[i][1], d ? d + (size_t)i * ldd : NULL, nv);
}

/* Rows i0 .. i1-1 of C: half panel by half panel (it stays in L1 while the
 * row blocks pass over it), rows in blocks of 6, then 4, 2, 1. */
__attribute__((target("avx2,fma"))) static void rows_chunk(int i0, int i1, int n, int k,
                                                           const float *a, int lda,
                                                           const float *panels, const float *d,
                                                           size_t ldd, float *c, int ldc)
{
    for (int j0 = 0; j0 < n; j0 += HALF) {
        const float *half = panels + (size_t)(j0 / PANEL) * k * PANEL + j0 % PANEL;
        int nv = n - j0 < HALF ? n - j0 : HALF, i = i0;
#define BLOCK(MR, r)                                                                               \
    block(MR, k, a + (size_t)(r) * lda, lda, half, d ? d + (size_t)(r) * ldd + j0 : NULL, ldd,        \
          c + (size_t)(r) * ldc + j0, ldc, nv)
        TG_PANEL_ROW_BLOCKS(6, i, i1, BLOCK);
#undef BLOCK
    }
}

void tg_panels_rows_avx2(int i0, int i1, int n, int k, const float *a, int lda, const float *panels,
                         const float *d, size_t ldd, float *c, int ldc)
{
    /* Many rows: in equal chunks whose rows of A stay in L2 while every
     * half panel passes over them (else A comes from L3 once per half
     * panel); few rows: one chunk, so a half panel is read once. */
    size_t a_bytes = (size_t)(i1 - i0) * k * sizeof(float);
    int chunks = (int)((a_bytes + CHUNK_BYTES - 1) / CHUNK_BYTES);
    int per = (i1 - i0 + chunks - 1) / (chunks ? chunks : 1);
    int chunk = (per + MR_MAX - 1) / MR_MAX * MR_MAX;
    for (int r0 = i0; r0 < i1; r0 += chunk)
        rows_chunk(r0, i1 - r0 < chunk ? i1 : r0 + chunk, n, k, a, lda, panels, d, ldd, c, ldc);
}

#else
typedef int tg_no_avx2_panels; /* ISO C: a translation unit declares something */
#endif
