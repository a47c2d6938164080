/* Weight panels: small-row products against a matrix that does not change
 * during a tape (a leaf, or an op's output), with the matrix laid out once
 * per tape (a GEMM utility of graph/, used by ops/).
 *
 * Why: a recurrent layer multiplies a few rows (the batch) by the same W_hh
 * at every time step, forward (h W_hh^T) and backward (dpre W_hh). OpenBLAS
 * re-packs its B operand, all of W_hh, on every call and runs its small-M
 * products slowly; packing op(B) once per tape and multiplying with a
 * register-blocked AVX-512 kernel is 2-3x faster on these shapes, and 2x
 * on large ones too
 * (BENCHMARKS.md, "weight panels").
 *
 * Layout: op(B) (K x N) as ceil(N/32) panels; panel p holds columns
 * 32p .. 32p+31 as K rows of 32 floats, zero past N.
 * Arithmetic: C[i][j] = beta C[i][j] + sum_k A[i][k] op(B)[k][j], the sum in
 * k order with fused multiply-adds, one thread: the same for any thread
 * count, within float rounding of the BLAS result.
 *
 * Float build on x86-64: an AVX-512F kernel (graph/panels.c) and an
 * AVX2+FMA one (graph/panels_avx2.c), the widest the CPU has picked at run
 * time (tg_panels_isa; TG_ISA overrides); anything else keeps the BLAS path
 * (tg_panels_of returns NULL). Both kernels give the same bits. */
#ifndef TG_PANELS_H
#define TG_PANELS_H

#include "tapegrad.h"

typedef struct tg_panel_cache tg_panel_cache;

/* A matrix to pack: rows x cols values, row i at data + i ld (ld >= cols).
 * A tensor whole, or a range of its columns: a decoder's W_ih seen from its
 * embedding's, its context's or its input feed's columns (ops/affine.c),
 * packed from the parameter itself rather than from a copy of the columns
 * made on each shard's tape, so that the shards share one packing. */
typedef struct tg_panel_src {
    const tg_real *data;
    int rows, cols, ld;
} tg_panel_src;

/* Columns c0 .. c0+cols-1 of b (all of b: 0, b->cols). */
static inline tg_panel_src tg_panel_src_cols(const tg_tensor *b, int c0, int cols)
{
    return (tg_panel_src){b->data + c0, b->rows, cols, b->cols};
}

/* Distinct (matrix, transpose) pairs a cache keeps: enough for the deepest
 * model the programs build (8 layers, a bidirectional encoder: about 100
 * pairs in training). With 32, an 8-layer attention seq2seq (bench, LSTM
 * 256, 12 + 12 steps) packed the weights past the 32nd again at every use
 * or ran them on BLAS: 2 threads 258 -> 228 ms a step with 128, 1 thread
 * 503 -> 455 (Intel Xeon; 4 layers 129 -> 126; f and g unchanged), for 8
 * (4 layers) to 41 MB (8 layers) more peak memory. */
#define TG_PANEL_SLOTS 128

/* 1 when this build and CPU run the panel kernel. */
int tg_panels_available(void);
/* 1 when a product of this shape (C is m x n, inner size k) should use
 * panels: a kernel runs, and two rows or more up to tg_panels_max_rows
 * (graph/tapegrad.h; on the AVX2 kernel 191: more run faster on
 * OpenBLAS). Few rows (a batch at one time step): BLAS's
 * per-call packing dominates; many (all T steps' projection, the output
 * layer): the kernel runs at twice OpenBLAS's Haswell kernel, which is what
 * OpenBLAS 0.3.21 picks on this AVX-512 CPU (BENCHMARKS.md). One row
 * stays on tg_gemm's own one-row kernels: with a single row the panel
 * kernel's two accumulator chains wait on FMA latency (batch-1 config d:
 * 0.061 ms per step on those kernels, 0.072 on panels). */
int tg_panels_suit(int m, int n, int k);

/* A cache of packed matrices. matmul keeps one per tape (its tape state,
 * ops/matmul_tape.c: tg_matmul_panel_cache), emptied by tg_tape_reset and at
 * the end of tg_backward, so a leaf's changed values are never missed across
 * steps. An op's output is written once, when the op runs, and lives until
 * the reset, so it may be packed too (a weight computed on the tape, such as
 * a column slice of one; a range of a parameter's columns is packed from the
 * parameter itself: tg_panel_src). NULL when out of memory. */
