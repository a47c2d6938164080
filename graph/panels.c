/* Weight panels (see tg_panels.h): the per-tape cache of packed
 * matrices and the AVX-512 kernel that multiplies a few rows against them
 * (the AVX2 one is in panels_avx2.c, the choice in panels_isa.c).
 *
 * Kernel: rows in blocks of 8, 4, 2, 1; for each panel of 32 columns a block
 * keeps its 8 x 32 outputs in 16 zmm registers while k runs, broadcasting
 * A[i][k] and loading the panel's k-th row of 32 once for all the block's
 * rows. The last panel stores through a lane mask. */
#include "tg_panels.h"

#include <sched.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>
#ifdef _OPENMP
#include <omp.h>
#endif

#define PANEL 32 /* columns per panel: two zmm registers */
#define SLOTS TG_PANEL_SLOTS
/* Packing costs about as much as a product with 25 rows: a matrix used once
 * is packed at once only for a product of this many rows or more; with
 * fewer, on its second use, unless the caller knows it comes again. */
#define PACK_AT_ONCE 128

#if TG_PANELS_X86 /* (tg_panels.h) */
#include <immintrin.h>
#endif

typedef struct slot {
    const tg_real *src; /* the matrix's values, with its shape, row stride and transpose */
    int rows, cols, ld, tb;
    int packed;         /* 0: seen once with few rows, not packed yet */
    const tg_real *use; /* the panels: buf, or a shared store's */
    const struct tg_panel_cache *from; /* the store use is in (NULL: buf), */
    unsigned gen;                      /* as of its clear number gen */
    tg_real *buf;       /* panels packed here; kept across a clear while used (release_unneeded) */
    size_t cap;         /* floats */
    size_t need;        /* floats packed into buf since the last clear (0: none) */
    int claimed, done;  /* a store's slot: panels taken to pack, and packed (atomics) */
} slot;

struct tg_panel_cache {
    int used;
    int cursor; /* where seen_once looks first */
    slot s[SLOTS];
    int shared; /* a store several threads ask at once (tg_panels_of_stored): slots under lock */
    unsigned gen; /* clears so far: a slot borrowing from an earlier one looks again */
#ifdef _OPENMP
    omp_lock_t lock;
#endif
};

tg_panel_cache *tg_panel_cache_new(void) { return calloc(1, sizeof(tg_panel_cache)); }

tg_panel_cache *tg_panel_cache_new_shared(void)
{
    tg_panel_cache *c = tg_panel_cache_new();
    if (!c) return NULL;
    c->shared = 1;
#ifdef _OPENMP
    omp_init_lock(&c->lock);
#endif
    return c;
}

void tg_panel_cache_free(tg_panel_cache *c)
{
    if (!c) return;
    for (int i = 0; i < SLOTS; i++) free(c->s[i].buf);
#ifdef _OPENMP
    if (c->shared) omp_destroy_lock(&c->lock);
#endif
    free(c);
}

/* A buffer is kept across clears so that the next step packs the same
 * matrix into it without an allocation; one that this generation did not
 * pack into, or packed into at under half its size, is freed: otherwise each
 * of the TG_PANEL_SLOTS buffers could keep the size of the largest matrix
 * any generation put in it (an 8000 x 256 output layer: 8 MB a slot). A
 * clear with nothing used since the last (a tape's reset after the clear at
 * the end of its backward) leaves the buffers for the next step. */
static void release_unneeded(tg_panel_cache *c)
{
    for (int i = 0; i < SLOTS; i++) {
        slot *s = &c->s[i];
        if (s->need == 0 || s->cap / 2 > s->need) {
            free(s->buf);
            s->buf = NULL;
            s->cap = 0;
        }
        s->need = 0;
    }
}

void tg_panel_cache_clear(tg_panel_cache *c)
{
    if (!c) return;
    if (c->used) release_unneeded(c);
    c->used = c->cursor = 0;
    c->gen++;
}

size_t tg_panel_cache_bytes(const tg_panel_cache *c)
{
    size_t floats = 0;
    for (int i = 0; c && i < SLOTS; i++) floats += c->s[i].cap;
    return floats * sizeof(tg_real);
}

/* The AVX2 kernel loses to OpenBLAS's Haswell kernel from about 256 rows
 * (A read by broadcasts from 6 rows, where OpenBLAS packs it): measured on
 * an AMD EPYC (Zen 3), 1 thread, 16-128 rows x 1024 x 256: 1.03-1.5x
 * OpenBLAS, 256 rows 0.96-0.98x, 384-2048 rows 0.73-0.96x (BENCHMARKS.md).
 * Such products stay on tg_gemm; the AVX-512 kernel wins at every size. */
#define AVX2_MAX_ROWS 191

int tg_panels_max_rows(int n, int k)
{
    if (!tg_panels_available() || n < 16 || k < 8) return 0;
    return tg_panels_isa() == TG_PANEL_AVX2 ? AVX2_MAX_ROWS : INT_MAX;
}

int tg_panels_suit(int m, int n, int k) { return m >= 2 && m <= tg_panels_max_rows(n, k); }

#if TG_PANELS_X86

int tg_panels_available(void) { return tg_panels_isa() != TG_PANEL_NONE; }

/* The rows of a matrix that is packed: row q at rows[q] when rows is set
 * (the deferred products of tg_gemm_tn_panels_rows, listed where they lie),
 * else at base + q ld. */
