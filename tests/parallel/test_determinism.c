/* Data-parallel training does not depend on the thread count.
 *
 * The benchmark's model (examples/bench/bench_model.c) is trained for 20 SGD
 * steps with its minibatch split into a fixed number of shards, once on 1
 * thread and once on 2: the parameters must be bitwise equal. And the
 * gradient the workers add up (shard by shard, each scaled by its share of
 * the batch) must be the gradient of the whole batch on a single tape, up to
 * rounding. */
#include <criterion/criterion.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#ifdef _OPENMP
#include <omp.h>
#endif

#include "bench_model.h"
#include "tg_optim.h"

#define STEPS 20

/* Tiny models so a suite runs in a fraction of a second; shard rows are
 * uneven (7 rows over 2..4 shards) on purpose. */
static bench_config small_char(const char *cell, int shards, int fold_embed)
{
    bench_config c;
    memset(&c, 0, sizeof c);
    c.task = BENCH_CHAR;
    c.cell = tg_cell_kind_by_name(cell);
    c.vocab = 11;
    c.embed = 6;
    c.hidden = 8;
    c.layers = 2;
    c.seq = 5;
    c.batch = 7;
    c.shards = shards;
    c.seed = 5;
    c.fold_embed = fold_embed;
    return c;
}

static bench_config small_seq2seq(int shards)
{
    bench_config c = small_char("lstm", shards, 1);
    c.task = BENCH_SEQ2SEQ;
    c.src_vocab = 9;
    c.tgt_vocab = 13;
    c.src_len = 4;
    c.tgt_len = 3;
    return c;
}

/* Config g's model in small: the seq2seq program's attention decoder
 * (Luong general, input feeding). */
static bench_config small_attn_seq2seq(int shards)
{
    bench_config c = small_seq2seq(shards);
    c.attention = TG_ATTN_GENERAL;
    return c;
}

static double rel_moved(const tg_real *a, const tg_real *b, size_t n)
{
    double d = 0;
    for (size_t i = 0; i < n; i++) d = fmax(d, fabs((double)a[i] - (double)b[i]));
    return d;
}

/* Trains STEPS steps on `threads` threads; returns a heap copy of the weights. */
static tg_real *train(const bench_config *c, int threads, size_t *numel)
{
    bench_model m;
    cr_assert_eq(bench_model_init(&m, c), 0);
    tg_optim_config oc = tg_optim_defaults(TG_OPTIM_SGD);
    oc.lr = 0.5;
    char err[128];
    tg_optim *opt = tg_optim_new(&oc, tg_params_numel(m.params), err, sizeof err);
    cr_assert_not_null(opt, "%s", err);
    size_t n = tg_params_numel(m.params);
    tg_real *w0 = malloc(n * sizeof *w0);
    cr_assert_not_null(w0);
    memcpy(w0, tg_params_data(m.params), n * sizeof *w0);
    double loss = 0;
    for (int s = 0; s < STEPS; s++) {
        loss = bench_forward_backward(&m, threads);
        tg_optim_step(opt, m.params);
    }
    /* it trained: the loss is finite and the weights moved */
    cr_assert(isfinite(loss), "loss %g", loss);
    cr_assert(rel_moved(w0, tg_params_data(m.params), n) > 1e-3, "weights did not move");
    free(w0);
    *numel = n;
    tg_real *w = malloc(*numel * sizeof *w);
    cr_assert_not_null(w);
    memcpy(w, tg_params_data(m.params), *numel * sizeof *w);
    tg_optim_free(opt);
    bench_model_free(&m);
    return w;
}

static void expect_same_weights(const bench_config *c, const char *what)
{
    size_t n1, n2;
    tg_real *w1 = train(c, 1, &n1), *w2 = train(c, 2, &n2);
    cr_assert_eq(n1, n2);
    size_t differ = 0, first = n1;
    for (size_t i = 0; i < n1; i++)
        if (memcmp(&w1[i], &w2[i], sizeof w1[i]) != 0) {
            differ++;
            if (first == n1) first = i;
        }
    cr_assert_eq(differ, 0,
                 "%s: %zu of %zu weights differ between 1 and 2 threads (first #%zu: "
                 "%.9g vs %.9g)",
                 what, differ, n1, first, (double)w1[first], (double)w2[first]);
    free(w1);
    free(w2);
}

Test(determinism, lstm_folded_4_shards_1_vs_2_threads)
{
    bench_config c = small_char("lstm", 4, 1);
    expect_same_weights(&c, "lstm folded, 4 shards");
}

Test(determinism, gru_library_cells_3_shards_1_vs_2_threads)
{
    bench_config c = small_char("gru", 3, 0);
    expect_same_weights(&c, "gru library cells, 3 shards");
}

Test(determinism, rnn_2_shards_1_vs_2_threads)
{
    bench_config c = small_char("rnn", 2, 1);
    expect_same_weights(&c, "rnn, 2 shards");
}

