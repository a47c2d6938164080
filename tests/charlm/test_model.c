/* The char model and charlm's trainer in process: a tiny model overfits a
 * short Korean/English string; the arena bound holds for every cell;
 * sampling is deterministic; save -> load gives bitwise-identical outputs;
 * training is bitwise independent of the thread count. */
#include <criterion/criterion.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "charlm.h"
#include "charmodel.h"
#include "text.h"
#include "tg_optim.h"

TestSuite(charlm_model, .timeout = 120);

/* "hello, 안녕하세요 world!" */
static const char *const TEXT = "hello, \xEC\x95\x88\xEB\x85\x95\xED\x95\x98\xEC\x84\xB8\xEC\x9A\x94 world!";

typedef struct fixture {
    tg_vocab v;
    int *ids;
    int n;
} fixture;

static void load_text(fixture *f, const char *s)
{
    char err[256];
    uint32_t *cps;
    size_t n;
    cr_assert_eq(tg_text_decode("text", s, strlen(s), &cps, &n, err, sizeof err), 0, "%s", err);
    cr_assert_eq(tg_vocab_build(&f->v, cps, n), 0);
    f->ids = malloc(n * sizeof *f->ids);
    cr_assert_eq(tg_vocab_encode(&f->v, cps, n, f->ids, NULL), 0);
    f->n = (int)n;
    free(cps);
}

static void free_text(fixture *f)
{
    tg_vocab_free(&f->v);
    free(f->ids);
}

static void make_model(charmodel *m, const char *cell, int vocab, int hidden, int layers,
                       uint64_t seed)
{
    char err[256];
    tg_rng r;
    tg_rng_seed(&r, seed);
    charmodel_config cfg = {tg_cell_kind_by_name(cell), vocab, 8, hidden, layers, 0.0};
    cr_assert_not_null(cfg.kind, "cell %s", cell);
    cr_assert_eq(charmodel_init(m, &cfg, &r, err, sizeof err), 0, "%s", err);
}

/* Full-batch Adam on one window holding the whole string. */
static double overfit(const char *cell, int steps)
{
    fixture f;
    load_text(&f, TEXT);
    charmodel m;
    char err[256];
    make_model(&m, cell, f.v.size, 32, 1, 3);
    tg_optim_config oc = tg_optim_defaults(TG_OPTIM_ADAM);
    oc.lr = 0.02;
    tg_optim *opt = tg_optim_new(&oc, tg_params_numel(m.params), err, sizeof err);
    cr_assert_not_null(opt, "%s", err);
    int T = f.n - 1;
    tg_tape *t = tg_tape_new(charmodel_arena_bytes(&m.cfg, T, 1));
    double loss = INFINITY;
    for (int s = 0; s < steps && loss > 0.005; s++) {
        tg_tape_reset(t);
        tg_params_zero_grad(m.params);
        tg_tensor *l = charmodel_loss(t, &m, f.ids, f.ids + 1, T, 1, NULL, NULL, NULL);
        tg_backward(t, l);
        tg_clip_grad_norm(m.params, 5.0);
        tg_optim_step(opt, m.params);
        loss = l->data[0];
    }
    tg_tape_free(t);
    tg_optim_free(opt);
    charmodel_free(&m);
    free_text(&f);
    return loss;
}

Test(charlm_model, overfits_a_short_korean_english_string)
{
    const char *cells[] = {"lstm", "gru", "mgu", "rnn"};
    for (int c = 0; c < 4; c++) {
        double loss = overfit(cells[c], 400);
        cr_assert(loss < 0.02, "%s: loss %g nats after 400 steps (want < 0.02)", cells[c], loss);
    }
}

/* One training step on a tape of exactly the estimated size (overflow
 * would abort); returns the high-water mark. */