typedef struct row_source {
    const tg_real *base;
    size_t ld;
    const tg_real *const *rows;
} row_source;

static inline const tg_real *row_at(const row_source *s, int q)
{
    return s->rows ? s->rows[q] : s->base + (size_t)q * s->ld;
}

/* One panel: columns col .. col+nv-1 (nv <= 32) of rows k0 .. k0+K-1 of s,
 * zero past nv. */
static void pack_panel(const row_source *s, int k0, int col, int K, int nv, tg_real *panel)
{
    if (nv == PANEL) { /* a constant size: inline moves, not a call to memcpy per row */
        for (int kk = 0; kk < K; kk++)
            memcpy(panel + (size_t)kk * PANEL, row_at(s, k0 + kk) + col, PANEL * sizeof *panel);
        return;
    }
    memset(panel, 0, (size_t)K * PANEL * sizeof *panel);
    for (int kk = 0; kk < K; kk++)
        memcpy(panel + (size_t)kk * PANEL, row_at(s, k0 + kk) + col, (size_t)nv * sizeof *panel);
}

/* The 8 x 8 block of floats in r[0..7] transposed in registers. */
__attribute__((target("avx"), always_inline)) static inline void transpose8(__m256 r[8])
{
    __m256 t[8], u[8];
    for (int i = 0; i < 8; i += 2) {
        t[i] = _mm256_unpacklo_ps(r[i], r[i + 1]);     /* rows i, i+1 interleaved: 0 1 */
        t[i + 1] = _mm256_unpackhi_ps(r[i], r[i + 1]); /* 2 3 of each 128-bit lane */
    }
    for (int i = 0; i < 8; i += 4)
        for (int h = 0; h < 2; h++) {
            u[i + 2 * h] = _mm256_shuffle_ps(t[i + h], t[i + 2 + h], 0x44);
            u[i + 2 * h + 1] = _mm256_shuffle_ps(t[i + h], t[i + 2 + h], 0xEE);
        }
    for (int i = 0; i < 4; i++) {
        r[i] = _mm256_permute2f128_ps(u[i], u[i + 4], 0x20);
        r[i + 4] = _mm256_permute2f128_ps(u[i], u[i + 4], 0x31);
    }
}

/* A panel of B^T, B^T's rows being w's columns: lane jj of the panel's row
 * kk is w[(j0 + jj) ld + kk], zero past nv. Read along w's rows as 8 x 8
 * blocks transposed in registers, the rest (fewer than 8 rows or values
 * left) one value at a time: the value-at-a-time loop over every element
 * was 3.4% of config f's step on a Zen 5, 2-3x the blocked copy. Both kernel
 * ISAs have AVX. */
__attribute__((target("avx"))) static void pack_panel_transposed(const tg_real *w, size_t ld,
                                                                 int j0, int K, int nv,
                                                                 tg_real *panel)
{
    if (nv < PANEL) memset(panel, 0, (size_t)K * PANEL * sizeof *panel);
    int n8 = nv & ~7, k8 = K & ~7;
    for (int jb = 0; jb < n8; jb += 8) {
        const tg_real *rows = w + (size_t)(j0 + jb) * ld;
        for (int k0 = 0; k0 < k8; k0 += 8) {
            __m256 r[8];
            for (int i = 0; i < 8; i++) r[i] = _mm256_loadu_ps(rows + (size_t)i * ld + k0);
            transpose8(r);
            for (int i = 0; i < 8; i++) _mm256_store_ps(panel + (size_t)(k0 + i) * PANEL + jb, r[i]);
        }
        for (int i = 0; i < 8; i++)
            for (int kk = k8; kk < K; kk++) panel[(size_t)kk * PANEL + jb + i] = rows[i * ld + kk];
    }
    for (int jj = n8; jj < nv; jj++)
        for (int kk = 0; kk < K; kk++) panel[(size_t)kk * PANEL + jj] = w[(j0 + jj) * ld + kk];
}

/* Panels of op(B) (K x N): ceil(N/32). */
static int panel_count(const tg_panel_src *b, int tb)
{
    return ((tb ? b->rows : b->cols) + PANEL - 1) / PANEL;
}

/* Panel p of op(B) (K x N) of b into its place in dst: K rows of 32, zero
 * past N. Each reads b along its rows: B (K x N) row by row, 32 values a
 * time; B^T (stored N x K) in 8 x 8 blocks. */
static void pack_one(const tg_panel_src *b, int tb, int p, tg_real *dst)
{
    int K = tb ? b->cols : b->rows, N = tb ? b->rows : b->cols;
    tg_real *panel = dst + (size_t)p * K * PANEL;
    int j0 = p * PANEL, nv = N - j0 < PANEL ? N - j0 : PANEL;
    if (!tb) {
        row_source rows = {b->data, (size_t)b->ld, NULL};
        pack_panel(&rows, 0, j0, K, nv, panel);
    } else {
        pack_panel_transposed(b->data, (size_t)b->ld, j0, K, nv, panel);
    }
}

/* Every panel of op(B), in order. */
static void pack(const tg_panel_src *b, int tb, tg_real *dst)
{
    for (int p = 0, panels = panel_count(b, tb); p < panels; p++) pack_one(b, tb, p, dst);
}