tg_panel_cache *tg_panel_cache_new(void);
/* A store of panels several threads may ask at once (its slots found and
 * made under its lock, packed by the threads that ask for them at the same
 * time): the shards' parameter panels (tg_tape_share_panels,
 * graph/tg_engine.h). */
tg_panel_cache *tg_panel_cache_new_shared(void);
void tg_panel_cache_free(tg_panel_cache *c);
/* Empties c. A slot's buffer stays for the next generation when this one
 * packed into it at least half its size; the others are freed, so what c
 * holds is at most twice what one generation (a step) packed. A clear with
 * nothing used since the last frees nothing. */
void tg_panel_cache_clear(tg_panel_cache *c);
/* Bytes of packed-panel buffers c holds (for tests). */
size_t tg_panel_cache_bytes(const tg_panel_cache *c);

/* Panels of op(b) (b transposed when tb) for a product with `rows` rows,
 * made once per (b, tb) since the last clear and returned again afterwards.
 * Packing costs about a 25-row product, so below 128 rows a matrix is
 * packed on its second request (the first returns NULL): a matrix used once
 * stays on BLAS. (tg_panels_of_stored's `again` packs at the first request a
 * matrix the caller knows comes again, such as W_hh in a recorded unroll.)
 * NULL as well when panels are unavailable, all TG_PANEL_SLOTS slots hold packed
 * matrices (a slot seen once and not packed is taken over), or there is no
 * memory: then the caller uses tg_gemm. */
const tg_real *tg_panels_of(tg_panel_cache *c, const tg_tensor *b, int tb, int rows);
/* The same choice, by c's slots, its requests and `again` alone (so a
 * tape's products take panels or BLAS, which differ in the last bits,
 * whatever other threads do), with the panels kept in store (from
 * tg_panel_cache_new_shared; NULL: in c): packed there by the tapes that
 * first need them (the same bits whoever packs which panel), then used by
 * every tape sharing the store. When store is full (TG_PANEL_SLOTS matrices) or out of
 * memory, c packs its own. again: the caller
 * knows b comes again before the next clear (a parameter of a recorded
 * unroll, ops/matmul_tape.c), so it is packed at its first request whatever
 * the rows. */
const tg_real *tg_panels_of_stored(tg_panel_cache *c, tg_panel_cache *store,
                                   const tg_panel_src *b, int tb, int rows, int again);
/* 1 when (b, tb), or (b's columns c0 .. c0+cols-1, tb), is packed in c (for
 * tests). */
int tg_panels_held(tg_panel_cache *c, const tg_tensor *b, int tb);
int tg_panels_held_cols(tg_panel_cache *c, const tg_tensor *b, int c0, int cols, int tb);

/* C (m x n, row stride ldc) = A op(B) + D for A (m x k, row stride lda)
 * and panels of op(B) from tg_panels_of; D's row i at d + i ldd: d == c,
 * ldd == ldc adds C (beta 1), ldd 0 adds one row (a bias) to every row of C
 * with no copy of it into C first, NULL adds nothing (beta 0). The same bits
 * as copying D into C and adding the product. Large products split their
 * rows over up to `threads` OpenMP threads. */
void tg_gemm_panels_add(int m, int n, int k, const tg_real *a, int lda, const tg_real *panels,
                        const tg_real *d, int ldd, tg_real *c, int ldc, int threads);

/* C (m x n, row stride ldc) = beta C + A^T B for A (k x m, row stride lda)
 * and B (k x n, row stride ldb), beta 0 or 1: a weight's gradient, dW +=
 * G^T X, with the inner size k all the rows of a step (or of a sweep, the
 * deferred products of ops/matmul_tape.c). On the AVX-512 kernel, blocked
 * and packed as a GEMM is (graph/panels.c, tn_rows); each element of C is
 * one FMA chain per 128 values of k, added to C in k order: the same bits
 * for any thread count. Returns 0, computing nothing, when there is no
 * memory for the packing (at most 1.1 MB a thread: B packed once for all of
 * C's row blocks, 1024 rows of k at a time), and always in a build without
 * the panel kernels (double, non-x86); called where the CPU has no AVX-512
 * (tg_gemm_tn_suits is 0 there) it is a misuse (tg_misuse). tg_gemm
 * takes it for such products (alpha 1) when tg_gemm_tn_taken
 * (graph/tg_gemm.h): AVX-512 panels run and the shape is not tiny
 * (tg_gemm_tn_suits), whatever the BLAS core (graph/gemm.c says why). */
