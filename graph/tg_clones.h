/* TG_SIMD_CLONES: a loop compiled for AVX-512, AVX2 and the x86-64
 * baseline, the widest the CPU has picked at load time (GCC target_clones
 * on x86-64 Linux; elsewhere, with Clang, or with -DTG_NO_CLONES, one
 * version). Every clone does the same IEEE operations in the same order
 * (no FMA contraction in ISO C11 mode), so no result bit depends on which
 * one runs. For graph/, ops/ and optim/ (not installed: not public API). */
#ifndef TG_CLONES_H
#define TG_CLONES_H

#if defined(__x86_64__) && defined(__linux__) && defined(__GNUC__) && !defined(__clang__) &&    \
    !defined(TG_NO_CLONES)
#define TG_SIMD_CLONES __attribute__((target_clones("avx512f", "avx2", "default")))
#else
#define TG_SIMD_CLONES
#endif

#endif