Test(determinism, seq2seq_2_shards_1_vs_2_threads)
{
    bench_config c = small_seq2seq(2);
    expect_same_weights(&c, "seq2seq, 2 shards");
}

Test(determinism, attn_seq2seq_3_shards_1_vs_2_threads)
{
    bench_config c = small_attn_seq2seq(3);
    expect_same_weights(&c, "attention seq2seq, 3 shards");
}

/* The same-weights tests would pass vacuously if the workers never left
 * thread 0: show that 2 threads really share the shards. */
typedef struct seen {
    bench_model *m;
    int thread_of[4];
} seen;

static double record_thread(int shard, tg_tape *t, tg_params *params, void *ctx)
{
    seen *s = ctx;
    (void)params;
#ifdef _OPENMP
    s->thread_of[shard] = omp_get_thread_num();
#endif
    tg_tensor *loss = bench_shard_loss(s->m, &s->m->nets[shard], &s->m->data[shard], 0, t);
    tg_backward(t, loss);
    return loss->data[0];
}

Test(determinism, two_threads_run_shards_concurrently)
{
#ifndef _OPENMP
    cr_skip_test("built without OpenMP");
#else
    bench_config c = small_char("lstm", 4, 1);
    bench_model m;
    cr_assert_eq(bench_model_init(&m, &c), 0);
    seen s = {&m, {-1, -1, -1, -1}};
    tg_workers_run(m.workers, 2, record_thread, &s);
    int on1 = 0;
    for (int k = 0; k < 4; k++) on1 += s.thread_of[k] == 1;
    cr_assert(on1 > 0, "no shard ran on thread 1 (threads: %d %d %d %d)", s.thread_of[0],
              s.thread_of[1], s.thread_of[2], s.thread_of[3]);
    bench_model_free(&m);
#endif
}

/* ------------------------------------------------------------ gradients */

#ifdef TG_REAL_DOUBLE
#define GRAD_TOL 1e-12
#else
#define GRAD_TOL 2e-5
#endif

/* Master gradient after the workers vs tg_backward of the whole batch. */
static void expect_whole_batch_gradient(const bench_config *c, const char *what)
{
    bench_model m;
    cr_assert_eq(bench_model_init(&m, c), 0);
    size_t n = tg_params_numel(m.params);
    double loss_w = bench_forward_backward(&m, 2); /* pool entry 0 */
    tg_real *gw = malloc(n * sizeof *gw);
    cr_assert_not_null(gw);
    memcpy(gw, tg_params_grad(m.params), n * sizeof *gw);

    tg_params_zero_grad(m.params);
    tg_tape *t = tg_tape_new(bench_arena_bytes(c) * 2);
    cr_assert_not_null(t);
    tg_tensor *loss = bench_whole_batch_loss(&m, t, 0);
    tg_backward(t, loss);
    const tg_real *g1 = tg_params_grad(m.params);
    cr_assert(fabs(loss_w - loss->data[0]) <= GRAD_TOL * (1 + fabs(loss->data[0])),
              "%s: loss %.9g over shards, %.9g on one tape", what, loss_w, (double)loss->data[0]);
    double gmax = 0, worst = 0;
    size_t at = 0;
    for (size_t i = 0; i < n; i++) gmax = fmax(gmax, fabs((double)g1[i]));
    cr_assert(gmax > 0, "%s: zero gradient", what);
    for (size_t i = 0; i < n; i++) {
        double d = fabs((double)gw[i] - (double)g1[i]);
        if (d > worst) worst = d, at = i;
    }
    cr_assert(worst <= GRAD_TOL * gmax,
              "%s: gradient #%zu is %.9g over shards, %.9g on one tape "
              "(max |g| %.3g)",
              what, at, (double)gw[at], (double)g1[at], gmax);
    tg_tape_free(t);
    free(gw);
    bench_model_free(&m);
}

Test(gradient, lstm_folded_3_shards_equal_whole_batch)
{
    bench_config c = small_char("lstm", 3, 1);
    expect_whole_batch_gradient(&c, "lstm folded, 3 shards");
}

Test(gradient, lstm_library_cells_2_shards_equal_whole_batch)
{
    bench_config c = small_char("lstm", 2, 0);
    expect_whole_batch_gradient(&c, "lstm library cells, 2 shards");
}

Test(gradient, gru_folded_4_shards_equal_whole_batch)
{
    bench_config c = small_char("gru", 4, 1);
    expect_whole_batch_gradient(&c, "gru folded, 4 shards");
}

Test(gradient, seq2seq_3_shards_equal_whole_batch)
{
    bench_config c = small_seq2seq(3);
    expect_whole_batch_gradient(&c, "seq2seq, 3 shards");
}

Test(gradient, attn_seq2seq_2_shards_equal_whole_batch)
{
    bench_config c = small_attn_seq2seq(2);
    expect_whole_batch_gradient(&c, "attention seq2seq, 2 shards");
}