int tg_gemm_tn_suits(int m, int n, int k);
int tg_gemm_tn_panels(int m, int n, int k, const tg_real *a, int lda, const tg_real *b, int ldb,
                      int beta, tg_real *c, int ldc, int threads);
/* The same with A's and B's k rows given one by one (row q of A at
 * arows[q], m values; of B at brows[q], n values): products stacked without
 * copying them (ops/matmul_tape.c). The same bits as tg_gemm_tn_panels on
 * the rows gathered into matrices. room: the packing room,
 * tg_gemm_tn_room(m, n, k, threads) bytes aligned to 64 (the step arena's
 * scratch), or NULL to allocate it for this product. */
size_t tg_gemm_tn_room(int m, int n, int k, int threads);
int tg_gemm_tn_panels_rows(int m, int n, int k, const tg_real *const *arows,
                           const tg_real *const *brows, int beta, tg_real *c, int ldc,
                           int threads, tg_real *room);

/* ------------------------------------------------------------------ kernels by ISA
 *
 * Which kernel multiplies is chosen once per process (graph/panels_isa.c):
 * the widest the CPU supports (__builtin_cpu_supports), unless the
 * environment variable TG_ISA, read at the first product, asks for one:
 *   TG_ISA=avx512  the AVX-512F kernel
 *   TG_ISA=avx2    the AVX2+FMA kernel (to test and measure it on any CPU
 *                  that has AVX2)
 *   TG_ISA=blas    no panels: every product on tg_gemm (OpenBLAS)
 *   unset, empty or auto: the widest available.
 * A value the CPU cannot run, or an unknown one, is misuse: a message naming
 * it, then abort (a measurement must not silently run another kernel). The
 * programs ask tg_panel_kernel_check (tapegrad.h) at start-up and refuse it
 * with their usage exit instead. */
typedef enum tg_panel_isa {
    TG_PANEL_NONE = 0,
    TG_PANEL_AVX2 = 1,
    TG_PANEL_AVX512 = 2
} tg_panel_isa;

#if defined(__x86_64__) && defined(__GNUC__) && !defined(TG_REAL_DOUBLE)
#define TG_PANELS_X86 1
#else
#define TG_PANELS_X86 0
#endif

/* The kernels' row loop: rows i .. i1-1 in blocks of FIRST rows, then one
 * of 4, 2 and 1 as the rest needs; BLOCK(MR, r) does MR rows from row r
 * (MR a constant, so the block's accumulators stay in registers). */
#define TG_PANEL_ROW_BLOCKS(FIRST, i, i1, BLOCK)                                                 \
    do {                                                                                         \
        for (; (i) + (FIRST) <= (i1); (i) += (FIRST)) BLOCK(FIRST, i);                           \
        if ((i) + 4 <= (i1)) {                                                                   \
            BLOCK(4, i);                                                                         \
            (i) += 4;                                                                            \
        }                                                                                        \
        if ((i) + 2 <= (i1)) {                                                                   \
            BLOCK(2, i);                                                                         \
            (i) += 2;                                                                            \
        }                                                                                        \
        if ((i) < (i1)) BLOCK(1, i);                                                             \
    } while (0)

/* The kernel this process runs (resolved at the first call). */
tg_panel_isa tg_panels_isa(void);
/* 1 when this build and CPU can run isa's kernel, whatever TG_ISA says. */
int tg_panels_isa_runs(tg_panel_isa isa);
/* "avx512", "avx2", "none". */
const char *tg_panels_isa_name(tg_panel_isa isa);
/* tg_gemm_panels_add on a given kernel, which must run here (for tests). */
void tg_gemm_panels_isa(tg_panel_isa isa, int m, int n, int k, const tg_real *a, int lda,
                        const tg_real *panels, const tg_real *d, int ldd, tg_real *c, int ldc,
                        int threads);
/* Rows i0 .. i1-1 of C = A op(B) + D on the AVX2 kernel (panels_avx2.c). */
void tg_panels_rows_avx2(int i0, int i1, int n, int k, const float *a, int lda,
                         const float *panels, const float *d, size_t ldd, float *c, int ldc);

#endif