/* A full cache's slot of a matrix seen once and not packed (its use may
 * never come again: op outputs are candidates too), or NULL. Taken in turn
 * from a cursor, so a weight seen once survives as many newcomers as there
 * are such slots, not just the next one, before its second use. */
static slot *seen_once(tg_panel_cache *c)
{
    for (int n = 0; n < SLOTS; n++) {
        int i = (c->cursor + n) % SLOTS;
        if (!c->s[i].packed) {
            c->cursor = (i + 1) % SLOTS;
            return &c->s[i];
        }
    }
    return NULL;
}

/* The slot of (b, tb), or NULL. */
static slot *find(tg_panel_cache *c, const tg_panel_src *b, int tb)
{
    for (int i = 0; i < c->used; i++) {
        slot *s = &c->s[i];
        if (s->src == b->data && s->rows == b->rows && s->cols == b->cols && s->ld == b->ld &&
            s->tb == tb)
            return s;
    }
    return NULL;
}

/* s's buffer with room for b's panels; NULL without memory. */
static tg_real *room_for(slot *s, const tg_panel_src *b, int tb)
{
    size_t need = (size_t)(tb ? b->cols : b->rows) * (size_t)panel_count(b, tb) * PANEL;
    if (s->cap < need) { /* at a step's first packing, then reused while steps repeat */
        free(s->buf);
        s->buf = aligned_alloc(64, (need * sizeof(tg_real) + 63) / 64 * 64);
        s->cap = s->buf ? need : 0;
    }
    if (s->buf && s->need < need) s->need = need;
    return s->buf;
}

/* s's matrix b packed into s's own buffer; NULL without memory. */
static const tg_real *pack_into(slot *s, const tg_panel_src *b, int tb)
{
    tg_real *dst = room_for(s, b, tb);
    if (dst) pack(b, tb, dst);
    return dst;
}

/* A store's slot is packed by every thread that asks for it while it is
 * being packed: each takes the next panel not yet taken until none is left,
 * then waits for the others' last panels. The threads' shards ask for the
 * same weights at the same time, so one thread packing under the lock while
 * the other waited was 3% of config f's step at 2 threads (the waiting spun
 * in libgomp; Intel Xeon). A panel is a copy: the same bits whoever packs
 * it. */
static const tg_real *help_pack(slot *s, const tg_panel_src *b, int tb)
{
    int panels = panel_count(b, tb), p;
    /* the load first: requests after the packing do not count claimed up */
    while (__atomic_load_n(&s->claimed, __ATOMIC_RELAXED) < panels &&
           (p = __atomic_fetch_add(&s->claimed, 1, __ATOMIC_RELAXED)) < panels) {
        pack_one(b, tb, p, s->buf);
        __atomic_fetch_add(&s->done, 1, __ATOMIC_RELEASE);
    }
    for (long spin = 1; __atomic_load_n(&s->done, __ATOMIC_ACQUIRE) < panels; spin++) {
        _mm_pause();
        if (spin % 1024 == 0) sched_yield(); /* more threads than cores: let the packer run */
    }
    return s->buf;
}

/* The panels of (b, tb) in a shared store, packed there by the threads that
 * ask for them first (help_pack); NULL when the store is full or out of
 * memory. */
static const tg_real *from_store(tg_panel_cache *store, const tg_panel_src *b, int tb)
{
#ifdef _OPENMP
    omp_set_lock(&store->lock);
#endif
    slot *s = find(store, b, tb);
    if (!s && store->used < SLOTS) {
        s = &store->s[store->used];
        *s = (slot){.src = b->data, .rows = b->rows, .cols = b->cols, .ld = b->ld, .tb = tb,
                    .buf = s->buf, .cap = s->cap, .need = s->need};
        s->use = room_for(s, b, tb);
        s->packed = s->use != NULL;
        store->used += s->packed;
        if (!s->packed) s = NULL;
    }
#ifdef _OPENMP
    omp_unset_lock(&store->lock);
#endif
    return s ? help_pack(s, b, tb) : NULL;
}

/* Whether panels are used is c's decision alone (its slots, its first and
 * second requests, and the caller's `again`), so a tape makes the same
 * choices with or without a store, whatever other threads do: BLAS and
 * panels differ in the last bits. Where the panels live is the store's,
 * when given, else c's. */
static const tg_real *panels_of(tg_panel_cache *c, tg_panel_cache *store, const tg_panel_src *b,
                                int tb, int rows, int again)
{
    slot *s = find(c, b, tb);
    /* a store's panels last until its next clear (the end of the shards'
     * run): a slot that borrowed them before keeps its decision and looks
     * for its panels again, in the store it has now or in its own buffer */
    if (s && s->packed && (!s->from || s->from->gen == s->gen)) return s->use;
    if (!s) {
        s = c->used < SLOTS ? &c->s[c->used++] : seen_once(c);
        if (!s) return NULL;
        s->src = b->data;
        s->rows = b->rows;
        s->cols = b->cols;
        s->ld = b->ld;
        s->tb = tb;
        s->packed = 0;
        if (rows < PACK_AT_ONCE && !again) return NULL; /* seen once: pack if it comes again */
    }
    s->use = store ? from_store(store, b, tb) : NULL;
    s->from = s->use ? store : NULL;
    s->gen = store ? store->gen : 0;
    if (!s->use) s->use = pack_into(s, b, tb);
    s->packed = s->use != NULL;
    return s->use;
}

