/* Data-parallel training over a fixed number of shards of a minibatch.
 *
 * Each shard has its own tape (and arena) and its own parameter replica
 * (shared values, private gradients), so workers never write the same
 * memory. After every shard has run its forward and backward, the master
 * gradient is set to the shards' gradients added in shard order, element by
 * element, and its norm is summed block by block on the way (the blocks of
 * tg_sum_squares, so the end of a step need not read it again). The number
 * of shards, not the number of threads, fixes the arithmetic: 1 thread or
 * 16 give bitwise the same gradients and norm.
 *
 * While shards run, their tapes share one store of parameter panels
 * (tg_tape_share_panels): a weight is packed once a step, not once a shard.
 * The store is emptied before and after: between runs an optimizer changes
 * the values.
 *
 * Inside a shard, BLAS must not start its own threads (pools would nest):
 * call tg_blas_set_threads(1) before running workers with threads > 1. */
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <omp.h>

#include "tapegrad.h"
#include "tg_clones.h"
#include "tg_engine.h"
#include "tg_panels.h"

struct tg_workers {
    int shards;
    tg_params *master;
    tg_params **replica;
    tg_tape **tape;
    double *loss;
    unsigned char *grad_zero; /* replica s's gradient is all zeros (reduce_grads left it so) */
    double *block_sq;         /* reduce_grads: block b's sum of squares (tg_sum_squares) */
    double norm;              /* master's gradient norm as the last run set it, */
    int norm_known;           /* until taken or a run of a range came after */
    tg_panel_cache *panels;   /* the shards' parameter panels; NULL: each tape packs its own */
};

static size_t blocks(size_t n) { return (n + TG_SQ_BLOCK - 1) / TG_SQ_BLOCK; }

void tg_workers_free(tg_workers *w)
{
    if (!w) return;
    for (int s = 0; s < w->shards; s++) {
        if (w->replica) tg_params_free(w->replica[s]);
        if (w->tape) tg_tape_free(w->tape[s]);
    }
    free(w->replica);
    free(w->tape);
    free(w->loss);
    free(w->grad_zero);
    free(w->block_sq);
    tg_panel_cache_free(w->panels);
    free(w);
}

tg_workers *tg_workers_new(tg_params *master, int shards, size_t arena_bytes)
{
    if (shards < 1) return NULL;
    tg_workers *w = calloc(1, sizeof *w);
    if (!w) return NULL;
    w->shards = shards;
    w->master = master;
    w->replica = calloc((size_t)shards, sizeof *w->replica);
    w->tape = calloc((size_t)shards, sizeof *w->tape);
    w->loss = calloc((size_t)shards, sizeof *w->loss);
    w->grad_zero = calloc((size_t)shards, sizeof *w->grad_zero);
    w->block_sq = calloc(blocks(tg_params_numel(master)) + 1, sizeof *w->block_sq);
    w->panels = tg_panel_cache_new_shared(); /* NULL (no memory) only costs speed */
    if (!w->replica || !w->tape || !w->loss || !w->grad_zero || !w->block_sq) {
        tg_workers_free(w);
        return NULL;
    }
    for (int s = 0; s < shards; s++) {
        w->replica[s] = tg_params_replica(master);
        w->tape[s] = tg_tape_new(arena_bytes);
        if (!w->replica[s] || !w->tape[s]) {
            tg_workers_free(w);
            return NULL;
        }
    }
    return w;
}

int tg_workers_shards(const tg_workers *w) { return w->shards; }
tg_params *tg_workers_params(tg_workers *w, int shard) { return w->replica[shard]; }
tg_tape *tg_workers_tape(tg_workers *w, int shard) { return w->tape[shard]; }
tg_params *tg_workers_master(tg_workers *w) { return w->master; }

/* g = 0 + r (0 + r: the bits of adding to a zeroed gradient, -0 becoming
 * +0), or g += r: each element sums in shard order whatever the thread
 * count. */
TG_SIMD_CLONES static void set_from(tg_real *restrict g, const tg_real *restrict r, long n)
{
    for (long i = 0; i < n; i++) g[i] = (tg_real)0 + r[i];
}

TG_SIMD_CLONES static void add_into(tg_real *restrict g, const tg_real *restrict r, long n)
{
    for (long i = 0; i < n; i++) g[i] += r[i];
}

