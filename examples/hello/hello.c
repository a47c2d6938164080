/* hello: the seed example. A character RNN learns that "hell" continues
 * with "o". The vocabulary is h, e, l, o; each step trains on the inputs
 * h,e,l,l against the targets e,l,l,o, so the two l's can only be told apart
 * by what the network remembers. Prints its predictions after training. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "charmodel.h"
#include "cli.h"
#include "text.h"
#include "tg_optim.h"

#define PROG "hello"
#define WORD "hello"
#define T_LEN 4 /* inputs "hell", targets "ello" */

typedef struct options {
    const char *cell, *log;
    int hidden, steps, threads;
    double lr, target_loss;
    uint64_t seed;
} options;

static void parse_options(int argc, char **argv, options *o)
{
    const tg_flag flags[] = {
        {"cell", TG_STR, &o->cell, "recurrent cell", 0, 0, tg_cell_kind_names()},
        {"hidden", TG_INT, &o->hidden, "hidden units", 1, 4096, NULL},
        {"steps", TG_INT, &o->steps, "most training steps", 1, 1000000, NULL},
        {"lr", TG_DOUBLE, &o->lr, "Adam learning rate", 1e-9, 10, NULL},
        {"target-loss", TG_DOUBLE, &o->target_loss, "stop once the loss (nats) is below this",
         0, 10, NULL},
        {"threads", TG_INT, &o->threads, "threads inside kernels", 1, 1024, NULL},
        {"seed", TG_U64, &o->seed, "random seed", 0, 0, NULL},
        {"log", TG_STR, &o->log, "write per-step CSV metrics to FILE", 0, 0, NULL},
    };
    tg_cli_parse(argc, argv, flags, (int)(sizeof flags / sizeof flags[0]), PROG,
                 "A character RNN learns to continue \"hell\" with \"o\".", NULL);
}

/* The vocabulary of "hello" (e, h, l, o) and the word's ids in it. */
static void encode_word(tg_vocab *v, int ids[5])
{
    const uint32_t cps[5] = {'h', 'e', 'l', 'l', 'o'};
    if (tg_vocab_build(v, cps, 5) != 0) tg_cli_die(PROG, "out of memory");
    tg_vocab_encode(v, cps, 5, ids, NULL);
}

static char letter(const tg_vocab *v, int id) { return (char)v->cps[id]; }

/* One Adam step on the whole word; returns the loss before the step. */
static double train_step(tg_tape *t, charmodel *m, tg_optim *opt, const int *ids)
{
    tg_tape_reset(t);
    tg_params_zero_grad(m->params);
    tg_tensor *loss = charmodel_loss(t, m, ids, ids + 1, T_LEN, 1, NULL, NULL, NULL);
    tg_backward(t, loss);
    tg_clip_grad_norm(m->params, 5.0);
    tg_optim_step(opt, m->params);
    return loss->data[0];
}

/* What the model predicts after each prefix of "hell". */
static void print_predictions(tg_tape *t, const charmodel *m, const tg_vocab *v, const int *ids)
{
    double probs[4];
    tg_tape_reset(t);
    tg_tape_set_grad(t, 0);
    tg_tensor *logits = charmodel_logits(t, m, ids, T_LEN, 1, NULL, NULL, NULL);
    for (int k = 0; k < T_LEN; k++) {
        if (tg_softmax_temperature(logits->data + k * v->size, v->size, 1.0, probs) != 0)
            tg_cli_die(PROG, "the model's outputs are not finite (try a smaller --lr)");
        int best = 0;
        for (int j = 1; j < v->size; j++)
            if (probs[j] > probs[best]) best = j;
        printf("  after \"%.*s\" -> '%c' (p=%.3f, want '%c')\n", k + 1, WORD, letter(v, best),
               probs[best], WORD[k + 1]);
    }
    tg_tape_set_grad(t, 1);
}

int main(int argc, char **argv)
{
    options o = {.cell = "rnn", .hidden = 16, .steps = 500, .threads = 1, .lr = 0.05,
                 .target_loss = 0.01, .seed = 1};
    parse_options(argc, argv, &o);

    tg_vocab v;
    int ids[5];
    encode_word(&v, ids);
    char err[512];
    tg_rng rng;
    tg_rng_seed(&rng, o.seed);
    charmodel_config cfg = {tg_cell_kind_by_name(o.cell), v.size, v.size, o.hidden, 1, 0.0};
    charmodel m;
    if (charmodel_init(&m, &cfg, &rng, err, sizeof err) != 0) tg_cli_die(PROG, "%s", err);
    tg_optim_config oc = tg_optim_defaults(TG_OPTIM_ADAM);
    oc.lr = o.lr;
    tg_optim *opt = tg_optim_new(&oc, tg_params_numel(m.params), err, sizeof err);
    tg_tape *t = tg_tape_new(charmodel_arena_bytes(&cfg, T_LEN, 1));
    tg_csv log;
    if (!opt || !t) tg_cli_die(PROG, "%s", opt ? "out of memory" : err);
    if (tg_csv_open(&log, o.log, "step,loss", err, sizeof err) != 0) tg_cli_die(PROG, "%s", err);
    tg_tape_set_threads(t, o.threads);

    double t0 = tg_clock_seconds(), loss = INFINITY;
    int step = 0;
    while (step < o.steps && !(loss < o.target_loss)) {
        loss = train_step(t, &m, opt, ids);
        tg_csv_row(&log, "%d,%.6f", ++step, loss);
        if (!isfinite(loss)) tg_cli_die(PROG, "step %d: loss is %g; try a smaller --lr", step, loss);
    }
    double seconds = tg_clock_seconds() - t0;

    printf("%s cell, %d hidden units, %d steps, %.3f s, loss %.4f nats\n", o.cell, o.hidden, step,
           seconds, loss);
    print_predictions(t, &m, &v, ids);
    int next;
    int rc = charmodel_sample(&m, ids, T_LEN, 1, 0.0, &rng, &next);
    if (rc == CHARMODEL_NONFINITE) tg_cli_die(PROG, "the model's outputs are not finite");
    if (rc != 0) tg_cli_die(PROG, "out of memory");
    printf("hell -> %c\n", letter(&v, next));
    if (tg_csv_close(&log, err, sizeof err) != 0) tg_cli_die(PROG, "%s", err);
    tg_result("next=%c ok=%d loss=%.6f steps=%d seconds=%.4f", letter(&v, next),
              letter(&v, next) == 'o', loss, step, seconds);

    tg_tape_free(t);
    tg_optim_free(opt);
    charmodel_free(&m);
    tg_vocab_free(&v);
    return 0;
}