const tg_real *tg_panels_of(tg_panel_cache *c, const tg_tensor *b, int tb, int rows)
{
    if (!c || !tg_panels_available()) return NULL;
    tg_panel_src whole = tg_panel_src_cols(b, 0, b->cols);
    return panels_of(c, NULL, &whole, tb, rows, 0);
}

const tg_real *tg_panels_of_stored(tg_panel_cache *c, tg_panel_cache *store,
                                   const tg_panel_src *b, int tb, int rows, int again)
{
    if (!c || !tg_panels_available()) return NULL;
    return panels_of(c, store && store->shared ? store : NULL, b, tb, rows, again);
}

int tg_panels_held_cols(tg_panel_cache *c, const tg_tensor *b, int c0, int cols, int tb)
{
    tg_panel_src range = tg_panel_src_cols(b, c0, cols);
    const slot *s = c ? find(c, &range, tb) : NULL;
    return s && s->packed;
}

int tg_panels_held(tg_panel_cache *c, const tg_tensor *b, int tb)
{
    return tg_panels_held_cols(c, b, 0, b->cols, tb);
}

/* Lanes of the two zmm halves of a panel holding valid columns (nv of 32). */
static inline __mmask16 half_mask(int nv, int half)
{
    int v = nv - 16 * half;
    return v >= 16 ? (__mmask16)0xFFFF : v <= 0 ? (__mmask16)0 : (__mmask16)((1u << v) - 1);
}

/* MR rows of A against one panel: C[0..MR-1][0..nv-1] = the FMA chain +
 * D's row i (at d + i ldd: C itself, or the same bias row for every i with
 * ldd 0), or the chain alone when d is NULL. A's element (i, kk)
 * is a[i rs + kk ks]: rs = lda, ks = 1 for the rows of A; rs = 1, ks = 8
 * for A^T's columns packed 8 side by side (tg_gemm_tn_panels, pack_a_block).
 * MR, and ks for A, are constants at every call, so the accumulators live
 * in registers and A's rows are read as before.
 * C's lines are asked for at the start (prefetch), so that they arrive
 * during the FMA chain rather than after it: C is out of cache in both uses,
 * a forward product's output being fresh arena memory and a weight
 * gradient's C (8000 x 256 floats for an 8000-word output layer) being added
 * to long after its last visit. Waiting for them after the chain cost, at
 * 1 thread on Zen 5 (microbenchmark, C out of cache): m = 384 (or 32),
 * n = 1024, k = 256: 154 -> 192 (150 -> 182) GFLOP/s; a weight gradient
 * m = 8000, n = 256, k = 128: 106 -> 157. Long chains (k = 1000) hide the
 * wait either way; the AVX2 kernel, at half the FMA rate, gained nothing
 * from it (so it has none).
 * ahead (a constant: 0 or PANEL_AHEAD): the panel's rows that far ahead are
 * asked for as the chain goes (see panel_rows); near its end that is the
 * next panel's first rows, or memory past the last panel, which a prefetch
 * may name without faulting. */
__attribute__((target("avx512f"), always_inline)) static inline void
block(const int MR, int k, const float *a, size_t rs, size_t ks, const float *panel,
      const float *d, size_t ldd, float *c, int ldc, int nv, const int ahead)
{
    __m512 acc[8][2];
#pragma GCC unroll 8
    for (int i = 0; i < MR; i++) {
        acc[i][0] = acc[i][1] = _mm512_setzero_ps();
        /* first, middle and last of the row's nv floats: at most 64
         * bytes apart, so every line the row spans (3 at most) */
        const float *ci = c + (size_t)i * ldc;
        _mm_prefetch((const char *)ci, _MM_HINT_T0);
        _mm_prefetch((const char *)(ci + (nv - 1) / 2), _MM_HINT_T0);
        _mm_prefetch((const char *)(ci + nv - 1), _MM_HINT_T0);
    }
    for (int kk = 0; kk < k; kk++) {
        if (ahead) { /* the panel's row kk + ahead: two cache lines */
            _mm_prefetch((const char *)(panel + (size_t)(kk + ahead) * PANEL), _MM_HINT_T0);
            _mm_prefetch((const char *)(panel + (size_t)(kk + ahead) * PANEL + 16), _MM_HINT_T0);
        }
        __m512 b0 = _mm512_load_ps(panel + (size_t)kk * PANEL);
        __m512 b1 = _mm512_load_ps(panel + (size_t)kk * PANEL + 16);
#pragma GCC unroll 8
        for (int i = 0; i < MR; i++) {
            __m512 ai = _mm512_set1_ps(a[i * rs + kk * ks]);
            acc[i][0] = _mm512_fmadd_ps(ai, b0, acc[i][0]);
            acc[i][1] = _mm512_fmadd_ps(ai, b1, acc[i][1]);
        }
    }
    __mmask16 m0 = half_mask(nv, 0), m1 = half_mask(nv, 1);
#pragma GCC unroll 8
    for (int i = 0; i < MR; i++) {
        float *ci = c + (size_t)i * ldc;
        if (d) {
            const float *di = d + (size_t)i * ldd;
            acc[i][0] = _mm512_add_ps(_mm512_maskz_loadu_ps(m0, di), acc[i][0]);
            acc[i][1] = _mm512_add_ps(_mm512_maskz_loadu_ps(m1, di + 16), acc[i][1]);
        }
        _mm512_mask_storeu_ps(ci, m0, acc[i][0]);
        _mm512_mask_storeu_ps(ci + 16, m1, acc[i][1]);
    }
}

