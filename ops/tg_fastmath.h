/* Vectorizable exp, sigmoid and tanh for the element-wise kernels (private to ops/).
 *
 * Why: libm's expf/tanhf are scalar calls; in an LSTM step they took about a
 * quarter of the training time (perf, config a of BENCHMARKS.md). These are
 * branch-free inline functions a compiler turns into SIMD code, accurate to a
 * few float ulps:
 *   exp:     Cephes expf (range reduction by ln 2 in two parts, degree-5
 *            polynomial), relative error < 2e-7 on [-87, 88].
 *   sigmoid: e = exp(-|x|); x >= 0 ? 1/(1+e) : e/(1+e)  (no overflow, full
 *            relative accuracy in both tails down to 1e-38).
 *   tanh:    |x| < 0.625: Cephes tanhf odd polynomial; else
 *            sign(x) * (1 - 2/(exp(2|x|)+1)); relative error < 3e-7.
 * The double build (gradient checking) uses libm, so checks keep double
 * precision. Plain IEEE arithmetic, no FMA contraction in C11 mode: the same
 * results on every SIMD width and thread count.
 *
 * TG_SIMD_CLONES marks a kernel to be compiled for AVX-512, AVX2 and the
 * baseline, picked at load time (GCC/Clang target_clones on x86-64 Linux). */
#ifndef TG_FASTMATH_H
#define TG_FASTMATH_H

#include <math.h>
#include <string.h>
#ifdef _OPENMP
#include <omp.h>
#endif

#include "tg_clones.h"
#include "tg_op.h"

#ifdef TG_REAL_DOUBLE

static inline tg_real tg_fexp(tg_real x) { return exp(x); }
static inline tg_real tg_fsigmoid(tg_real x)
{
    tg_real e = exp(-fabs(x));
    return x >= 0 ? 1 / (1 + e) : e / (1 + e);
}
static inline tg_real tg_ftanh(tg_real x) { return tanh(x); }

#else

static inline float tg_fexp(float x)
{
    x = x > 88.0f ? 88.0f : x; /* keeps 2^k finite (k <= 127) */
    x = x < -87.3365447504f ? -87.3365447504f : x;
    /* k = round(x / ln 2) by the 1.5 * 2^23 trick (round to nearest even) */
    float k = (x * 1.44269504088896341f + 12582912.0f) - 12582912.0f;
    float r = x - k * 0.693359375f;
    r = r - k * -2.12194440e-4f;
    float z = r * r;
    float p = 1.9875691500e-4f;
    p = p * r + 1.3981999507e-3f;
    p = p * r + 8.3334519073e-3f;
    p = p * r + 4.1665795894e-2f;
    p = p * r + 1.6666665459e-1f;
    p = p * r + 5.0000001201e-1f;
    p = p * z + r + 1.0f;
    /* 2^k by the exponent field; k is in [-126, 127] after the clamps,
     * except for a NaN x (the clamps let it through): (int)NaN is undefined
     * and shifting its result too, so use k = 0 there; p is NaN already. */
    union {
        int i;
        float f;
    } s;
    s.i = ((int)(k == k ? k : 0.0f) + 127) << 23;
    return p * s.f;
}

static inline float tg_fsigmoid(float x)
{
    float e = tg_fexp(-fabsf(x));
    float d = 1.0f / (1.0f + e);
    return x >= 0 ? d : e * d;
}

static inline float tg_ftanh(float x)
{
    float a = fabsf(x), z = x * x;
    float p = -5.70498872745e-3f;
    p = p * z + 2.06390887954e-2f;
    p = p * z - 5.37397155531e-2f;
    p = p * z + 1.33314422036e-1f;
    p = p * z - 3.33332819422e-1f;
    float small = p * z * x + x;
    float big = 1.0f - 2.0f / (tg_fexp(2.0f * a) + 1.0f);
    big = x < 0 ? -big : big;
    return a < 0.625f ? small : big;
}

#endif

/* max(z[0..v-1]), v >= 1, over 16 lane maxima: one running max is a
 * dependent compare per element (3 cycles: a third of the softmax over an
 * 8000-word vocabulary went there). Exact whatever the grouping (max does
 * not round); a NaN is skipped as by the running max unless z[0] is one,
 * which makes the result NaN. */
