/* The shards' shared store of parameter panels (graph/parallel.c): while
 * tg_workers_run runs, a weight is packed once for all shards. It must not
 * change a bit: the workers' gradient equals each shard run alone on its own
 * tape (its own panels) and added in shard order, on 1 and 2 threads; and
 * after the weights change between runs (as an optimizer changes them), the
 * next run multiplies by the new values, never by panels of the old ones;
 * nor does a shard's tape used after a run, before any reset. */
#include <criterion/criterion.h>
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "tapegrad.h"

/* W (OUT x IN) packs into 13 panels of 32 columns, the last of 16: enough
 * that two threads asking at once may split the packing (help_pack; when
 * they do is up to the scheduler), whose bits must not depend on who packed
 * which panel. */
enum { SHARDS = 3, ROWS = 6, IN = 40, OUT = 400 };

/* Shard s's inputs: two ROWS x IN matrices of fixed values. */
static void fill_inputs(tg_tensor *x, int s, int which)
{
    for (int i = 0; i < ROWS * IN; i++)
        x->data[i] = (tg_real)sin(0.37 * i + 1.3 * s + 0.71 * which);
}

/* loss = sum((X1 W^T) * (X2 W^T)), the first product not recorded: so it
 * runs on BLAS (a weight seen once with few rows, on a tape that does not
 * record, is not packed) and the second, recorded, on panels (packed at that
 * request, W's second), whatever the store holds; the first's bits reach the
 * gradient (dW = (X1 W^T)^T X2), and backward multiplies by W again
 * (dX2 = dY W). */
static double shard_loss(int s, tg_tape *t, tg_params *p, void *ctx)
{
    (void)ctx;
    tg_tensor *w = tg_params_find(p, "w");
    tg_tensor *x1 = tg_tensor_new(t, ROWS, IN, 1), *x2 = tg_tensor_new(t, ROWS, IN, 1);
    fill_inputs(x1, s, 0);
    fill_inputs(x2, s, 1);
    tg_tape_set_grad(t, 0);
    tg_tensor *y1 = tg_matmul(t, x1, w, 0, 1);
    tg_tape_set_grad(t, 1);
    tg_tensor *y2 = tg_matmul(t, x2, w, 0, 1);
    tg_tensor *loss = tg_sum(t, tg_mul(t, y1, y2));
    tg_backward(t, loss);
    return loss->data[0];
}

static tg_params *make_params(void)
{
    tg_params *p = tg_params_new();
    tg_tensor *w = tg_param(p, "w", OUT, IN);
    cr_assert_not_null(w);
    for (int i = 0; i < OUT * IN; i++) w->data[i] = (tg_real)cos(0.13 * i);
    return p;
}

/* Each shard alone on a fresh tape of its own (no store), added in shard
 * order into a zeroed gradient: what the workers must give. */
static void reference_grad(tg_params *p, tg_real *g)
{
    size_t n = tg_params_numel(p);
    memset(g, 0, n * sizeof *g);
    for (int s = 0; s < SHARDS; s++) {
        tg_params *r = tg_params_replica(p);
        cr_assert_not_null(r);
        tg_tape *t = tg_tape_new(1 << 20);
        tg_params_zero_grad(r);
        shard_loss(s, t, r, NULL);
        for (size_t i = 0; i < n; i++) g[i] += tg_params_grad(r)[i];
        tg_tape_free(t);
        tg_params_free(r);
    }
}

static void expect_grad(tg_params *p, const tg_real *want, const char *what)
{
    size_t n = tg_params_numel(p), differ = 0;
    const tg_real *g = tg_params_grad(p);
    for (size_t i = 0; i < n; i++) differ += memcmp(&g[i], &want[i], sizeof *want) != 0;
    cr_expect_eq(differ, 0, "%s: %zu of %zu gradient values differ from the shards run alone",
                 what, differ, n);
}

static void check_threads(int threads)
{
    tg_params *p = make_params();
    tg_workers *w = tg_workers_new(p, SHARDS, 1 << 20);
    cr_assert_not_null(w);
    size_t n = tg_params_numel(p);
    tg_real want[OUT * IN];
    cr_assert_eq(n, (size_t)OUT * IN);
    for (int run = 0; run < 3; run++) {
        reference_grad(p, want);
        tg_params_zero_grad(p);
        tg_workers_run(w, threads, shard_loss, NULL);
        char what[64];
        snprintf(what, sizeof what, "%d thread(s), run %d", threads, run);
        expect_grad(p, want, what);
        /* the optimizer's part: new values before the next run */
        tg_real *v = tg_params_data(p);
        for (size_t i = 0; i < n; i++)
            v[i] = v[i] * (tg_real)0.75 + (tg_real)0.01 * (tg_real)(i % 7);
    }
    tg_workers_free(w);
    tg_params_free(p);
}

Test(panel_store, one_thread_equals_shards_alone_across_weight_changes) { check_threads(1); }
Test(panel_store, two_threads_equal_shards_alone_across_weight_changes) { check_threads(2); }

/* A forward-only shard: W used twice, on panels (recorded: W has a
 * gradient), from the store while the run lasts; the tape is neither swept
 * nor reset. */
static double forward_only(int s, tg_tape *t, tg_params *p, void *ctx)
{
    (void)ctx;
    tg_tensor *w = tg_params_find(p, "w");
    tg_tensor *x = tg_tensor_new(t, ROWS, IN, 0);
    fill_inputs(x, s, 0);
    tg_matmul(t, x, w, 0, 1);
    return tg_matmul(t, x, w, 0, 1)->data[0];
}

/* After the run, new weights, and shard 0's tape multiplies again, not
 * reset: by the new values (its panels came from the store, emptied since). */
Test(panel_store, a_tape_used_after_the_run_sees_new_weights)
{
    tg_params *p = make_params();
    tg_workers *w = tg_workers_new(p, 2, 1 << 20);
    cr_assert_not_null(w);
    tg_workers_run(w, 1, forward_only, NULL);
    tg_workers_run_range(w, 1, 1, 1, forward_only, NULL); /* the store packs again for shard 1 */
    tg_real *v = tg_params_data(p);
    for (int i = 0; i < OUT * IN; i++) v[i] = (tg_real)sin(0.29 * i + 2.0);
    tg_tape *t = tg_workers_tape(w, 0);
    tg_tensor *x = tg_tensor_new(t, ROWS, IN, 0);
    fill_inputs(x, 0, 1);
    tg_tensor *y = tg_matmul(t, x, tg_params_find(tg_workers_params(w, 0), "w"), 0, 1);
    double worst = 0;
    for (int i = 0; i < ROWS; i++)
        for (int j = 0; j < OUT; j++) {
            double sum = 0;
            for (int q = 0; q < IN; q++) sum += (double)x->data[i * IN + q] * v[j * IN + q];
            worst = fmax(worst, fabs(sum - y->data[i * OUT + j]));
        }
    cr_expect(worst < 1e-4, "the product is off by %g: panels of the old weights?", worst);
    tg_workers_free(w);
    tg_params_free(p);
}