/* Rows i0 .. i1-1 of C (nv columns) against one panel, in blocks of 8, then
 * 4, 2, 1 rows; A's element (i, kk) at a[i rs + kk ks], D's row i at
 * d + i ldd, as in block. The first block reads the panel from L2 or
 * beyond (a seq2seq model's weight panels, 5 MB in config f, stay in no
 * core's L2), the rest from L1: only the first asks for it ahead. On the
 * Intel Xeon of BENCHMARKS.md (1 thread, medians of 5-7 interleaved runs,
 * ms a step): f 50.2 -> 48.7, a 31.3 -> 30.4, e 232 -> 223. Asking in every
 * block was no faster (f: 16 rows ahead 49.3, 32 rows 48.8; a 32.5), nor
 * the first block 64 rows ahead (f 49.4). A weight gradient's call is one
 * block (tn_block): its asks find the panel in L1 after the first group. */
#define PANEL_AHEAD 32
__attribute__((target("avx512f"), always_inline)) static inline void
panel_rows(int i0, int i1, int k, const float *a, size_t rs, size_t ks, const float *panel,
           const float *d, size_t ldd, float *c, int ldc, int nv)
{
    int i = i0;
#define BLOCK_AHEAD(MR, r, AHEAD)                                                                  \
    block(MR, k, a + (size_t)(r) * rs, rs, ks, panel, d ? d + (size_t)(r) * ldd : NULL, ldd,       \
          c + (size_t)(r) * ldc, ldc, nv, AHEAD)
#define BLOCK(MR, r) BLOCK_AHEAD(MR, r, 0)
    if (i + 8 <= i1) { /* the block that brings the panel into L1 */
        BLOCK_AHEAD(8, i, PANEL_AHEAD);
        i += 8;
    }
    TG_PANEL_ROW_BLOCKS(8, i, i1, BLOCK);
#undef BLOCK
#undef BLOCK_AHEAD
}

/* One row of A against NP consecutive panels at once (the last with nv of
 * its 32 columns), d as in block (ldd is irrelevant for one row). One
 * panel's two chains wait on the FMA latency at every step; NP panels give
 * 2 NP chains to overlap. Each element is block's chain, so the same bits. */
__attribute__((target("avx512f"), always_inline)) static inline void
row_panels(const int NP, int k, const float *a, const float *panel, const float *d, float *c,
           int nv)
{
    __m512 acc[4][2];
#pragma GCC unroll 4
    for (int q = 0; q < NP; q++) acc[q][0] = acc[q][1] = _mm512_setzero_ps();
    for (int kk = 0; kk < k; kk++) {
        __m512 ai = _mm512_set1_ps(a[kk]);
#pragma GCC unroll 4
        for (int q = 0; q < NP; q++) {
            const float *row = panel + ((size_t)q * k + (size_t)kk) * PANEL;
            acc[q][0] = _mm512_fmadd_ps(ai, _mm512_load_ps(row), acc[q][0]);
            acc[q][1] = _mm512_fmadd_ps(ai, _mm512_load_ps(row + 16), acc[q][1]);
        }
    }
#pragma GCC unroll 4
    for (int q = 0; q < NP; q++) {
        int v = q == NP - 1 ? nv : PANEL;
        __mmask16 m0 = half_mask(v, 0), m1 = half_mask(v, 1);
        if (d) {
            acc[q][0] = _mm512_add_ps(_mm512_maskz_loadu_ps(m0, d + q * PANEL), acc[q][0]);
            acc[q][1] = _mm512_add_ps(_mm512_maskz_loadu_ps(m1, d + q * PANEL + 16), acc[q][1]);
        }
        _mm512_mask_storeu_ps(c + q * PANEL, m0, acc[q][0]);
        _mm512_mask_storeu_ps(c + q * PANEL + 16, m1, acc[q][1]);
    }
}

/* C's one row = A's one row op(B) + D's, 4 panels at a time: a decoder's
 * step over one sentence (on a tape that holds its panels, ops/matmul.c)
 * ran 1 panel at a time at about half the speed of tg_gemm's one-row
 * kernel. */
__attribute__((target("avx512f"))) static void one_row_on_panels(int n, int k, const float *a,
                                                                const float *panels,
                                                                const float *d, float *c)
{
    int j0 = 0;
    for (; j0 + 4 * PANEL <= n; j0 += 4 * PANEL)
        row_panels(4, k, a, panels + (size_t)(j0 / PANEL) * k * PANEL, d ? d + j0 : NULL,
                   c + j0, PANEL);
    for (; j0 < n; j0 += PANEL) {
        int nv = n - j0 < PANEL ? n - j0 : PANEL;
        row_panels(1, k, a, panels + (size_t)(j0 / PANEL) * k * PANEL, d ? d + j0 : NULL,
                   c + j0, nv);
    }
}

/* Rows i0 .. i1-1 of C = A op(B) + D: panel by panel (a panel stays in L1
 * while the row blocks pass over it). */
