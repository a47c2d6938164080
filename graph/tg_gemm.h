/* GEMM for the engine's ops (graph/gemm.c; private to graph/ and ops/). */
#ifndef TG_GEMM_H
#define TG_GEMM_H

#include "tapegrad.h"

/* C = alpha op(A) op(B) + beta C, row-major; op(A) is M x K, op(B) is K x N.
 * BLAS (single-threaded inside our own parallel regions) or the fallback. */
void tg_gemm(int trans_a, int trans_b, int m, int n, int k, tg_real alpha, const tg_real *a,
             int lda, const tg_real *b, int ldb, tg_real beta, tg_real *c, int ldc, int threads);

/* 1 when tg_gemm runs C = A^T B + beta C (alpha 1, beta 0 or 1; a weight's
 * gradient) of this shape on tg_gemm_tn_panels (graph/tg_panels.h): the
 * panels run AVX-512 and the shape is not tiny (float build on a BLAS; 0
 * elsewhere). */
int tg_gemm_tn_taken(int m, int n, int k);

/* 1 when tg_gemm runs the shapes with one row or one inner index on its own
 * vector kernels (graph/gemm.c: the fallback build, or a BLAS build where
 * the panels run AVX-512), whose lanes do not depend on where the operands
 * sit; 0 where level-2 BLAS runs them, whose results may (OpenBLAS's
 * Prescott dgemv peels to an aligned address). */
int tg_gemm_small_own(void);

#endif
