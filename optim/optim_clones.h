/* Private to optim/: the loops over every parameter (updates, norm, finite
 * checks) are compiled for AVX-512, AVX2 and the baseline, and the widest the
 * CPU has is picked at load time (GCC target_clones, as TG_SIMD_CLONES in
 * ops/tg_fastmath.h). Every clone does the same IEEE operations in the same
 * order (no FMA contraction in ISO C11 mode), so the bits do not depend on
 * which clone runs. */
#ifndef TG_OPTIM_CLONES_H
#define TG_OPTIM_CLONES_H

#if defined(__x86_64__) && defined(__linux__) && defined(__GNUC__) && !defined(__clang__) &&    \
    !defined(TG_NO_CLONES)
#define OPTIM_CLONES __attribute__((target_clones("avx512f", "avx2", "default")))
#else
#define OPTIM_CLONES
#endif

#endif