__attribute__((target("avx512f"))) static void rows_on_panels(int i0, int i1, int n, int k,
                                                             const float *a, int lda,
                                                             const float *panels,
                                                             const float *d, size_t ldd,
                                                             float *c, int ldc)
{
    if (i1 - i0 == 1) {
        one_row_on_panels(n, k, a + (size_t)i0 * lda, panels, d ? d + (size_t)i0 * ldd : NULL,
                          c + (size_t)i0 * ldc);
        return;
    }
    for (int j0 = 0; j0 < n; j0 += PANEL) {
        const float *panel = panels + (size_t)(j0 / PANEL) * k * PANEL;
        int nv = n - j0 < PANEL ? n - j0 : PANEL;
        panel_rows(i0, i1, k, a, (size_t)lda, 1, panel, d ? d + j0 : NULL, ldd, c + j0, ldc, nv);
    }
}

/* Rows i0 .. i1-1 of C = beta C + A^T B, A (k x m, row stride lda) and B
 * (k x n, row stride ldb), blocked as the GEMMs of Goto and van de Geijn:
 * for each block of TN_NC columns and TN_MC rows of C (which stays in L2)
 * the k blocks of TN_KC run in order; B's k blocks are packed into panels
 * once for all the row blocks (TN_KB rows of k at a time: the room stays
 * bounded), and each block's columns of A 8 side by side, so a row block
 * broadcasts A^T's values from one contiguous run; each panel (TN_KC x 32
 * floats, 16 KB) stays in L1 while the row blocks pass over it, A's packed
 * block streaming from L2. Read in place, A's columns are one cache line
 * per k, 4 KB apart when m = 1024, all in one L1 set: that ran at 0.8x
 * OpenBLAS; with the k blocks outermost, C went through L3 once per k block
 * (k = 4096: 0.85x today's speed). Sizes tuned on Zen 5 (1 MB of L2); the
 * packing room (tn_room floats) is the caller's. Each k block is an FMA
 * chain from zero added to C, in k order, as in block. */
#define TN_KC 128
#define TN_NC 256
#define TN_MC 256
#define TN_KB (8 * TN_KC) /* rows of k whose B blocks are packed at once */

/* Rows of k whose B panels are held at once. */
static int tn_kb(int k) { return k < TN_KB ? k : TN_KB; }

/* Floats from one packed group of 8 of A's columns to the next: kc rows of
 * 8, and one cache line more, so that the groups' rows written side by side
 * (pack_a_block) do not all fall in one L1 set, kc x 32 bytes apart. */
static size_t tn_group(int kc) { return (size_t)kc * 8 + 16; }

/* B's panels for those rows (a column block of TN_NC), then one block of A. */
static size_t tn_room(int k)
{
    return (size_t)tn_kb(k) * TN_NC + (size_t)TN_MC / 8 * tn_group(TN_KC);
}

/* Rows of A asked for ahead of their packing: each row's piece lies in
 * another page (lda 1024 floats), where no hardware prefetcher follows, and
 * A (the steps' gate gradients) is out of cache by then. Waiting for them
 * was 13% of the kernel's time in config a; asking 4 rows ahead made the
 * product 3-6% faster (2 and 8: the same within the noise; Zen 5). */
#define TN_A_AHEAD 4

/* A's columns acol .. acol+mc-1 of rows k0 .. k0+kc-1 of s, in groups of 8
 * side by side (group q at ap + q tn_group(kc)), zero past mc. Row by row:
 * each row of A is read once, in order. Group by group, each group read 32
 * bytes of kc rows lda apart (4 KB when m = 1024: one L1 set, a new page a
 * row), and the next group came back for the same lines: A's packing was
 * 13% of a 1024 x 256 x 384 weight gradient, and this order made the
 * product 3-6% faster (Zen 5, interleaved in one process). */
static void pack_a_block(const row_source *s, int k0, int acol, int kc, int mc, float *ap)
{
    int full = mc / 8 * 8;
    size_t group = tn_group(kc);
    for (int kk = 0; kk < kc; kk++) {
        const float *row = row_at(s, k0 + kk) + acol;
        if (kk + TN_A_AHEAD < kc) {
            const char *ahead = (const char *)(row_at(s, k0 + kk + TN_A_AHEAD) + acol);
            for (int q = 0; q < mc; q += 16)
                _mm_prefetch(ahead + (size_t)q * sizeof *ap, _MM_HINT_T0);
        }
        for (int q = 0; q < full; q += 8)
            memcpy(ap + (size_t)(q / 8) * group + kk * 8, row + q, 8 * sizeof *ap);
        for (int j = 0; full < mc && j < 8; j++)
            ap[(size_t)(full / 8) * group + kk * 8 + j] = full + j < mc ? row[full + j] : 0;
    }
}

/* One block: C (mc x nc) += A^T B over rows k0 .. k0+kc-1 of A and B (C =
 * A^T B when add is 0), A's columns from acol, B's block already in panels
 * at bp; A's block packed into ap. */
__attribute__((target("avx512f"))) static void
tn_block(int mc, int nc, int k0, int kc, const row_source *a, int acol, const float *bp, int add,
         float *c, int ldc, float *ap)
{
    pack_a_block(a, k0, acol, kc, mc, ap);
    for (int p = 0; p * PANEL < nc; p++) {
        const float *panel = bp + (size_t)p * kc * PANEL;
        int nv = nc - p * PANEL < PANEL ? nc - p * PANEL : PANEL;
        for (int r = 0; r < mc; r += 8) {
            float *cb = c + (size_t)r * ldc + p * PANEL; /* added to itself after k's first block */
            const float *group = ap + (size_t)(r / 8) * tn_group(kc);
            panel_rows(0, mc - r < 8 ? mc - r : 8, kc, group, 1, 8, panel, add ? cb : NULL,
                       (size_t)ldc, cb, ldc, nv);
        }
    }
}

