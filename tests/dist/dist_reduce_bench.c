/* Time of tg_dist_reduce alone for a gradient of N scalars (SCALING.md):
 *     mpirun -np R dist_reduce_bench SCALARS SHARDS REPS
 * Each shard's gradient is filled once by a trivial shard function (no
 * tape work), then the reduction (pack, alltoallv, shard-order sum,
 * allgatherv, loss allgather) is timed REPS times after a barrier-like
 * tg_dist_any; rank 0 prints the mean and the minimum per call. */
#include <stdio.h>
#include <stdlib.h>

#include "tapegrad.h"
#include "tg_dist.h"

static double fill(int shard, tg_tape *t, tg_params *p, void *ctx)
{
    (void)t;
    (void)ctx;
    tg_real *g = tg_params_grad(p);
    size_t n = tg_params_numel(p);
    for (size_t i = 0; i < n; i++) g[i] = (tg_real)((double)((i * 7 + (size_t)shard) % 13) / 13);
    return 1.0;
}

int main(int argc, char **argv)
{
    char err[256];
    tg_dist *d = tg_dist_init(&argc, &argv, err, sizeof err);
    if (!d || argc != 4) {
        fprintf(stderr, "usage: dist_reduce_bench SCALARS SHARDS REPS%s%s\n", d ? "" : ": ",
                d ? "" : err);
        return 64;
    }
    int n = atoi(argv[1]), shards = atoi(argv[2]), reps = atoi(argv[3]), first, count;
    tg_params *p = tg_params_new();
    if (!p || n < 1 || reps < 1 || !tg_param(p, "g", 1, n)) tg_dist_abort(d, 64, "bad sizes");
    tg_workers *w = tg_workers_new(p, shards, 4096);
    if (!w || tg_dist_attach(d, w, err, sizeof err) != 0 ||
        tg_dist_shards(d, shards, &first, &count, err, sizeof err) != 0)
        tg_dist_abort(d, 64, "%s", w ? err : "out of memory");
    tg_workers_run_range(w, 1, first, count, fill, NULL);
    double best = 1e30, total = 0;
    for (int r = 0; r < reps; r++) {
        tg_dist_any(d, 0); /* start together */
        double before = tg_dist_comm_seconds(d);
        tg_params_zero_grad(p);
        tg_dist_reduce(d, w);
        double took = tg_dist_comm_seconds(d) - before;
        total += took;
        if (took < best) best = took;
    }
    if (tg_dist_rank(d) == 0)
        printf("ranks %d shards %d scalars %d (%.2f MB): reduce mean %.3f ms, min %.3f ms\n",
               tg_dist_size(d), shards, n, n * sizeof(tg_real) / 1e6, 1e3 * total / reps,
               1e3 * best);
    tg_workers_free(w);
    tg_params_free(p);
    tg_dist_finalize(d);
    return 0;
}
