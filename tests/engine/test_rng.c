/* The explicit random generator: the published xoshiro256** stream seeded
 * through splitmix64, reproducible per seed, forkable by copying, and
 * bounded draws that stay in range without visible bias. */
#include <criterion/criterion.h>
#include <math.h>
#include <stdint.h>

#include "tapegrad.h"

/* The reference algorithms, written out as published (Vigna, prng.di.unimi.it). */
static uint64_t ref_splitmix64(uint64_t *x)
{
    uint64_t z = (*x += 0x9e3779b97f4a7c15ull);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
}

static uint64_t ref_rotl(uint64_t x, int k) { return (x << k) | (x >> (64 - k)); }

static uint64_t ref_xoshiro256ss(uint64_t s[4])
{
    const uint64_t result = ref_rotl(s[1] * 5, 7) * 9;
    const uint64_t t = s[1] << 17;
    s[2] ^= s[0];
    s[3] ^= s[1];
    s[1] ^= s[2];
    s[0] ^= s[3];
    s[2] ^= t;
    s[3] = ref_rotl(s[3], 45);
    return result;
}

Test(rng, splitmix64_known_answers)
{
    /* the commonly quoted splitmix64 test vector: state 1234567 */
    uint64_t x = 1234567;
    const uint64_t want[] = {6457827717110365317ull, 3203168211198807973ull,
                             9817491932198370423ull, 4593380528125082431ull,
                             16408922859458223821ull};
    for (int i = 0; i < 5; i++) cr_assert_eq(ref_splitmix64(&x), want[i], "output %d", i);
}

Test(rng, matches_reference_xoshiro256starstar)
{
    const uint64_t seeds[] = {0, 1, 42, 0x8000000000000000ull};
    for (int k = 0; k < 4; k++) {
        uint64_t s[4], x = seeds[k];
        for (int i = 0; i < 4; i++) s[i] = ref_splitmix64(&x);
        tg_rng r;
        tg_rng_seed(&r, seeds[k]);
        for (int i = 0; i < 1000; i++)
            cr_assert_eq(tg_rng_u64(&r), ref_xoshiro256ss(s), "seed %d draw %d", k, i);
    }
}

Test(rng, same_seed_same_stream_different_seed_different_stream)
{
    tg_rng a, b, c;
    tg_rng_seed(&a, 7);
    tg_rng_seed(&b, 7);
    tg_rng_seed(&c, 8);
    int same_as_c = 0;
    for (int i = 0; i < 1000; i++) {
        uint64_t x = tg_rng_u64(&a);
        cr_assert_eq(x, tg_rng_u64(&b));
        same_as_c += x == tg_rng_u64(&c);
    }
    cr_assert_eq(same_as_c, 0);
}

Test(rng, copying_the_state_forks_the_stream)
{
    tg_rng a;
    tg_rng_seed(&a, 99);
    for (int i = 0; i < 10; i++) tg_rng_u64(&a);
    tg_rng fork = a;
    for (int i = 0; i < 100; i++) cr_assert_eq(tg_rng_uniform(&a), tg_rng_uniform(&fork));
}

Test(rng, uniform_in_unit_interval)
{
    tg_rng r;
    tg_rng_seed(&r, 1);
    const int n = 100000;
    double sum = 0;
    for (int i = 0; i < n; i++) {
        double u = tg_rng_uniform(&r);
        cr_assert(u >= 0 && u < 1, "draw %d = %.17g", i, u);
        sum += u;
    }
    /* std of the mean: sqrt(1/12/n) = 0.0009 */
    cr_assert(fabs(sum / n - 0.5) < 0.005, "mean %.4f", sum / n);
}

Test(rng, normal_has_unit_variance)
{
    tg_rng r;
    tg_rng_seed(&r, 2);
    const int n = 100000;
    double sum = 0, sq = 0;
    for (int i = 0; i < n; i++) {
        double z = tg_rng_normal(&r);
        cr_assert(isfinite(z));
        sum += z;
        sq += z * z;
    }
    double mean = sum / n, var = sq / n - mean * mean;
    cr_assert(fabs(mean) < 0.02, "mean %.4f", mean);
    cr_assert(fabs(var - 1) < 0.03, "variance %.4f", var);
}

Test(rng, below_stays_in_range)
{
    const uint32_t ns[] = {1, 2, 3, 7, 10, 1000, 65537, 2147483649u, 3221225472u, UINT32_MAX};
    tg_rng r;
    tg_rng_seed(&r, 3);
    for (int k = 0; k < 10; k++)
        for (int i = 0; i < 20000; i++) {
            uint32_t v = tg_rng_below(&r, ns[k]);
            cr_assert_lt(v, ns[k], "below(%u) gave %u", ns[k], v);
        }
}

/* Chi-square over 10 buckets, 9 degrees of freedom: 40 is beyond the
 * 99.999th percentile (about 35.3 at 99.99%). */
Test(rng, below_is_uniform)
{
    tg_rng r;
    tg_rng_seed(&r, 4);
    const int n = 100000;
    int count[10] = {0};
    for (int i = 0; i < n; i++) count[tg_rng_below(&r, 10)]++;
    double chi2 = 0, e = n / 10.0;
    for (int j = 0; j < 10; j++) chi2 += (count[j] - e) * (count[j] - e) / e;
    cr_assert_lt(chi2, 40.0, "chi-square %.1f", chi2);
}

/* For n = 3 * 2^30, multiply-shift without rejection maps x to
 * floor(3x / 4): every v divisible by 3 gets two of the 2^32 inputs, the
 * others one, so residue 0 mod 3 would come up half of the time. With
 * Lemire's rejection step the three residues are equally likely. */
Test(rng, below_has_no_multiply_shift_bias)
{
    tg_rng r;
    tg_rng_seed(&r, 5);
    const uint32_t n = 3221225472u;
    const int draws = 60000;
    int hist[3] = {0};
    for (int i = 0; i < draws; i++) hist[tg_rng_below(&r, n) % 3]++;
    for (int j = 0; j < 3; j++)
        cr_assert(fabs(hist[j] - draws / 3.0) < 600, "residue %d: %d of %d", j, hist[j], draws);
}