/* Blocks [b0, b1) of g get every shard's part, block by block so that the
 * block of g stays in L1 across the shards and for its sum of squares; each
 * replica's block is zeroed while it is there: run_shard need not zero it
 * again (a separate pass over every replica's gradient, 26 MB each at 6.5M
 * parameters). The same additions in the same order as one shard-major
 * pass. */
static void reduce_blocks(tg_workers *w, tg_real *g, long n, long b0, long b1)
{
    for (long b = b0; b < b1; b++) {
        long lo = b * TG_SQ_BLOCK, len = n - lo < TG_SQ_BLOCK ? n - lo : TG_SQ_BLOCK;
        for (int s = 0; s < w->shards; s++) {
            tg_real *r = tg_params_grad(w->replica[s]) + lo;
            (s ? add_into : set_from)(g + lo, r, len);
            memset(r, 0, (size_t)len * sizeof *r);
        }
        w->block_sq[b] = tg_sum_squares(g + lo, (size_t)len);
    }
}

static void reduce_grads(tg_workers *w, int threads)
{
    long n = (long)tg_params_numel(w->master), nb = (long)blocks((size_t)n);
    tg_real *g = tg_params_grad(w->master);
    if (threads > 1 && n > 65536) {
#pragma omp parallel num_threads(threads)
        {
            int id = omp_get_thread_num(), nth = omp_get_num_threads();
            reduce_blocks(w, g, n, nb * id / nth, nb * (id + 1) / nth);
        }
    } else {
        reduce_blocks(w, g, n, 0, nb);
    }
    double total = 0; /* tg_sum_squares's order: the blocks' sums from the first */
    for (long b = 0; b < nb; b++) total += w->block_sq[b];
    w->norm = sqrt(total);
    w->norm_known = 1;
    for (int s = 0; s < w->shards; s++) w->grad_zero[s] = 1;
}

static void run_shard(tg_workers *w, int s, tg_shard_fn fn, void *ctx)
{
    if (!w->grad_zero[s]) tg_params_zero_grad(w->replica[s]);
    w->grad_zero[s] = 0;
    tg_tape_reset(w->tape[s]);
    w->loss[s] = fn(s, w->tape[s], w->replica[s], ctx);
}

/* The shards' tapes share w's panel store (NULL: stop sharing); it is
 * emptied either way. */
static void share_panels(tg_workers *w, int first, int count, tg_panel_cache *store)
{
    tg_panel_cache_clear(w->panels);
    for (int s = first; s < first + count; s++) tg_tape_share_panels(w->tape[s], store);
}

/* Runs shards first .. first+count-1 (their gradients and losses stay in the
 * replicas; nothing is added into master). The shards' losses are added in
 * shard order starting from 0, as tg_workers_run adds them. */
static double run_range(tg_workers *w, int threads, int first, int count, tg_shard_fn fn,
                        void *ctx)
{
    share_panels(w, first, count, w->panels);
    if (threads > 1 && count > 1) {
#pragma omp parallel for schedule(static, 1) num_threads(threads)
        for (int s = first; s < first + count; s++) run_shard(w, s, fn, ctx);
    } else { /* no OpenMP region: even under if(0) it costs a team set-up */
        for (int s = first; s < first + count; s++) run_shard(w, s, fn, ctx);
    }
    share_panels(w, first, count, NULL);
    double total = 0;
    for (int s = first; s < first + count; s++) total += w->loss[s];
    return total;
}

double tg_workers_run(tg_workers *w, int threads, tg_shard_fn fn, void *ctx)
{
    double total = run_range(w, threads, 0, w->shards, fn, ctx);
    reduce_grads(w, threads);
    return total;
}

double tg_workers_run_range(tg_workers *w, int threads, int first, int count, tg_shard_fn fn,
                            void *ctx)
{
    if (first < 0 || count < 0 || first > w->shards - count) return NAN;
    w->norm_known = 0; /* master's gradient will be set elsewhere */
    return run_range(w, threads, first, count, fn, ctx);
}

double tg_workers_loss(const tg_workers *w, int shard) { return w->loss[shard]; }

int tg_workers_take_grad_norm(tg_workers *w, double *norm)
{
    if (!w->norm_known) return -1;
    w->norm_known = 0; /* once: a later step that does not run w must not get it */
    *norm = w->norm;
    return 0;
}
