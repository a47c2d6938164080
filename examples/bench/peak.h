/* The machine's measured FP32 peak (bench --task peak): the yardstick that
 * BENCHMARKS.md's "of the peak" columns divide by. */
#ifndef BENCH_PEAK_H
#define BENCH_PEAK_H

/* GFLOP/s of `threads` threads each running independent FMA chains of the
 * widest vector the CPU has, for about `seconds`; *isa names it (avx512,
 * avx2, or scalar). Counts 2 FLOPs per lane of each FMA. */
double bench_peak_gflops(int threads, double seconds, const char **isa);

#endif
