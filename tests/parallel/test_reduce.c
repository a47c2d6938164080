/* The workers' reduction (graph/parallel.c): tg_workers_run sets the master
 * gradient to 0 + g_0 + g_1 + ... in shard order, whatever it held before
 * (the programs no longer zero it), and sums its norm on the way with the
 * bits of tg_grad_norm's own pass; on 1 and 2 threads, over a gradient of
 * more than one thread's share and not a whole number of blocks. The norm
 * is handed out once a run; a run of a range (the MPI path) sets nothing,
 * so the norm is then unknown. */
#include <criterion/criterion.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "tapegrad.h"
#include "tg_optim.h"

enum { SHARDS = 3, BIG_R = 310, BIG_C = 293, SMALL = 37 }; /* 90830 + 37 values */

/* magnitudes apart by stretches, so that a sum in another order than
 * tg_sum_squares's has other low bits */
static tg_real value(size_t i, int s)
{
    double scale = (i / 1500) % 3 == 0 ? 1e3 : (i / 1500) % 3 == 1 ? 1 : 1e-3;
    return (tg_real)(scale * sin(0.0137 * (double)i + 0.9 * s));
}

/* loss = sum(w * w * c_s) over both parameters: gradient 2 w c_s, a
 * different one per shard and per run (*ctx, the run). */
static double shard_loss(int s, tg_tape *t, tg_params *p, void *ctx)
{
    int run = *(const int *)ctx;
    tg_tensor *total = NULL;
    for (size_t k = 0; k < tg_params_count(p); k++) {
        tg_tensor *w = tg_params_at(p, k);
        tg_tensor *c = tg_tensor_new(t, w->rows, w->cols, 0);
        for (size_t i = 0; i < tg_numel(w); i++) c->data[i] = value(i + 7 * k, s + 3 * run);
        tg_tensor *part = tg_sum(t, tg_mul(t, tg_mul(t, w, w), c));
        total = total ? tg_add(t, total, part) : part;
    }
    tg_backward(t, total);
    return total->data[0];
}

static tg_params *make_params(void)
{
    tg_params *p = tg_params_new();
    tg_tensor *a = tg_param(p, "a", BIG_R, BIG_C), *b = tg_param(p, "b", 1, SMALL);
    cr_assert(a && b);
    tg_real *v = tg_params_data(p);
    for (size_t i = 0; i < tg_params_numel(p); i++) v[i] = (tg_real)cos(0.011 * (double)i);
    return p;
}

/* Each shard alone, its gradient added in shard order to a zeroed one. */
static void reference_grad(tg_params *p, int run, tg_real *g)
{
    size_t n = tg_params_numel(p);
    memset(g, 0, n * sizeof *g);
    tg_params *r = tg_params_replica(p);
    tg_tape *t = tg_tape_new(16 << 20);
    cr_assert(r && t);
    for (int s = 0; s < SHARDS; s++) {
        tg_params_zero_grad(r);
        tg_tape_reset(t);
        shard_loss(s, t, r, &run);
        for (size_t i = 0; i < n; i++) g[i] += tg_params_grad(r)[i];
    }
    tg_tape_free(t);
    tg_params_free(r);
}

static size_t differing(const tg_real *a, const tg_real *b, size_t n)
{
    size_t d = 0;
    for (size_t i = 0; i < n; i++) d += memcmp(&a[i], &b[i], sizeof *a) != 0;
    return d;
}

static void check_threads(int threads)
{
    tg_params *p = make_params();
    size_t n = tg_params_numel(p);
    cr_assert_gt(n, 65536, "the parallel reduction needs more values");
    cr_assert_neq(n % TG_SQ_BLOCK, 0);
    tg_real *want = malloc(n * sizeof *want);
    cr_assert_not_null(want);
    tg_workers *w = tg_workers_new(p, SHARDS, 16 << 20);
    cr_assert_not_null(w);
    double norm = 0;
    cr_expect_eq(tg_workers_take_grad_norm(w, &norm), -1, "a norm before any run");
    for (int run = 0; run < 3; run++) { /* other gradients each run */
        reference_grad(p, run, want);
        tg_real *g = tg_params_grad(p); /* what it held must not matter */
        for (size_t i = 0; i < n; i++) g[i] = run ? (tg_real)NAN : (tg_real)(1 + i % 5);
        if (run == 2) { /* a run of a range in between: no norm, then a full run has one */
            tg_workers_run(w, threads, shard_loss, &run);
            tg_workers_run_range(w, threads, 0, SHARDS, shard_loss, &run);
            cr_expect_eq(tg_workers_take_grad_norm(w, &norm), -1, "a norm after a range");
        }
        tg_workers_run(w, threads, shard_loss, &run);
        size_t d = differing(g, want, n);
        cr_expect_eq(d, 0, "%d thread(s), run %d: %zu of %zu values differ from the shards' sum",
                     threads, run, d, n);
        cr_assert_eq(tg_workers_take_grad_norm(w, &norm), 0);
        cr_expect_eq(tg_workers_take_grad_norm(w, &norm), -1, "a norm taken twice");
        double pass = tg_grad_norm(p);
        cr_expect_eq(memcmp(&norm, &pass, sizeof norm), 0,
                     "%d thread(s), run %d: summed norm %.17g, tg_grad_norm %.17g", threads, run,
                     norm, pass);
    }
    tg_workers_free(w);
    tg_params_free(p);
    free(want);
}

Test(reduce, sets_master_gradient_and_norm_on_one_thread) { check_threads(1); }
Test(reduce, sets_master_gradient_and_norm_on_two_threads) { check_threads(2); }

/* The blocked order is still a sum of squares: against long double, for
 * sizes around the lanes and the block. */
Test(reduce, sum_of_squares_is_accurate)
{
    static tg_real x[3 * TG_SQ_BLOCK + 5];
    for (size_t i = 0; i < sizeof x / sizeof *x; i++) x[i] = (tg_real)(sin(0.3 * (double)i) * 3);
    size_t sizes[] = {0, 1, 15, 16, 17, TG_SQ_BLOCK - 1, TG_SQ_BLOCK, TG_SQ_BLOCK + 1,
                      sizeof x / sizeof *x};
    for (size_t k = 0; k < sizeof sizes / sizeof *sizes; k++) {
        long double ref = 0;
        for (size_t i = 0; i < sizes[k]; i++) ref += (long double)x[i] * x[i];
        double got = tg_sum_squares(x, sizes[k]);
        cr_expect(fabsl((long double)got - ref) <= 1e-14L * (ref + 1e-300L),
                  "n = %zu: %.17g against %.17Lg", sizes[k], got, ref);
    }
}