static size_t step_high_water(const char *cell, int vocab, int hidden, int layers, int T, int B,
                              double dropout, size_t *estimate)
{
    char err[256];
    tg_rng r;
    tg_rng_seed(&r, 1);
    charmodel_config cfg = {tg_cell_kind_by_name(cell), vocab, 16, hidden, layers, dropout};
    charmodel m;
    cr_assert_eq(charmodel_init(&m, &cfg, &r, err, sizeof err), 0, "%s", err);
    *estimate = charmodel_arena_bytes(&cfg, T, B);
    tg_tape *t = tg_tape_new(*estimate);
    int *ids = malloc((size_t)(T * B + B) * sizeof *ids);
    for (int i = 0; i < T * B + B; i++) ids[i] = (i * 7 + 3) % vocab;
    tg_state final[TG_MAX_LAYERS];
    tg_tensor *loss = charmodel_loss(t, &m, ids, ids + B, T, B, NULL, final, &r);
    tg_backward(t, loss);
    size_t hw = tg_tape_arena_high_water(t);
    free(ids);
    tg_tape_free(t);
    charmodel_free(&m);
    return hw;
}

Test(charlm_model, arena_estimate_bounds_every_cell)
{
    const char *cells[] = {"rnn", "lstm", "gru", "mgu"};
    for (int c = 0; c < 4; c++) {
        size_t est, hw = step_high_water(cells[c], 11, 13, 3, 7, 3, 0.2, &est);
        cr_assert(hw <= est, "%s: used %zu > estimate %zu", cells[c], hw, est);
        hw = step_high_water(cells[c], 300, 64, 2, 32, 8, 0.1, &est);
        cr_assert(hw <= est, "%s: used %zu > estimate %zu", cells[c], hw, est);
        cr_assert(est < hw + hw / 4 + (2u << 20), "%s: estimate %zu is far above the %zu used",
                  cells[c], est, hw);
    }
}

Test(charlm_model, sampling_is_deterministic)
{
    charmodel m;
    make_model(&m, "gru", 9, 16, 2, 5);
    int prime[3] = {1, 4, 2}, a[40], b[40], g1[20], g2[20];
    tg_rng r1, r2;
    tg_rng_seed(&r1, 77);
    tg_rng_seed(&r2, 77);
    cr_assert_eq(charmodel_sample(&m, prime, 3, 40, 1.0, &r1, a), 0);
    cr_assert_eq(charmodel_sample(&m, prime, 3, 40, 1.0, &r2, b), 0);
    cr_assert(memcmp(a, b, sizeof a) == 0, "same seed, different samples");
    for (int i = 0; i < 40; i++) cr_assert(a[i] >= 0 && a[i] < 9);
    tg_rng_seed(&r2, 78);
    cr_assert_eq(charmodel_sample(&m, prime, 3, 40, 1.0, &r2, b), 0);
    cr_assert(memcmp(a, b, sizeof a) != 0, "a different seed gave the same 40 draws");
    /* greedy sampling does not depend on the generator */
    tg_rng_seed(&r1, 1);
    tg_rng_seed(&r2, 2);
    charmodel_sample(&m, prime, 3, 20, 0.0, &r1, g1);
    charmodel_sample(&m, prime, 3, 20, 0.0, &r2, g2);
    cr_assert(memcmp(g1, g2, sizeof g1) == 0);
    charmodel_free(&m);
}

/* Logits of a fixed window, copied out. */
static tg_real *window_logits(const charmodel *m, int T, int B)
{
    tg_tape *t = tg_tape_new(charmodel_arena_bytes(&m->cfg, T, B));
    int *ids = malloc((size_t)(T * B) * sizeof *ids);
    for (int i = 0; i < T * B; i++) ids[i] = (i * 5 + 1) % m->cfg.vocab;
    tg_tape_set_grad(t, 0);
    tg_tensor *l = charmodel_logits(t, m, ids, T, B, NULL, NULL, NULL);
    tg_real *copy = malloc(tg_numel(l) * sizeof *copy);
    memcpy(copy, l->data, tg_numel(l) * sizeof *copy);
    free(ids);
    tg_tape_free(t);
    return copy;
}