/* B's columns j0 .. j0+nc-1 of rows kb .. kb+kn-1, in panels by k block:
 * block k0 at bp + (k0 - kb) * (nc rounded up to panels), its panels kc x 32
 * one after the other. Packed once for all the row blocks of C, not once per
 * row block (32 times over for the 8000 rows of an output layer's
 * gradient). */
static void pack_b_blocks(const row_source *b, int j0, int nc, int kb, int kn, float *bp)
{
    size_t ncp = (size_t)(nc + PANEL - 1) / PANEL * PANEL;
    for (int k0 = kb; k0 < kb + kn; k0 += TN_KC) {
        int kc = kb + kn - k0 < TN_KC ? kb + kn - k0 : TN_KC;
        for (int p = 0; p * PANEL < nc; p++)
            pack_panel(b, k0, j0 + p * PANEL, kc, nc - p * PANEL < PANEL ? nc - p * PANEL : PANEL,
                       bp + (size_t)(k0 - kb) * ncp + (size_t)p * kc * PANEL);
    }
}

/* Each element of C still gets its k blocks in k order: the row blocks pass
 * over one TN_KB run of k, then the next. */
static void tn_rows(int i0, int i1, int n, int k, const row_source *a, const row_source *b,
                    int beta, float *c, int ldc, float *room)
{
    float *bp = room, *ap = room + (size_t)tn_kb(k) * TN_NC;
    for (int j0 = 0; j0 < n; j0 += TN_NC) {
        int nc = n - j0 < TN_NC ? n - j0 : TN_NC;
        size_t ncp = (size_t)(nc + PANEL - 1) / PANEL * PANEL;
        for (int kb = 0; kb < k; kb += TN_KB) {
            int kn = k - kb < TN_KB ? k - kb : TN_KB;
            pack_b_blocks(b, j0, nc, kb, kn, bp);
            for (int m0 = i0; m0 < i1; m0 += TN_MC)
                for (int k0 = kb; k0 < kb + kn; k0 += TN_KC) {
                    int mc = i1 - m0 < TN_MC ? i1 - m0 : TN_MC;
                    int kc = k - k0 < TN_KC ? k - k0 : TN_KC;
                    tn_block(mc, nc, k0, kc, a, m0, bp + (size_t)(k0 - kb) * ncp,
                             beta || k0 > 0, c + (size_t)m0 * ldc + j0, ldc, ap);
                }
        }
    }
}

/* A product's operands, for the row-splitting below: C = A op(B) + D, op(B)
 * as panels (D: NULL, C or a bias row, as in block), or C = beta C + A^T B
 * with ta set. */
typedef struct product {
    void (*rows)(int, int, int, int, const float *, int, const float *, const float *, size_t,
                 float *, int);
    int m, n, k, lda, beta, ldc;
    const float *a, *panels, *d;
    size_t ldd;
    const row_source *ta, *tb; /* A^T B: its operands, set */
    float *c, *bp;            /* A^T B: tn_room(k) floats of packing room per thread */
} product;

static void product_rows(const product *p, int i0, int i1, int id)
{
    if (p->ta)
        tn_rows(i0, i1, p->n, p->k, p->ta, p->tb, p->beta, p->c, p->ldc,
                p->bp + (size_t)id * tn_room(p->k));
    else
        p->rows(i0, i1, p->n, p->k, p->a, p->lda, p->panels, p->d, p->ldd, p->c, p->ldc);
}

/* Threads take contiguous runs of 8-row blocks; each element of C is still
 * one thread's sum in k order, so the count changes no bit (nor the kernel:
 * both make the same chain per element). */
static int split_threads(int m, int n, int k, int threads)
{
    return threads > 1 && m > 8 && (double)m * n * k >= 1 << 22 ? threads : 1;
}

static void split_rows(const product *p, int threads)
{
    int blocks = (p->m + 7) / 8, par = split_threads(p->m, p->n, p->k, threads) > 1;
#pragma omp parallel num_threads(par ? threads : 1) if (par)
    {
#ifdef _OPENMP
        int id = omp_get_thread_num(), nt = omp_get_num_threads();
#else
        int id = 0, nt = 1;
#endif
        int b0 = (int)((long)blocks * id / nt), b1 = (int)((long)blocks * (id + 1) / nt);
        int i0 = 8 * b0, i1 = 8 * b1 < p->m ? 8 * b1 : p->m;
        if (i0 < i1) product_rows(p, i0, i1, id);
    }
}

void tg_gemm_panels_add(int m, int n, int k, const tg_real *a, int lda, const tg_real *panels,
                        const tg_real *d, int ldd, tg_real *c, int ldc, int threads)
{
    tg_gemm_panels_isa(tg_panels_isa(), m, n, k, a, lda, panels, d, ldd, c, ldc, threads);
}

void tg_gemm_panels_isa(tg_panel_isa isa, int m, int n, int k, const tg_real *a, int lda,
                        const tg_real *panels, const tg_real *d, int ldd, tg_real *c, int ldc,
                        int threads)
{
    if (isa == TG_PANEL_NONE || !tg_panels_isa_runs(isa))
        tg_misuse(TG_HERE, "tg_gemm_panels_isa", "no %s panel kernel runs on this CPU or build",
                  tg_panels_isa_name(isa));
    product p = {isa == TG_PANEL_AVX2 ? tg_panels_rows_avx2 : rows_on_panels,
                 m, n, k, lda, 0, ldc, a, panels, d, (size_t)ldd, NULL, NULL, c, NULL};
    split_rows(&p, threads);
}

