/* Data-parallel training across processes (MPI ranks), bitwise the same as
 * one process (issue 14).
 *
 * Every rank holds the whole model (same seed, so the same initial values
 * and batch order without sending data) and runs its own part of the S
 * shards of every global batch: with N ranks (N divides S), rank r runs
 * shards r*S/N .. (r+1)*S/N - 1 on its own threads (tg_workers). The
 * gradients are then added across ranks so that every rank's master
 * gradient holds bitwise what tg_workers_run leaves in one process with the
 * same S: g = (((0 + r_0) + r_1) + ... ) + r_{S-1}, element by element, in
 * shard order, whatever N and whatever algorithm MPI picks. How: rank c owns
 * chunk c of the flat gradient vector, receives every shard's part of that
 * chunk (MPI_Alltoallv), adds them in shard order into its master chunk,
 * and the chunks are gathered back to every rank (MPI_Allgatherv). Each
 * rank sends (S/N + 1)(N-1)/N gradients per step: with one shard per rank
 * (S = N) the 2 (N-1)/N of a reduce-scatter + allgather; a rank's shards
 * cannot be pre-summed without changing the order (SCALING.md).
 * The optimizer then takes one identical step on every rank.
 *
 * Built without MPI (-Dmpi=disabled, or auto without Open MPI) the same API
 * is a world of one rank: tg_dist_run is tg_workers_run, the checks pass,
 * the scalars are this process's; callers need no #ifdef.
 *
 * Collective calls (marked so) must be made by every rank, in the same
 * order. MPI calls come only from the calling thread (MPI_THREAD_FUNNELED):
 * call these outside OpenMP regions. Every MPI error is fatal to the job
 * (MPI_ERRORS_ARE_FATAL), and mpirun ends the whole job when a rank dies or
 * exits non-zero, so a failed rank never leaves the others waiting.
 *
 * A training loop, per step (the single-process loop with three changes):
 *
 *     double loss = tg_dist_run(d, w, threads, fn, ctx); // was tg_workers_run
 *     if (tg_dist_any(d, !isfinite(loss) || stop_signal)) ... // same verdict everywhere
 *     tg_optim_step(opt, master);                        // identical on every rank
 *     if (tg_dist_rank(d) == 0) print / --log / --save / --checkpoint
 *
 * fn receives the global shard index s (0..S-1), exactly as with
 * tg_workers_run, so per-shard data slices, models and RNG streams are
 * indexed as in one process; the workers are made with all S shards on
 * every rank (replicas are cheap: shared values, private gradients; a
 * shard never run on this rank touches none of its tape's arena).
 * At start-up: tg_dist_init, tg_dist_shards (S divisible by N),
 * tg_dist_attach(d, w) after tg_workers_new, then tg_dist_check_same on the
 * parameter values and on the configuration string. At exit:
 * tg_dist_finalize. On a fatal error in one rank only (a data file it
 * cannot read): tg_dist_abort, which prints "rank r: message" and ends the
 * whole job. */
#ifndef TG_DIST_H
#define TG_DIST_H

#include <stddef.h>

#include "tapegrad.h"

typedef struct tg_dist tg_dist;

/* 1 when the library was built with MPI, else 0. */
int tg_dist_available(void);

/* The number of ranks a launcher says this process is one of (Open MPI,
 * then PMI as MPICH and Slurm set it), before MPI starts; 1 when none. A
 * PMIx launcher may give only the rank (PMIX_RANK): a rank above 0 proves
 * there are more, so that is "at least 2" (*at_least set). */
long tg_dist_launcher_size(int *at_least);
/* 1 with MPI_COMM_WORLD's *rank and *size while MPI is running (between
 * its initialisation and its finalisation, whoever initialised it); 0
 * before, after, and in a build without MPI. MPI's own word, where the
 * launcher's variables may be stale: left in the environment of a process
 * that no launcher started (a shell that exported them, a child of a rank),
 * which an MPI start-up makes a world of one, rank 0. */
int tg_dist_world(int *rank, int *size);

/* Joins the job (MPI_Init_thread with MPI_THREAD_FUNNELED, unless MPI is
 * already initialised; then a private duplicate of MPI_COMM_WORLD with
 * MPI_ERRORS_ARE_FATAL). argc and argv may be NULL. Run without mpirun, or
 * without MPI in the build, it is a world of one rank; a build without MPI
 * started by mpirun as one of several ranks is refused (each would train
 * alone). NULL with the reason in err on failure. */
tg_dist *tg_dist_init(int *argc, char ***argv, char *err, size_t errlen);
/* Collective. Frees d and finalises MPI if tg_dist_init initialised it.
 * NULL is a no-op. */