Test(charlm_model, save_load_is_bitwise_identical)
{
    fixture f;
    load_text(&f, TEXT);
    char dir[] = "/tmp/tg_charlm_XXXXXX", path[256], err[512];
    cr_assert_not_null(mkdtemp(dir));
    snprintf(path, sizeof path, "%s/m.safetensors", dir);
    charmodel m, back;
    tg_vocab v2;
    make_model(&m, "lstm", f.v.size, 12, 2, 9);
    m.cfg.dropout = 0.25;
    cr_assert_eq(charmodel_save(path, &m, &f.v, NULL, NULL, 0, err, sizeof err), 0, "%s", err);
    cr_assert_eq(charmodel_load(path, &back, &v2, err, sizeof err), 0, "%s", err);
    cr_assert_eq(back.cfg.kind, m.cfg.kind);
    cr_assert_eq(back.cfg.hidden, 12);
    cr_assert_eq(back.cfg.layers, 2);
    cr_assert_eq(back.cfg.embed, 8);
    cr_assert_eq(back.cfg.dropout, 0.25);
    cr_assert_eq(v2.size, f.v.size);
    cr_assert(memcmp(v2.cps, f.v.cps, (size_t)v2.size * sizeof *v2.cps) == 0);
    cr_assert_eq(tg_params_numel(back.params), tg_params_numel(m.params));
    tg_real *a = window_logits(&m, 6, 2), *b = window_logits(&back, 6, 2);
    cr_assert(memcmp(a, b, (size_t)6 * 2 * f.v.size * sizeof *a) == 0, "outputs differ after load");
    free(a);
    free(b);

    /* a vocabulary that disagrees with the parameters' shapes is refused */
    tg_vocab wrong;
    const uint32_t cps[] = {'a', 'b'};
    tg_vocab_build(&wrong, cps, 2);
    cr_assert_eq(charmodel_save(path, &m, &wrong, NULL, NULL, 0, err, sizeof err), -1);
    cr_assert(strstr(err, "vocabulary has 2 entries"), "%s", err);
    tg_vocab_free(&wrong);

    /* a plain checkpoint without the char-model metadata names the missing key */
    cr_assert_eq(tg_checkpoint_save(path, m.params, NULL, 0, NULL, 0, err, sizeof err), 0, "%s", err);
    charmodel none;
    tg_vocab nv;
    cr_assert_eq(charmodel_load(path, &none, &nv, err, sizeof err), -1);
    cr_assert(strstr(err, "charmodel.format") && strstr(err, path), "%s", err);

    /* metadata that contradicts the tensors: hidden says 13, tensors are 12 */
    tg_ckpt_meta meta[] = {{CHARMODEL_KEY_FORMAT, "1"}, {CHARMODEL_KEY_CELL, "lstm"},
                           {CHARMODEL_KEY_EMBED, "8"}, {CHARMODEL_KEY_HIDDEN, "13"},
                           {CHARMODEL_KEY_LAYERS, "2"}, {CHARMODEL_KEY_DROPOUT, "0"},
                           {CHARMODEL_KEY_VOCAB, tg_vocab_format(&f.v)}};
    cr_assert_eq(tg_checkpoint_save(path, m.params, NULL, 0, meta, 7, err, sizeof err), 0, "%s", err);
    cr_assert_eq(charmodel_load(path, &none, &nv, err, sizeof err), -1);
    cr_assert(strstr(err, "weight_hh") || strstr(err, "shape") || strstr(err, "13"), "%s", err);
    meta[1].value = "transformer";
    cr_assert_eq(tg_checkpoint_save(path, m.params, NULL, 0, meta, 7, err, sizeof err), 0, "%s", err);
    cr_assert_eq(charmodel_load(path, &none, &nv, err, sizeof err), -1);
    cr_assert(strstr(err, "charmodel.cell") && strstr(err, "transformer"), "%s", err);
    free((char *)meta[6].value);

    remove(path);
    rmdir(dir);
    charmodel_free(&m);
    charmodel_free(&back);
    tg_vocab_free(&v2);
    free_text(&f);
}

