/* The tape and its step arena: bump allocation, O(1) reset that reuses the
 * same memory, the high-water mark, no-grad mode, zero-filled tensors over
 * reused memory, and how gradients accumulate across backward calls. */
#include <criterion/criterion.h>
#include <math.h>
#include <setjmp.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "tapegrad.h"

static double now_seconds(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

/* A small recorded step: y = sum(tanh(x W)) with W a leaf that needs grad. */
static tg_tensor *small_step(tg_tape *t, tg_tensor *w)
{
    tg_tensor *x = tg_tensor_new(t, 4, 3, 0);
    for (size_t i = 0; i < tg_numel(x); i++) x->data[i] = (tg_real)(0.1 * (double)i - 0.5);
    return tg_sum(t, tg_tanh(t, tg_matmul(t, x, w, 0, 0)));
}

static tg_tensor *weights(void)
{
    tg_tensor *w = tg_tensor_alloc(3, 2, 1);
    cr_assert_not_null(w);
    for (size_t i = 0; i < tg_numel(w); i++) w->data[i] = (tg_real)(0.3 * (double)i - 0.7);
    return w;
}

Test(arena, allocations_are_aligned_and_counted)
{
    tg_tape *t = tg_tape_new(4096);
    cr_assert_not_null(t);
    cr_assert_eq(tg_tape_arena_capacity(t), 4096);
    cr_assert_eq(tg_tape_arena_used(t), 0);
    unsigned char *a = tg_tape_alloc(t, 1), *b = tg_tape_alloc(t, 100);
    cr_assert_eq((uintptr_t)a % 64, 0);
    cr_assert_eq((uintptr_t)b % 64, 0);
    cr_assert_eq(b - a, 64, "1 byte takes one 64-byte slot");
    cr_assert_eq(tg_tape_arena_used(t), 64 + 128);
    tg_tape_free(t);
}

Test(arena, reset_rewinds_and_reuses_the_same_memory)
{
    tg_tape *t = tg_tape_new((size_t)1 << 16);
    tg_tensor *w = weights();
    void *first = tg_tape_alloc(t, 8);
    tg_backward(t, small_step(t, w));
    cr_assert_gt(tg_tape_arena_used(t), 0);
    cr_assert_gt(tg_tape_node_count(t), 0);
    tg_tape_reset(t);
    cr_assert_eq(tg_tape_arena_used(t), 0);
    cr_assert_eq(tg_tape_node_count(t), 0);
    cr_assert_eq(tg_tape_alloc(t, 8), first, "after a reset the arena starts over at its base");
    tg_tensor_free(w);
    tg_tape_free(t);
}

/* O(1): rewinding a full 64 MiB arena must not touch it. Fifty resets of a
 * full arena take microseconds; clearing it each time would take >0.3 s. */
Test(arena, reset_is_constant_time)
{
    const size_t cap = (size_t)64 << 20;
    tg_tape *t = tg_tape_new(cap);
    cr_assert_not_null(t);
    double spent = 0;
    for (int i = 0; i < 50; i++) {
        tg_tape_alloc(t, cap - 64); /* bump to full without touching the memory */
        cr_assert_eq(tg_tape_arena_used(t), cap - 64);
        double t0 = now_seconds();
        tg_tape_reset(t);
        spent += now_seconds() - t0;
        cr_assert_eq(tg_tape_arena_used(t), 0);
    }
    cr_assert_lt(spent, 0.1, "50 resets of a 64 MiB arena took %.3f s", spent);
    tg_tape_free(t);
}

Test(arena, high_water_mark_survives_resets)
{
    tg_tape *t = tg_tape_new((size_t)1 << 20);
    tg_tape_alloc(t, 10000);
    size_t big = tg_tape_arena_used(t);
    tg_tape_reset(t);
    tg_tape_alloc(t, 100);
    cr_assert_eq(tg_tape_arena_used(t), 128);
    cr_assert_eq(tg_tape_arena_high_water(t), big);
    tg_tape_reset(t);
    tg_tape_alloc(t, 20000);
    cr_assert_eq(tg_tape_arena_high_water(t), tg_tape_arena_used(t));
    cr_assert_gt(tg_tape_arena_high_water(t), big);
    tg_tape_free(t);
}

/* Reused arena memory is dirty: new tensors must still start at zero. */
Test(arena, new_tensors_are_zeroed_over_reused_memory)
{
    tg_tape *t = tg_tape_new(4096);
    memset(tg_tape_alloc(t, 4000), 0xAB, 4000);
    tg_tape_reset(t);
    tg_tensor *x = tg_tensor_new(t, 5, 7, 1);
    for (size_t i = 0; i < tg_numel(x); i++) {
        cr_assert_eq(x->data[i], 0);
        cr_assert_eq(x->grad[i], 0);
    }
    cr_assert(x->flags & TG_F_LEAF);
    tg_tensor *c = tg_tensor_new(t, 2, 2, 0);
    cr_assert_null(c->grad);
    const tg_real src[4] = {1, 2, 3, 4};
    tg_tensor *f = tg_tensor_from(t, 2, 2, src);
    cr_assert(memcmp(f->data, src, sizeof src) == 0);
    cr_assert_neq(f->data, src, "tensor_from copies");
    cr_assert_null(f->grad);
    tg_tape_free(t);
}

Test(arena, no_grad_mode_records_no_nodes_and_makes_no_grads)
{
    tg_tape *t = tg_tape_new((size_t)1 << 16);
    tg_tensor *w = weights();
    cr_assert(tg_tape_grad_enabled(t));
    tg_tape_set_grad(t, 0);
    cr_assert(!tg_tape_grad_enabled(t));
    tg_tensor *y = small_step(t, w);
    cr_assert_null(y->grad);
    cr_assert_eq(tg_tape_node_count(t), 0);
    tg_tape_set_grad(t, 1);
    tg_tape_reset(t);
    y = small_step(t, w);
    cr_assert_not_null(y->grad);
    cr_assert_eq(tg_tape_node_count(t), 3, "matmul, tanh, sum");
    tg_tensor_free(w);
    tg_tape_free(t);
}

/* Leaf gradients accumulate over backward calls (the caller zeroes them);
 * intermediate ones are zeroed by backward, so a second backward on the same
 * recording adds exactly the same amount again. */
Test(arena, leaf_grads_accumulate_across_backward_calls)
{
    tg_tape *t = tg_tape_new((size_t)1 << 16);
    tg_tensor *w = weights();
    tg_tensor *y = small_step(t, w);
    tg_backward(t, y);
    tg_real once[6];
    memcpy(once, w->grad, sizeof once);
    tg_backward(t, y);
    /* the GEMM may add term by term into the filled gradient: rounding only */
    const double tol = sizeof(tg_real) == sizeof(double) ? 1e-14 : 1e-6;
    for (int i = 0; i < 6; i++)
        cr_assert(fabs((double)w->grad[i] - 2.0 * (double)once[i]) <= tol * fabs(2.0 * (double)once[i]),
                  "element %d: %.9g after two backwards, %.9g after one", i, (double)w->grad[i],
                  (double)once[i]);
    tg_tensor_free(w);
    tg_tape_free(t);
}

/* Ops recorded after the loss (a perplexity for the log, say) cannot change
 * its gradient, and backward must not replay them: exp(1000 * loss)
 * overflows, and its VJP would add 0 * inf = NaN into the loss's gradient. */
Test(arena, backward_ignores_nodes_recorded_after_the_loss)
{
    tg_tape *t = tg_tape_new((size_t)1 << 16);
    tg_tensor *w = weights();
    tg_tensor *loss = small_step(t, w);
    tg_backward(t, loss);
    tg_real clean[6];
    memcpy(clean, w->grad, sizeof clean);
    memset(w->grad, 0, sizeof clean);
    tg_tensor *ppl = tg_exp(t, tg_scale(t, loss, 1000.0));
    cr_assert(isinf((double)ppl->data[0]), "the example needs exp to overflow");
    tg_backward(t, loss);
    for (int i = 0; i < 6; i++)
        cr_assert_eq(w->grad[i], clean[i], "element %d: %g, %g without the later nodes", i,
                     (double)w->grad[i], (double)clean[i]);
    tg_tensor_free(w);
    tg_tape_free(t);
}

Test(arena, threads_setting_is_per_tape)
{
    tg_tape *a = tg_tape_new(1024), *b = tg_tape_new(1024);
    cr_assert_eq(tg_tape_threads(a), 1);
    tg_tape_set_threads(a, 3);
    tg_tape_set_threads(b, 0);
    cr_assert_eq(tg_tape_threads(a), 3);
    cr_assert_eq(tg_tape_threads(b), 1, "fewer than one thread means one");
    tg_tape_free(a);
    tg_tape_free(b);
}

/* Results do not depend on the number of threads: every op over inputs big
 * enough to go parallel gives the same bits on 1 and 3 threads. */
static void run_big(int threads, tg_tensor *a, tg_tensor *b, tg_real *out)
{
    tg_tape *t = tg_tape_new((size_t)64 << 20);
    tg_tape_set_threads(t, threads);
    memset(a->grad, 0, tg_numel(a) * sizeof(tg_real));
    memset(b->grad, 0, tg_numel(b) * sizeof(tg_real));
    tg_tensor *m = tg_matmul(t, a, b, 0, 1); /* 256 x 256 */
    tg_tensor *e = tg_add(t, tg_mul(t, tg_tanh(t, m), tg_sigmoid(t, m)), tg_exp(t, tg_scale(t, m, 0.01)));
    tg_tensor *r = tg_relu(t, tg_sub(t, e, tg_one_minus(t, tg_log(t, tg_exp(t, m)))));
    const int targets[4] = {1, 2, 3, 4};
    tg_tensor *loss = tg_add(t, tg_mean(t, r), tg_softmax_xent(t, tg_row_slice(t, r, 0, 4), targets, -1));
    tg_backward(t, loss);
    out[0] = loss->data[0];
    memcpy(out + 1, a->grad, tg_numel(a) * sizeof(tg_real));
    tg_tape_free(t);
}

Test(arena, results_do_not_depend_on_thread_count)
{
    const int n = 256, k = 64;
    tg_tensor *a = tg_tensor_alloc(n, k, 1), *b = tg_tensor_alloc(n, k, 1);
    tg_rng r;
    tg_rng_seed(&r, 3);
    for (size_t i = 0; i < tg_numel(a); i++) a->data[i] = (tg_real)(0.2 * tg_rng_normal(&r));
    for (size_t i = 0; i < tg_numel(b); i++) b->data[i] = (tg_real)(0.2 * tg_rng_normal(&r));
    size_t len = 1 + tg_numel(a);
    tg_real *one = malloc(len * sizeof *one), *three = malloc(len * sizeof *three);
    run_big(1, a, b, one);
    run_big(3, a, b, three);
    cr_assert(memcmp(one, three, len * sizeof *one) == 0, "1 and 3 threads differ");
    free(one);
    free(three);
    tg_tensor_free(a);
    tg_tensor_free(b);
}

/* tg_tape_on_overflow: the hook runs before the overflow error with the
 * bytes needed (a caller measuring a step leaves through it); NULL puts
 * the plain error back. A size whose rounding up would wrap around is no
 * tape at all (it was a tape of 0 bytes). */
typedef struct overflow_seen {
    jmp_buf back;
    size_t need;
} overflow_seen;

static void on_overflow(void *ctx, size_t need)
{
    overflow_seen *s = ctx;
    s->need = need;
    longjmp(s->back, 1);
}

Test(arena, overflow_hook_runs_before_the_error)
{
    tg_tape *t = tg_tape_new(4096);
    overflow_seen seen = {.need = 0};
    tg_tape_on_overflow(t, on_overflow, &seen);
    tg_tape_alloc(t, 1000);
    if (setjmp(seen.back) == 0) {
        tg_tape_alloc(t, 5000);
        cr_assert_fail("the hook did not run");
    }
    cr_assert_eq(seen.need, 5056, "the aligned size asked for");
    cr_assert_eq(tg_tape_arena_used(t), 1024, "the failed allocation took nothing");
    tg_tape_on_overflow(t, NULL, NULL);
    tg_tape_free(t);
    cr_assert_null(tg_tape_new(SIZE_MAX));
    cr_assert_null(tg_tape_new(SIZE_MAX - 10));
}