void tg_dist_finalize(tg_dist *d);

int tg_dist_rank(const tg_dist *d); /* 0 .. size-1; rank 0 prints and writes */
int tg_dist_size(const tg_dist *d);

/* This rank's shards of `shards` per global batch: *first = rank*S/N,
 * *count = S/N. -1 with a message naming both numbers when the size does
 * not divide S (or S < 1). */
int tg_dist_shards(const tg_dist *d, int shards, int *first, int *count, char *err,
                   size_t errlen);

/* Prepares the reduction for workers w (made on master by tg_workers_new
 * with all S shards): sizes and buffers, once, so no step allocates.
 * -1 with the reason in err (size does not divide S, out of memory, a
 * gradient too large for MPI's int counts). Again for another w replaces
 * the previous one. */
int tg_dist_attach(tg_dist *d, tg_workers *w, char *err, size_t errlen);

/* Collective. One step's forward and backward over the global batch: runs
 * this rank's shards of w (fn gets the global shard index), then sets
 * master's gradient to the sum of every shard's as described on top (no
 * zeroing before, as with tg_workers_run). Returns the S shards' losses
 * summed in shard order from 0, the same bits on every rank and as
 * tg_workers_run's. w must be the attached workers. With one rank this is
 * tg_workers_run. */
double tg_dist_run(tg_dist *d, tg_workers *w, int threads, tg_shard_fn fn, void *ctx);

/* Collective. The reduction alone, after tg_workers_run_range over this
 * rank's shards: what tg_dist_run does after running them. */
double tg_dist_reduce(tg_dist *d, tg_workers *w);

/* Collective. 1 on every rank when flag is non-zero on any rank, else 0:
 * stop requests (a signal on one rank stops all at the same step),
 * non-finite verdicts, skip decisions. */
int tg_dist_any(tg_dist *d, int flag);
/* Collective. The largest of the ranks' values: several verdicts ranked by
 * precedence agreed in one reduction, where a tg_dist_any each took one. */
int tg_dist_max(tg_dist *d, int value);

/* Collective. values holds this rank's `count` per-shard numbers (its
 * shards in order; count is S/N); returns all S of them summed in shard
 * order from 0, the same bits on every rank as one process's loop
 * (evaluation losses and counts). */
double tg_dist_sum_shards(tg_dist *d, const double *values, int count);

/* Collective. The n bytes at `bytes` of global shard s (0 .. S-1 of the
 * attached workers) as the rank that runs it holds them, copied to every
 * other rank (a broadcast from the owner): state a shard carries from step
 * to step (TBPTT recurrent state, its dropout generator) lives only on its
 * owner, and a checkpoint that rank 0 writes, or a resume with another
 * number of ranks, needs all of it. Call it for every shard just before a
 * checkpoint is written; cheap next to a step, too slow for every step.
 * Aborts the job (tg_dist_abort) when no workers are attached or s is out
 * of range: the ranks would not agree which collective they are in. With
 * one rank, nothing to do. */
void tg_dist_share_shard(tg_dist *d, int s, void *bytes, size_t n);

/* Collective. Rank 0's n bytes at `bytes` copied to every other rank: what
 * only rank 0 computed (test-set scores: every rank holds the same model, so
 * one decode serves all). With one rank, nothing to do. */
void tg_dist_broadcast(tg_dist *d, void *bytes, size_t n);

/* Collective. 0 when every rank holds the same n bytes as rank 0 (parameter
 * values after initialisation, the configuration string); else -1 on every
 * rank with the same message in err naming `what`, the lowest rank that
 * differs and how (its length, or the first byte that differs). Compares
 * the bytes themselves, so no hash collision can hide a difference. */
int tg_dist_check_same(tg_dist *d, const void *bytes, size_t n, const char *what, char *err,
                       size_t errlen);

/* Prints "rank r: message" (just the message with one rank) on stderr and
 * ends the whole job with exit status code (MPI_Abort); never returns. For
 * an error only this rank sees (its data file cannot be read); errors every
 * rank sees may exit normally on every rank. */
#if defined(__GNUC__)
__attribute__((format(printf, 3, 4), noreturn))
#endif
void tg_dist_abort(tg_dist *d, int code, const char *fmt, ...);

/* Wall seconds this rank has spent in tg_dist_reduce (packing, MPI calls,
 * the shard-order sums), summed since tg_dist_init: communication time per
 * step for progress lines and SCALING.md. */
double tg_dist_comm_seconds(const tg_dist *d);

#endif
