/* rowseq training: a small IDX slice written here trains (loss falls for
 * every cell), shard results do not depend on the thread count, shard
 * gradients add up to the full-batch gradient, and evaluation records no
 * tape and touches no parameter. */
#include <criterion/criterion.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "idx.h"
#include "idx_files.h"
#include "rowseq_model.h"

static char dir[4096];
static idx_images im;
static idx_labels lb;
static rowseq_data data;

/* Writes a 256-image toy slice as gzip IDX and reads it back with the reader
 * the program uses. */
static void setup(void)
{
    char ip[4300], lp[4300], msg[8192];
    tmpdir_make(dir, sizeof dir);
    write_toy_split(dir, "train", 256, 3);
    snprintf(ip, sizeof ip, "%s/train-images-idx3-ubyte.gz", dir);
    snprintf(lp, sizeof lp, "%s/train-labels-idx1-ubyte.gz", dir);
    cr_assert_eq(idx_read_images(ip, &im, msg, sizeof msg), IDX_OK, "%s", msg);
    cr_assert_eq(idx_read_labels(lp, 10, &lb, msg, sizeof msg), IDX_OK, "%s", msg);
    cr_assert_eq(idx_check_pair(ip, &im, lp, &lb, msg, sizeof msg), IDX_OK, "%s", msg);
    data = (rowseq_data){(int)im.count, (int)im.rows, (int)im.cols, im.pixels, lb.labels};
}

static void teardown(void)
{
    idx_images_free(&im);
    idx_labels_free(&lb);
    tmpdir_remove(dir);
}

TestSuite(rowseq_train, .init = setup, .fini = teardown, .timeout = 60);

static rowseq_trainer_config small_config(const char *cell, tg_optim_kind opt, double lr)
{
    rowseq_trainer_config c = {0};
    c.kind = tg_cell_kind_by_name(cell);
    cr_assert_not_null(c.kind);
    c.steps = 28;
    c.in = 28;
    c.hidden = 24;
    c.layers = 1;
    c.classes = 10;
    c.optim = tg_optim_defaults(opt);
    c.optim.lr = lr;
    c.clip = 5;
    c.batch = 32;
    c.eval_batch = 100;
    c.shards = 2;
    c.threads = 1;
    c.seed = 7;
    return c;
}

static void make(rowseq_trainer *tr, const rowseq_trainer_config *c)
{
    char err[512];
    cr_assert_eq(rowseq_trainer_init(tr, c, err, sizeof err), 0, "%s", err);
}

/* Trains `steps` batches in shuffled order; returns first and last-5 mean. */
static void train_steps(rowseq_trainer *tr, int steps, double *first, double *last5)
{
    uint32_t order[256];
    *last5 = 0;
    for (int s = 0; s < steps; s++) {
        int start = (s * 32) % 256;
        if (start == 0) rowseq_shuffle(tr, order, 256);
        double loss = rowseq_train_step(tr, &data, order + start, 32, NULL);
        cr_assert(isfinite(loss), "step %d: loss %g", s, loss);
        if (s == 0) *first = loss;
        if (s >= steps - 5) *last5 += loss / 5;
    }
}

static void expect_loss_falls(const char *cell, tg_optim_kind opt, double lr, int steps)
{
    rowseq_trainer_config c = small_config(cell, opt, lr);
    rowseq_trainer tr;
    make(&tr, &c);
    double first = 0, last = 0;
    train_steps(&tr, steps, &first, &last);
    cr_expect(first > 2.0 && first < 2.7, "%s: first loss %g should be near ln 10", cell, first);
    cr_expect(last < 0.6 * first, "%s: loss %g -> %g did not fall by 40%%", cell, first, last);
    rowseq_trainer_free(&tr);
}

Test(rowseq_train, lstm_adam_loss_falls) { expect_loss_falls("lstm", TG_OPTIM_ADAM, 0.01, 40); }
Test(rowseq_train, gru_adam_loss_falls) { expect_loss_falls("gru", TG_OPTIM_ADAM, 0.01, 40); }
Test(rowseq_train, mgu_adam_loss_falls) { expect_loss_falls("mgu", TG_OPTIM_ADAM, 0.01, 40); }
/* the seed's recipe: tanh RNN, plain SGD */
Test(rowseq_train, rnn_sgd_loss_falls) { expect_loss_falls("rnn", TG_OPTIM_SGD, 0.1, 60); }

