/* examples/common/trainrun's step-arena probe: a step's measured size, and
 * a step larger than any arena the probe can make, which is now an answer
 * (TGX_ARENA_TOO_BIG, and tgx_arena_problem's message) where it was the
 * engine's overflow abort, flags asking for more than the machine holds
 * crashing the program. */
#include <criterion/criterion.h>
#include <stdint.h>
#include <string.h>

#include "trainrun.h"

TestSuite(arena_measure, .timeout = 60);

/* A small recorded step with its backward, then `extra` bytes more. */
typedef struct probe_ctx {
    tg_tensor *w;
    size_t extra;
    int ran_to_end;
} probe_ctx;

static void probe(void *ctx, tg_tape *t)
{
    probe_ctx *p = ctx;
    tg_tensor *x = tg_tensor_new(t, 4, 3, 0);
    tg_backward(t, tg_sum(t, tg_tanh(t, tg_matmul(t, x, p->w, 0, 0))));
    for (size_t left = p->extra; left > 0;) { /* bumped, never touched */
        size_t n = left < ((size_t)1 << 28) ? left : (size_t)1 << 28;
        tg_tape_alloc(t, n);
        left -= n;
    }
    p->ran_to_end = 1;
}

Test(arena_measure, a_step_that_fits_is_measured)
{
    probe_ctx p = {tg_tensor_alloc(3, 2, 1), (size_t)1 << 20, 0};
    size_t bytes = tgx_arena_measure(probe, &p);
    cr_assert(p.ran_to_end);
    cr_assert_geq(bytes, ((size_t)1 << 20) + ((size_t)1 << 17) + ((size_t)1 << 20),
                  "high water + 1/8 + 1 MiB: %zu", bytes);
    cr_assert_lt(bytes, (size_t)3 << 20, "%zu", bytes);
    char err[256] = "";
    cr_assert_eq(tgx_arena_problem(bytes, "--x", err, sizeof err), 0);
    cr_assert_str_empty(err);
    tg_tensor_free(p.w);
}

/* Larger than the probe's room (at most 8 GiB): cut short in the middle of
 * the step, no abort, and the message names the flags to lower. */
Test(arena_measure, a_step_larger_than_the_room_is_an_answer)
{
    probe_ctx p = {tg_tensor_alloc(3, 2, 1), (size_t)16 << 30, 0};
    size_t bytes = tgx_arena_measure(probe, &p);
    cr_assert_eq(bytes, TGX_ARENA_TOO_BIG);
    cr_assert_eq(p.ran_to_end, 0);
    char err[256];
    cr_assert_eq(tgx_arena_problem(bytes, "--hidden or --batch", err, sizeof err), 1);
    cr_assert(strstr(err, "one step of this configuration needs more than ") == err, "%s", err);
    cr_assert(strstr(err, "of step memory") && strstr(err, ": lower --hidden or --batch"), "%s",
              err);
    cr_assert_eq(tgx_arena_problem(0, "--hidden", err, sizeof err), 1);
    cr_assert(strstr(err, "out of memory") && strstr(err, "lower --hidden"), "%s", err);
    /* the probe left nothing behind: the next measurement is whole */
    p.extra = 0;
    p.ran_to_end = 0;
    cr_assert_lt(tgx_arena_measure(probe, &p), (size_t)2 << 20);
    cr_assert(p.ran_to_end);
    tg_tensor_free(p.w);
}

/* The probe's ids: one short of as many distinct ones as the batch or the
 * vocabulary allows, every one in first .. vocab-1. */
Test(arena_measure, probe_ids_are_as_distinct_as_a_batch_can_be_but_one)
{
    struct { size_t n; int first, vocab, distinct; } cases[] = {
        {100, 0, 1000, 99}, /* a batch shorter than the vocabulary: n - 1 */
        {100, 1, 30, 28},   /* a vocabulary smaller than the batch: all but one of its ids */
        {1, 0, 50, 1},      {7, 1, 2, 1}, /* at least one */
    };
    int ids[100];
    for (size_t c = 0; c < sizeof cases / sizeof cases[0]; c++) {
        tgx_probe_ids(ids, cases[c].n, cases[c].first, cases[c].vocab);
        char seen[1000] = {0};
        int distinct = 0;
        for (size_t k = 0; k < cases[c].n; k++) {
            cr_assert(ids[k] >= cases[c].first && ids[k] < cases[c].vocab, "case %zu: id %d", c,
                      ids[k]);
            distinct += !seen[ids[k]];
            seen[ids[k]] = 1;
        }
        cr_assert_eq(distinct, cases[c].distinct, "case %zu", c);
    }
}
