/* FP32 peak by measurement: each thread runs CHAINS independent
 * accumulators of a = a * m + c, every one a vector FMA. A core has 2 FMA
 * pipes with a 4-5 cycle latency on the CPUs we see (Zen 3/4/5, Skylake-X to
 * Sapphire Rapids), so 12 chains keep both pipes busy; more would only spill
 * registers. m and c are read from memory so the compiler cannot fold the
 * loop, and the accumulators are summed at the end so it cannot drop it. */

#include "peak.h"
#include "cli.h"

enum { CHAINS = 12, ITERS = 1 << 20 };

#if defined(__x86_64__) && defined(__GNUC__)
#include <immintrin.h>

__attribute__((target("avx512f"))) static double run_avx512(long reps, const float *mc)
{
    __m512 a[CHAINS], m = _mm512_set1_ps(mc[0]), c = _mm512_set1_ps(mc[1]);
    for (int i = 0; i < CHAINS; i++) a[i] = _mm512_set1_ps((float)i);
    for (long r = 0; r < reps; r++)
        for (int i = 0; i < CHAINS; i++) a[i] = _mm512_fmadd_ps(a[i], m, c);
    double s = 0;
    for (int i = 0; i < CHAINS; i++) s += _mm512_reduce_add_ps(a[i]);
    return s;
}

__attribute__((target("avx2,fma"))) static double run_avx2(long reps, const float *mc)
{
    __m256 a[CHAINS], m = _mm256_set1_ps(mc[0]), c = _mm256_set1_ps(mc[1]);
    for (int i = 0; i < CHAINS; i++) a[i] = _mm256_set1_ps((float)i);
    for (long r = 0; r < reps; r++)
        for (int i = 0; i < CHAINS; i++) a[i] = _mm256_fmadd_ps(a[i], m, c);
    float lanes[8];
    double s = 0;
    for (int i = 0; i < CHAINS; i++) {
        _mm256_storeu_ps(lanes, a[i]);
        for (int j = 0; j < 8; j++) s += lanes[j];
    }
    return s;
}
#endif

static double run_scalar(long reps, const float *mc)
{
    float a[CHAINS];
    for (int i = 0; i < CHAINS; i++) a[i] = (float)i;
    for (long r = 0; r < reps; r++)
        for (int i = 0; i < CHAINS; i++) a[i] = a[i] * mc[0] + mc[1];
    double s = 0;
    for (int i = 0; i < CHAINS; i++) s += a[i];
    return s;
}

typedef double (*peak_fn)(long reps, const float *mc);

static peak_fn widest(const char **isa, int *lanes)
{
#if defined(__x86_64__) && defined(__GNUC__)
    __builtin_cpu_init();
    if (__builtin_cpu_supports("avx512f")) return *isa = "avx512", *lanes = 16, run_avx512;
    if (__builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma"))
        return *isa = "avx2", *lanes = 8, run_avx2;
#endif
    return *isa = "scalar", *lanes = 1, run_scalar;
}

double bench_peak_gflops(int threads, double seconds, const char **isa)
{
    int lanes;
    peak_fn fn = widest(isa, &lanes);
    volatile float mc_store[2] = {0.999999f, 1e-7f};
    const float mc[2] = {mc_store[0], mc_store[1]};
    double sink = fn(ITERS / 16, mc); /* warm up: clocks settle */
    long reps = ITERS;
    double dt;
    /* grow the repetitions until one round takes ~seconds */
    for (;;) {
        double t0 = tg_clock_seconds();
#pragma omp parallel num_threads(threads) reduction(+ : sink)
        sink += fn(reps, mc);
        dt = tg_clock_seconds() - t0;
        if (dt >= seconds || reps > (1L << 40)) break;
        reps = (long)((double)reps * (dt > 0 ? 1.2 * seconds / dt : 16) + 1);
    }
    if (sink == 42.4242) *isa = "?"; /* keep the sums alive */
    return 2.0 * lanes * CHAINS * (double)reps * threads / dt / 1e9;
}