int tg_gemm_tn_suits(int m, int n, int k)
{
    return tg_panels_isa() == TG_PANEL_AVX512 && m >= 8 && n >= 16 && k >= 64;
}

size_t tg_gemm_tn_room(int m, int n, int k, int threads)
{
    return (size_t)split_threads(m, n, k, threads) * tn_room(k) * sizeof(float);
}

/* room: tg_gemm_tn_room bytes, 64-byte aligned, or NULL to allocate them
 * here (once per product: a few per weight and step). */
static int tn_run(int m, int n, int k, const row_source *a, const row_source *b, int beta,
                  float *c, int ldc, int threads, float *room)
{
    if (!tg_panels_isa_runs(TG_PANEL_AVX512))
        tg_misuse(TG_HERE, "tg_gemm_tn_panels", "the AVX-512 kernel does not run on this CPU");
    if (k < 1) { /* an empty sum: C = beta C */
        for (int i = 0; i < m && !beta; i++) memset(c + (size_t)i * ldc, 0, (size_t)n * sizeof *c);
        return 1;
    }
    float *bp = room ? room : aligned_alloc(64, tg_gemm_tn_room(m, n, k, threads));
    if (!bp) return 0;
    product p = {NULL, m, n, k, 0, beta, ldc, NULL, NULL, NULL, 0, a, b, c, bp};
    split_rows(&p, threads);
    if (bp != room) free(bp);
    return 1;
}

int tg_gemm_tn_panels(int m, int n, int k, const tg_real *a, int lda, const tg_real *b, int ldb,
                      int beta, tg_real *c, int ldc, int threads)
{
    row_source sa = {a, (size_t)lda, NULL}, sb = {b, (size_t)ldb, NULL};
    return tn_run(m, n, k, &sa, &sb, beta, c, ldc, threads, NULL);
}

int tg_gemm_tn_panels_rows(int m, int n, int k, const tg_real *const *arows,
                           const tg_real *const *brows, int beta, tg_real *c, int ldc,
                           int threads, tg_real *room)
{
    row_source sa = {NULL, 0, arows}, sb = {NULL, 0, brows};
    return tn_run(m, n, k, &sa, &sb, beta, c, ldc, threads, room);
}

#else /* no panel kernel in this build: every product stays on tg_gemm */

int tg_panels_available(void) { return 0; }

const tg_real *tg_panels_of(tg_panel_cache *c, const tg_tensor *b, int tb, int rows)
{
    (void)c, (void)b, (void)tb, (void)rows;
    return NULL;
}

const tg_real *tg_panels_of_stored(tg_panel_cache *c, tg_panel_cache *store,
                                   const tg_panel_src *b, int tb, int rows, int again)
{
    (void)c, (void)store, (void)b, (void)tb, (void)rows, (void)again;
    return NULL;
}

int tg_panels_held_cols(tg_panel_cache *c, const tg_tensor *b, int c0, int cols, int tb)
{
    (void)c, (void)b, (void)c0, (void)cols, (void)tb;
    return 0;
}

int tg_panels_held(tg_panel_cache *c, const tg_tensor *b, int tb)
{
    (void)c, (void)b, (void)tb;
    return 0;
}

void tg_gemm_panels_add(int m, int n, int k, const tg_real *a, int lda, const tg_real *panels,
                        const tg_real *d, int ldd, tg_real *c, int ldc, int threads)
{
    (void)m, (void)n, (void)k, (void)a, (void)lda, (void)panels, (void)d, (void)ldd, (void)c;
    (void)ldc, (void)threads;
    abort(); /* unreachable: tg_panels_of never returned panels */
}

void tg_gemm_panels_isa(tg_panel_isa isa, int m, int n, int k, const tg_real *a, int lda,
                        const tg_real *panels, const tg_real *d, int ldd, tg_real *c, int ldc,
                        int threads)
{
    (void)isa;
    tg_gemm_panels_add(m, n, k, a, lda, panels, d, ldd, c, ldc, threads);
}

int tg_gemm_tn_suits(int m, int n, int k)
{
    (void)m, (void)n, (void)k;
    return 0;
}

int tg_gemm_tn_panels(int m, int n, int k, const tg_real *a, int lda, const tg_real *b, int ldb,
                      int beta, tg_real *c, int ldc, int threads)
{
    (void)m, (void)n, (void)k, (void)a, (void)lda, (void)b, (void)ldb, (void)beta, (void)c;
    (void)ldc, (void)threads;
    return 0;
}

size_t tg_gemm_tn_room(int m, int n, int k, int threads)
{
    (void)m, (void)n, (void)k, (void)threads;
    return 0;
}

int tg_gemm_tn_panels_rows(int m, int n, int k, const tg_real *const *arows,
                           const tg_real *const *brows, int beta, tg_real *c, int ldc,
                           int threads, tg_real *room)
{
    (void)m, (void)n, (void)k, (void)arows, (void)brows, (void)beta, (void)c, (void)ldc;
    (void)threads, (void)room;
    return 0;
}

#endif