#ifdef TG_REAL_DOUBLE
static inline __attribute__((always_inline)) tg_real tg_row_max(const tg_real *z, int v)
{
    enum { LANES = 16 };
    tg_real m[LANES];
    for (int k = 0; k < LANES; k++) m[k] = z[0];
    int j = 0;
    for (; j + LANES <= v; j += LANES)
        for (int k = 0; k < LANES; k++) m[k] = z[j + k] > m[k] ? z[j + k] : m[k];
    for (; j < v; j++) m[0] = z[j] > m[0] ? z[j] : m[0];
    tg_real mx = m[0];
    for (int k = 1; k < LANES; k++) mx = m[k] > mx ? m[k] : mx;
    return mx;
}
#else
/* The float build writes the 16 lanes as two 8-float vectors (GCC's vector
 * extension): as an array of lanes, the AVX2 clone compiled them to one
 * scalar vmaxss per element with the lanes on the stack (perf: a fifth of
 * softmax_xent's forward at 8000 words). A lane takes x where x > m, as the
 * running max does, so NaN behaves as described above. */
typedef float tg_v8f __attribute__((vector_size(32)));
typedef int tg_v8i __attribute__((vector_size(32)));

/* m = x > m ? x : m, lane by lane (a macro: a function returning a 32-byte
 * vector changes the ABI outside the AVX clones) */
#define TG_V8F_MAX(m, x)                                                             \
    do {                                                                             \
        tg_v8i gt_ = (x) > (m);                                                      \
        (m) = (tg_v8f)(((tg_v8i)(x) & gt_) | ((tg_v8i)(m) & ~gt_));                   \
    } while (0)

static inline __attribute__((always_inline)) float tg_row_max(const float *z, int v)
{
    tg_v8f lo = (tg_v8f){0} + z[0], hi = lo;
    int j = 0;
    for (; j + 16 <= v; j += 16) {
        tg_v8f a, b;
        memcpy(&a, z + j, sizeof a);
        memcpy(&b, z + j + 8, sizeof b);
        TG_V8F_MAX(lo, a);
        TG_V8F_MAX(hi, b);
    }
    float m0 = lo[0];
    for (; j < v; j++) m0 = z[j] > m0 ? z[j] : m0;
    float mx = m0;
    for (int k = 1; k < 16; k++) {
        float mk = k < 8 ? lo[k] : hi[k - 8];
        mx = mk > mx ? mk : mx;
    }
    return mx;
}
#endif

/* y[i] = f(x[i]) for i < n: SIMD kernels over a range (callers split ranges
 * across threads). */
void tg_k_sigmoid(tg_real *y, const tg_real *x, long n);
void tg_k_tanh(tg_real *y, const tg_real *x, long n);

/* One row of k values: y = the softmax of x over the kept positions (mask
 * NULL, or mask[j] == 0), 0 at the others (at least one kept); returns
 * log sum exp over the kept. SIMD exp of x - max, summed in double over 8
 * fixed partial sums, position j always in sum j % 8, then scaled by 1/sum:
 * a fixed order (vectorizes, never depends on threads), and masked
 * positions add zeros, so a row padded with masked positions gives the bits
 * it gives alone. libm's scalar exp took 6% of a seq2seq step (vocabulary
 * 1000; softmax_xent); the softmax op's scalar loop with a serial sum, a
 * third of a beam search step over 8000 pieces (seq2seq's decode.c reads
 * its normaliser from this op). */
double tg_k_softmax_row(const tg_real *x, const int *mask, tg_real *y, int k);

/* The part [*lo, *hi) of 0..n that OpenMP thread `id` of `nth` owns: equal
 * contiguous blocks, so every element is computed by the same code whatever
 * the thread count. */
/* for header body, on `threads` OpenMP threads when cond holds and threads > 1,
 * else as a plain loop. A loop that stays serial never enters an OpenMP
 * region: entering one, even under if(0), costs libgomp a team set-up (about
 * 100-150 ns, measured with bench --task overhead), which dominated tiny ops.
 *     TG_PAR_FOR(threads, n > TG_PAR_MIN, (long i = 0; i < n; i++), { y[i] = x[i]; });
 * Iterations are independent: results never depend on the thread count. */
#define TG_PAR_FOR(threads, cond, header, ...)                                            \
    do {                                                                                   \
        const int tg_th_ = (threads);                                                      \
        if (tg_th_ > 1 && (cond)) {                                                        \
            _Pragma("omp parallel for schedule(static) num_threads(tg_th_)")               \
            for header __VA_ARGS__                                                         \
        } else {                                                                           \
            for header __VA_ARGS__                                                         \
        }                                                                                  \
    } while (0)

#ifdef _OPENMP
static inline int tg_omp_id(void) { return omp_get_thread_num(); }
static inline int tg_omp_count(void) { return omp_get_num_threads(); }
#else
static inline int tg_omp_id(void) { return 0; }
static inline int tg_omp_count(void) { return 1; }
#endif

static inline void tg_block_range(long n, int id, int nth, long *lo, long *hi)
{
    *lo = n * id / nth;
    *hi = n * (id + 1) / nth;
}

#endif