/* ------------------------------------------------------------------ trainer */

static void train_steps(const int *ids, size_t n, int shards, int threads, int steps,
                        tg_real *params_out, double *losses)
{
    char err[256];
    charmodel m;
    make_model(&m, "lstm", 40, 16, 2, 11);
    m.cfg.dropout = 0.1;
    m.rnn.dropout = 0.1;
    charlm_trainer tr;
    cr_assert_eq(charlm_trainer_init(&tr, &m, ids, n - 100, ids + n - 100, 100, 8, 6, shards,
                                     threads, 5, 1, err, sizeof err), 0, "%s", err);
    tg_optim_config oc = tg_optim_defaults(TG_OPTIM_ADAM);
    oc.lr = 0.01;
    tg_optim *opt = tg_optim_new(&oc, tg_params_numel(m.params), err, sizeof err);
    for (int s = 0; s < steps; s++) {
        losses[s] = charlm_train_window(&tr);
        tg_clip_grad_norm(m.params, 1.0);
        tg_optim_step(opt, m.params);
    }
    losses[steps] = charlm_evaluate(&tr);
    memcpy(params_out, tg_params_data(m.params), tg_params_numel(m.params) * sizeof(tg_real));
    tg_optim_free(opt);
    charlm_trainer_free(&tr);
    charmodel_free(&m);
}

Test(charlm_model, trainer_is_independent_of_threads)
{
    size_t n = 1000;
    int *ids = malloc(n * sizeof *ids);
    for (size_t i = 0; i < n; i++) ids[i] = (int)(i * 7 % 40); /* learnable: next = prev + 7 */
    size_t np = 200000;
    tg_real *p1 = malloc(np * sizeof *p1), *p2 = malloc(np * sizeof *p2);
    double l1[8], l2[8];
    train_steps(ids, n, 3, 1, 7, p1, l1);
    train_steps(ids, n, 3, 3, 7, p2, l2);
    charmodel probe;
    make_model(&probe, "lstm", 40, 16, 2, 11);
    size_t numel = tg_params_numel(probe.params);
    charmodel_free(&probe);
    cr_assert(memcmp(p1, p2, numel * sizeof *p1) == 0, "parameters depend on the thread count");
    cr_assert(memcmp(l1, l2, sizeof l1) == 0, "losses depend on the thread count");
    cr_assert(isfinite(l1[7]) && l1[7] > 0, "validation loss %g", l1[7]);
    cr_assert(l1[6] < l1[0], "training did not lower the loss: %g -> %g", l1[0], l1[6]);
    free(p1);
    free(p2);
    free(ids);
}

Test(charlm_model, trainer_rejects_short_text_and_bad_shards)
{
    char err[256];
    charmodel m;
    make_model(&m, "rnn", 5, 4, 1, 1);
    int ids[50] = {0};
    charlm_trainer tr;
    cr_assert_eq(charlm_trainer_init(&tr, &m, ids, 50, NULL, 0, 10, 8, 1, 1, 1, 1, err, sizeof err), -1);
    cr_assert(strstr(err, "too short") && strstr(err, "--batch 8"), "%s", err);
    /* a run that only evaluates needs no training streams */
    cr_assert_eq(charlm_trainer_init(&tr, &m, ids, 50, NULL, 0, 10, 8, 1, 1, 1, 0, err, sizeof err), 0,
                 "%s", err);
    charlm_trainer_free(&tr);
    cr_assert_eq(charlm_trainer_init(&tr, &m, ids, 50, NULL, 0, 2, 2, 3, 1, 1, 1, err, sizeof err), -1);
    cr_assert(strstr(err, "--shards 3"), "%s", err);
    cr_assert_eq(charlm_trainer_init(&tr, &m, ids, 50, NULL, 0, 2, 2, 2, 1, 1, 1, err, sizeof err), 0);
    cr_assert(isnan(charlm_evaluate(&tr)), "no validation split gives NaN");
    charlm_trainer_free(&tr);
    charmodel_free(&m);
}