Test(rowseq_train, threads_do_not_change_results)
{
    rowseq_trainer a, b;
    rowseq_trainer_config c = small_config("lstm", TG_OPTIM_ADAM, 0.01);
    make(&a, &c);
    c.threads = 2;
    make(&b, &c);
    double fa, la, fb, lb5;
    train_steps(&a, 4, &fa, &la);
    train_steps(&b, 4, &fb, &lb5);
    cr_expect_eq(fa, fb);
    cr_expect_eq(la, lb5);
    size_t n = tg_params_numel(a.params);
    cr_expect_eq(memcmp(tg_params_data(a.params), tg_params_data(b.params), n * sizeof(tg_real)),
                 0, "parameters differ between 1 and 2 threads");
    rowseq_trainer_free(&a);
    rowseq_trainer_free(&b);
}

Test(rowseq_train, shard_gradients_add_up_to_the_batch_gradient)
{
    /* Same init, 1 shard vs 3 uneven shards (32 rows = 10 + 11 + 11): the
     * summed, n/B-scaled shard gradients equal the full-batch gradient up to
     * rounding. lr 0 keeps the parameters fixed. */
    rowseq_trainer a, b;
    rowseq_trainer_config c = small_config("gru", TG_OPTIM_SGD, 0.0);
    c.clip = 0;
    c.shards = 1;
    make(&a, &c);
    c.shards = 3;
    make(&b, &c);
    uint32_t idx[32];
    for (int i = 0; i < 32; i++) idx[i] = (uint32_t)(i * 5 % 256);
    double la = rowseq_train_step(&a, &data, idx, 32, NULL);
    double lb3 = rowseq_train_step(&b, &data, idx, 32, NULL);
    cr_expect(fabs(la - lb3) < 1e-5 * fabs(la), "loss %g vs %g", la, lb3);
    size_t n = tg_params_numel(a.params);
    const tg_real *ga = tg_params_grad(a.params), *gb = tg_params_grad(b.params);
    double worst = 0, scale = 0;
    for (size_t i = 0; i < n; i++) {
        worst = fmax(worst, fabs((double)ga[i] - gb[i]));
        scale = fmax(scale, fabs((double)ga[i]));
    }
    cr_expect(scale > 1e-4, "gradient is all zeros");
    cr_expect(worst < 1e-4 * scale, "max gradient difference %g (max |g| %g)", worst, scale);
    rowseq_trainer_free(&a);
    rowseq_trainer_free(&b);
}

Test(rowseq_train, evaluation_records_nothing_and_learns_the_toy_task)
{
    rowseq_trainer tr;
    rowseq_trainer_config c = small_config("lstm", TG_OPTIM_ADAM, 0.01);
    make(&tr, &c);
    double first, last;
    train_steps(&tr, 48, &first, &last);
    size_t n = tg_params_numel(tr.params);
    tg_real *before = malloc(n * sizeof *before), *gbefore = malloc(n * sizeof *gbefore);
    memcpy(before, tg_params_data(tr.params), n * sizeof *before);
    memcpy(gbefore, tg_params_grad(tr.params), n * sizeof *gbefore);
    double loss, acc;
    long cm[100];
    rowseq_evaluate(&tr, &data, 250, &loss, &acc, cm);
    for (int s = 0; s < c.shards; s++)
        cr_expect_eq(tg_tape_node_count(tg_workers_tape(tr.workers, s)), 0,
                     "shard %d recorded a tape in evaluation", s);
    cr_expect_eq(memcmp(before, tg_params_data(tr.params), n * sizeof *before), 0);
    cr_expect_eq(memcmp(gbefore, tg_params_grad(tr.params), n * sizeof *gbefore), 0);
    long total = 0, diag = 0;
    for (int i = 0; i < 100; i++) total += cm[i];
    for (int i = 0; i < 10; i++) diag += cm[i * 11];
    cr_expect_eq(total, 250);
    cr_expect(fabs((double)diag / 250 - acc) < 1e-12, "confusion diagonal %ld vs accuracy %g",
              diag, acc);
    cr_expect(acc > 0.5, "accuracy %g after training on a separable toy set", acc);
    cr_expect(isfinite(loss) && loss < first, "eval loss %g vs first train loss %g", loss, first);
    free(before);
    free(gbefore);
    rowseq_trainer_free(&tr);
}

Test(rowseq_train, shuffle_is_a_permutation)
{
    rowseq_trainer tr;
    rowseq_trainer_config c = small_config("rnn", TG_OPTIM_SGD, 0.1);
    make(&tr, &c);
    uint32_t order[256];
    char seen[256] = {0};
    rowseq_shuffle(&tr, order, 256);
    int moved = 0;
    for (int i = 0; i < 256; i++) {
        cr_assert_lt(order[i], 256);
        cr_expect_eq(seen[order[i]], 0, "index %u twice", order[i]);
        seen[order[i]] = 1;
        moved += order[i] != (uint32_t)i;
    }
    cr_expect_gt(moved, 200);
    rowseq_trainer_free(&tr);
}
