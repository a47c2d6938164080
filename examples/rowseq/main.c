/* rowseq: Fashion-MNIST read as 28 time steps of 28 pixels, classified from
 * the last hidden state of a recurrent stack (many-to-one).
 *
 *   rowseq                                  LSTM 128, Adam 2e-3 cosine, 12 epochs
 *   rowseq --preset seed                    the seed's tanh RNN 100, SGD 0.1, 20 epochs
 *   rowseq --seconds 600 --save m.safetensors
 *   rowseq --load m.safetensors --epochs 0  evaluate a saved model
 *
 * Per epoch: train loss, test loss and accuracy (no-grad evaluation in large
 * batches) on stdout; a confusion matrix at the end; last line
 *   result: test_acc=0.8912 epochs=10 seconds=612.3 tokens_per_s=41250
 * where a token is one image row (one time step) processed in training. */
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cli.h"
#include "idx.h"
#include "rowseq_model.h"
#include "tg_checkpoint.h"

#define PROG "rowseq"
#define CLASSES 10

static const char *const class_names[CLASSES] = {
    "T-shirt/top", "Trouser", "Pullover", "Dress",   "Coat",
    "Sandal",      "Shirt",   "Sneaker",  "Bag",     "Ankle boot",
};

typedef struct options {
    const char *data, *preset, *cell, *optim, *schedule, *save, *load, *log;
    int hidden, layers, batch, eval_batch, epochs, threads, shards, limit_train, limit_test;
    double lr, momentum, weight_decay, clip, dropout, seconds;
    uint64_t seed;
} options;

static options default_options(void)
{
    options o = {0};
    o.data = "/usr/share/datasets/fashion-mnist";
    o.preset = "none";
    o.cell = "lstm";
    o.optim = "adam";
    o.schedule = "cosine";
    o.hidden = 128;
    o.layers = 1;
    o.batch = 64;
    o.eval_batch = 1000;
    o.epochs = 12;
    o.threads = 2;
    o.shards = 2;
    o.momentum = 0.9;
    o.weight_decay = -1;
    o.clip = 5;
    o.seed = 1;
    return o;
}

/* The seed's MNIST-RNN experiment: tanh RNN of 100, plain SGD 0.1, 20 epochs,
 * no clipping. Applied before parsing, so explicit flags still win. */
static void apply_preset(options *o, const char *name)
{
    if (strcmp(name, "seed") != 0) return;
    o->cell = "rnn";
    o->hidden = 100;
    o->layers = 1;
    o->optim = "sgd";
    o->lr = 0.1;
    o->clip = 0;
    o->schedule = "constant";
    o->epochs = 20;
}

/* The value of --preset in argv, before the full parse (NULL if absent). */
static const char *find_preset(int argc, char **argv)
{
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--") == 0) break;
        if (strcmp(argv[i], "--preset") == 0 && i + 1 < argc) return argv[i + 1];
        if (strncmp(argv[i], "--preset=", 9) == 0) return argv[i] + 9;
    }
    return NULL;
}

static void parse_options(int argc, char **argv, options *o)
{
    *o = default_options();
    const char *preset = find_preset(argc, argv);
    if (preset) apply_preset(o, preset);
    const tg_flag flags[] = {
        {"data", TG_STR, &o->data, "folder with {train,t10k}-{images-idx3,labels-idx1}-ubyte[.gz]",
         0, 0, NULL},
        {"preset", TG_STR, &o->preset,
         "seed = the seed's config (--cell rnn --hidden 100 --optim sgd --lr 0.1 --clip 0 "
         "--schedule constant --epochs 20); other flags still override",
         0, 0, "none,seed"},
        {"cell", TG_STR, &o->cell, "recurrent cell", 0, 0, "rnn,lstm,gru,mgu"},
        {"hidden", TG_INT, &o->hidden, "hidden units per layer", 1, 4096, NULL},
        {"layers", TG_INT, &o->layers, "stacked recurrent layers", 1, TG_MAX_LAYERS, NULL},
        {"dropout", TG_DOUBLE, &o->dropout, "dropout between layers (training only)", 0, 0.95,
         NULL},
        {"optim", TG_STR, &o->optim, "optimizer", 0, 0, "sgd,momentum,adam,adamw"},
        {"lr", TG_DOUBLE, &o->lr, "learning rate; 0 = 0.1 for sgd/momentum, 0.002 for adam(w)", 0,
         100, NULL},
        {"momentum", TG_DOUBLE, &o->momentum, "momentum of --optim momentum", 0, 0.999, NULL},
        {"weight-decay", TG_DOUBLE, &o->weight_decay,
         "weight decay; -1 = the optimizer's default (0.01 adamw, else 0)", -1, 10, NULL},
        {"schedule", TG_STR, &o->schedule,
         "learning-rate schedule over --epochs: constant, cosine (to lr/100), step (halved "
         "every epoch of the second half)",
         0, 0, "constant,cosine,step"},
        {"clip", TG_DOUBLE, &o->clip, "clip the global gradient norm; 0 = off", 0, 1e9, NULL},
        {"batch", TG_INT, &o->batch, "training images per step", 1, 65536, NULL},
        {"eval-batch", TG_INT, &o->eval_batch, "images per no-grad evaluation pass", 1, 65536,
         NULL},
        {"epochs", TG_INT, &o->epochs, "epochs to train in this run (0 = evaluate only)", 0,
         1000000, NULL},
        {"seconds", TG_DOUBLE, &o->seconds, "stop training after this many seconds; 0 = no limit",
         0, 1e9, NULL},
        {"threads", TG_INT, &o->threads, "threads running the shards", 1, 256, NULL},
        {"shards", TG_INT, &o->shards,
         "data-parallel shards per batch (fixes the arithmetic; results never depend on "
         "--threads)",
         1, ROWSEQ_MAX_SHARDS, NULL},
        {"seed", TG_U64, &o->seed, "random seed (init, shuffling, dropout)", 0, 0, NULL},
        {"save", TG_STR, &o->save, "save a checkpoint (safetensors) after every epoch", 0, 0,
         NULL},
        {"load", TG_STR, &o->load,
         "start from a checkpoint (its cell, hidden and layers replace the flags)", 0, 0, NULL},
        {"log", TG_STR, &o->log, "CSV file: one row per epoch", 0, 0, NULL},
        {"limit-train", TG_INT, &o->limit_train, "use only the first N training images; 0 = all", 0,
         IDX_MAX_COUNT, NULL},
        {"limit-test", TG_INT, &o->limit_test, "use only the first N test images; 0 = all", 0,
         IDX_MAX_COUNT, NULL},
    };
    tg_cli_parse(argc, argv, flags, (int)(sizeof flags / sizeof flags[0]), PROG,
                 "Fashion-MNIST as 28 steps of 28 pixels: recurrent stack + linear on the last "
                 "hidden state.",
                 NULL);
}

/* ------------------------------------------------------------------ data */

typedef struct split {
    idx_images im;
    idx_labels lb;
    rowseq_data d;
} split;

/* DIR/name, or DIR/name.gz when only that exists. */
static void data_path(const char *dir, const char *name, char *out, size_t n)
{
    snprintf(out, n, "%s/%s", dir, name);
    if (access(out, F_OK) == 0) return;
    snprintf(out, n, "%s/%s.gz", dir, name);
    if (access(out, F_OK) == 0) return;
    tg_cli_die(PROG, "%s: neither %s nor %s.gz found (set --data to the folder holding the IDX files)",
               dir, name, name);
}

static void load_split(const char *dir, const char *prefix, int limit, split *s)
{
    char ip[4096], lp[4096], msg[4096 + 256], name[64];
    snprintf(name, sizeof name, "%s-images-idx3-ubyte", prefix);
    data_path(dir, name, ip, sizeof ip);
    snprintf(name, sizeof name, "%s-labels-idx1-ubyte", prefix);
    data_path(dir, name, lp, sizeof lp);
    if (idx_read_images(ip, &s->im, msg, sizeof msg) != IDX_OK) tg_cli_die(PROG, "%s", msg);
    if (idx_read_labels(lp, CLASSES, &s->lb, msg, sizeof msg) != IDX_OK)
        tg_cli_die(PROG, "%s", msg);
    if (idx_check_pair(ip, &s->im, lp, &s->lb, msg, sizeof msg) != IDX_OK)
        tg_cli_die(PROG, "%s", msg);
    s->d.count = (int)s->im.count;
    if (limit > 0 && limit < s->d.count) s->d.count = limit;
    s->d.rows = (int)s->im.rows;
    s->d.cols = (int)s->im.cols;
    s->d.pixels = s->im.pixels;
    s->d.labels = s->lb.labels;
}

/* ------------------------------------------------------------------ checkpoints */

static void save_checkpoint(const options *o, rowseq_trainer *tr, int epochs_done)
{
    char hidden[32], layers[32], steps[32], in[32], epochs[32], rng[TG_RNG_HEX_LEN], err[1024];
    snprintf(hidden, sizeof hidden, "%d", tr->cfg.hidden);
    snprintf(layers, sizeof layers, "%d", tr->cfg.layers);
    snprintf(steps, sizeof steps, "%d", tr->cfg.steps);
    snprintf(in, sizeof in, "%d", tr->cfg.in);
    snprintf(epochs, sizeof epochs, "%d", epochs_done);
    tg_checkpoint_rng_hex(&tr->rng, rng);
    const tg_ckpt_meta meta[] = {
        {"rowseq.cell", tr->cfg.kind->name}, {"rowseq.hidden", hidden},
        {"rowseq.layers", layers},           {"rowseq.steps", steps},
        {"rowseq.in", in},                   {"rowseq.epochs", epochs},
        {"rowseq.rng", rng},
    };
    if (tg_checkpoint_save_training(o->save, tr->params, tr->opt, meta,
                                    sizeof meta / sizeof meta[0], err, sizeof err) != 0)
        tg_cli_die(PROG, "%s", err);
}

/* Fails at start-up, not after the first epoch, when --save cannot be
 * written: the folder must exist and be writable (the file is replaced
 * atomically through a temporary file beside it). */
static void check_save_path(const char *path)
{
    char folder[4096];
    snprintf(folder, sizeof folder, "%s", path);
    char *slash = strrchr(folder, '/');
    if (!slash) snprintf(folder, sizeof folder, ".");
    else if (slash == folder) folder[1] = '\0';
    else *slash = '\0';
    if (path[0] == '\0' || (slash && slash[1] == '\0' && slash != folder))
        tg_cli_die(PROG, "--save '%s': expected a file name", path);
    if (access(folder, W_OK) != 0)
        tg_cli_die(PROG, "--save %s: cannot write in folder %s: %s", path, folder,
                   strerror(errno));
}

/* Reads the architecture stored in a checkpoint into o (before the model is
 * built). Returns the open checkpoint. */
static tg_checkpoint *open_checkpoint(options *o, int *epochs_done)
{
    char err[1024];
    tg_checkpoint *c = tg_checkpoint_open(o->load, err, sizeof err);
    if (!c) tg_cli_die(PROG, "%s", err);
    const char *cell = tg_checkpoint_meta(c, "rowseq.cell");
    uint64_t hidden, layers, epochs;
    if (!cell || !tg_cell_kind_by_name(cell))
        tg_cli_die(PROG, "%s: metadata 'rowseq.cell' is %s%s%s: expected one of %s", o->load,
                   cell ? "'" : "", cell ? cell : "missing", cell ? "'" : "",
                   tg_cell_kind_names());
    if (tg_checkpoint_meta_u64(c, "rowseq.hidden", &hidden, err, sizeof err) != 0 ||
        tg_checkpoint_meta_u64(c, "rowseq.layers", &layers, err, sizeof err) != 0 ||
        tg_checkpoint_meta_u64(c, "rowseq.epochs", &epochs, err, sizeof err) != 0)
        tg_cli_die(PROG, "%s", err);
    if (hidden < 1 || hidden > 4096 || layers < 1 || layers > TG_MAX_LAYERS)
        tg_cli_die(PROG, "%s: hidden %llu / layers %llu in metadata: expected 1..4096 / 1..%d",
                   o->load, (unsigned long long)hidden, (unsigned long long)layers,
                   TG_MAX_LAYERS);
    o->cell = cell;
    o->hidden = (int)hidden;
    o->layers = (int)layers;
    *epochs_done = epochs > 1000000 ? 1000000 : (int)epochs;
    return c;
}

/* The model in a checkpoint reads images of a fixed size. */
static void check_checkpoint_shape(const options *o, const tg_checkpoint *c, int rows, int cols)
{
    char err[1024];
    uint64_t steps, in;
    if (tg_checkpoint_meta_u64(c, "rowseq.steps", &steps, err, sizeof err) != 0 ||
        tg_checkpoint_meta_u64(c, "rowseq.in", &in, err, sizeof err) != 0)
        tg_cli_die(PROG, "%s", err);
    if (steps != (uint64_t)rows || in != (uint64_t)cols)
        tg_cli_die(PROG, "%s: the model reads %llu steps of %llu pixels, the images are %dx%d",
                   o->load, (unsigned long long)steps, (unsigned long long)in, rows, cols);
}

/* Copies weights (all or nothing) and, when the optimizer kind matches, its
 * state; the shuffling stream continues where the saved run left it. */
static void restore_checkpoint(const options *o, tg_checkpoint *c, rowseq_trainer *tr)
{
    char err[1024];
    if (tg_checkpoint_load_params(c, tr->params, err, sizeof err) != 0) tg_cli_die(PROG, "%s", err);
    const char *kind = tg_checkpoint_meta(c, "optim.kind");
    const char *mine = tg_optim_kind_name(tr->cfg.optim.kind);
    if (kind && strcmp(kind, mine) == 0) {
        if (tg_checkpoint_load_optim(c, tr->opt, err, sizeof err) != 0) tg_cli_die(PROG, "%s", err);
    } else {
        fprintf(stderr, "%s: %s: optimizer state not restored (file: %s, this run: %s)\n", PROG,
                o->load, kind ? kind : "none", mine);
    }
    if (tg_checkpoint_meta(c, "rowseq.rng") &&
        tg_checkpoint_meta_rng(c, "rowseq.rng", &tr->rng, err, sizeof err) != 0)
        tg_cli_die(PROG, "%s", err);
}

/* ------------------------------------------------------------------ set-up */

static tg_optim_config optim_config(const options *o)
{
    tg_optim_kind kind = TG_OPTIM_SGD;
    if (strcmp(o->optim, "adam") == 0) kind = TG_OPTIM_ADAM;
    if (strcmp(o->optim, "adamw") == 0) kind = TG_OPTIM_ADAMW;
    tg_optim_config c = tg_optim_defaults(kind);
    if (strcmp(o->optim, "momentum") == 0) c.momentum = o->momentum;
    if (kind != TG_OPTIM_SGD) c.lr = 0.002; /* measured best for this task, see README */
    if (o->lr > 0) c.lr = o->lr;
    if (o->weight_decay >= 0) c.weight_decay = o->weight_decay;
    return c;
}

static tg_lr_schedule lr_schedule(const options *o, double base, uint64_t steps_per_epoch)
{
    tg_lr_schedule s = {0};
    uint64_t total = steps_per_epoch * (uint64_t)(o->epochs > 0 ? o->epochs : 1);
    s.base_lr = base;
    s.kind = TG_LR_CONSTANT;
    if (strcmp(o->schedule, "cosine") == 0) {
        s.kind = TG_LR_COSINE;
        s.decay_steps = total;
        s.min_lr = base / 100;
    } else if (strcmp(o->schedule, "step") == 0) {
        s.kind = TG_LR_STEP; /* applied from the second half on, see lr_for_step */
        s.step_size = steps_per_epoch;
        s.gamma = 0.5;
    }
    return s;
}

/* Step schedule: base for the first half of the epochs, then halved at the
 * start of every later epoch. */
static double lr_for_step(const options *o, const tg_lr_schedule *s, uint64_t step,
                          uint64_t steps_per_epoch)
{
    if (s->kind != TG_LR_STEP) return tg_lr_at(s, step);
    uint64_t half = steps_per_epoch * (uint64_t)((o->epochs + 1) / 2);
    return step < half ? s->base_lr : tg_lr_at(s, step - half + steps_per_epoch);
}

/* ------------------------------------------------------------------ report */

static void print_confusion(const long *cm)
{
    printf("\nconfusion matrix (rows: true class, columns: predicted)\n%-12s", "");
    for (int j = 0; j < CLASSES; j++) printf(" %5d", j);
    printf("  recall\n");
    for (int i = 0; i < CLASSES; i++) {
        long row = 0;
        printf("%d %-10s", i, class_names[i]);
        for (int j = 0; j < CLASSES; j++) {
            printf(" %5ld", cm[i * CLASSES + j]);
            row += cm[i * CLASSES + j];
        }
        printf("  %.3f\n", row ? (double)cm[i * CLASSES + i] / row : 0.0);
    }
}

/* ------------------------------------------------------------------ main */

typedef struct run_stats {
    double train_seconds;
    long train_tokens;
    uint64_t step;
} run_stats;

static void die_diverged(rowseq_trainer *tr, uint64_t step, int epoch, double loss, double norm)
{
    size_t at = 0;
    const char *bad = tg_params_nonfinite_grad(tr->params, &at);
    if (!isfinite(loss))
        tg_cli_die(PROG, "step %llu (epoch %d): loss is %g: training diverged (try a lower --lr "
                   "or --clip 5)",
                   (unsigned long long)step, epoch, loss);
    if (bad)
        tg_cli_die(PROG, "step %llu (epoch %d): gradient of '%s'[%zu] is not finite (norm %g): "
                   "training diverged (try a lower --lr or --clip 5)",
                   (unsigned long long)step, epoch, bad, at, norm);
    tg_cli_die(PROG, "step %llu (epoch %d): gradient norm is %g: training diverged",
               (unsigned long long)step, epoch, norm);
}

/* One pass over a shuffled training set; returns the mean training loss and
 * sets *stopped when the time budget ran out part way. */
static double train_epoch(const options *o, rowseq_trainer *tr, const rowseq_data *train,
                          uint32_t *order, const tg_lr_schedule *sched, uint64_t steps_per_epoch,
                          int epoch, double t_start, run_stats *st, tg_progress *pg, int *stopped)
{
    double sum = 0, t0 = tg_clock_seconds();
    long seen = 0;
    rowseq_shuffle(tr, order, train->count);
    for (int start = 0; start < train->count; start += o->batch) {
        int B = train->count - start < o->batch ? train->count - start : o->batch;
        tg_optim_set_lr(tr->opt, lr_for_step(o, sched, st->step, steps_per_epoch));
        double norm = 0, loss = rowseq_train_step(tr, train, order + start, B, &norm);
        st->step++;
        if (!isfinite(loss)) die_diverged(tr, st->step, epoch, loss, norm);
        sum += loss * B;
        seen += B;
        st->train_tokens += (long)B * train->rows;
        double now = tg_clock_seconds();
        double rate = (double)seen * train->rows / (now - t0 > 1e-9 ? now - t0 : 1e-9);
        tg_progress_update(pg, 0, "epoch %d  %6ld/%d  loss %.4f  lr %.2g  %.0f tokens/s", epoch,
                           seen, train->count, sum / seen, tg_optim_lr(tr->opt), rate);
        if (o->seconds > 0 && now - t_start >= o->seconds) {
            *stopped = 1;
            break;
        }
    }
    st->train_seconds += tg_clock_seconds() - t0;
    return seen ? sum / seen : 0;
}

int main(int argc, char **argv)
{
    options o;
    parse_options(argc, argv, &o);
    if (o.save) check_save_path(o.save);
    int epochs_loaded = 0;
    tg_checkpoint *ckpt = o.load ? open_checkpoint(&o, &epochs_loaded) : NULL;

    split train = {0}, test = {0};
    load_split(o.data, "train", o.limit_train, &train);
    load_split(o.data, "t10k", o.limit_test, &test);
    if (train.d.rows != test.d.rows || train.d.cols != test.d.cols)
        tg_cli_die(PROG, "%s: training images are %dx%d but test images are %dx%d", o.data,
                   train.d.rows, train.d.cols, test.d.rows, test.d.cols);

    rowseq_trainer_config cfg = {0};
    cfg.kind = tg_cell_kind_by_name(o.cell);
    cfg.steps = train.d.rows;
    cfg.in = train.d.cols;
    cfg.hidden = o.hidden;
    cfg.layers = o.layers;
    cfg.classes = CLASSES;
    cfg.dropout = o.dropout;
    cfg.optim = optim_config(&o);
    cfg.clip = o.clip;
    cfg.batch = o.batch;
    cfg.eval_batch = o.eval_batch;
    cfg.shards = o.shards;
    cfg.threads = o.threads;
    cfg.seed = o.seed;
    if (ckpt) check_checkpoint_shape(&o, ckpt, cfg.steps, cfg.in);
    rowseq_trainer tr;
    char err[1024];
    if (rowseq_trainer_init(&tr, &cfg, err, sizeof err) != 0) tg_cli_die(PROG, "%s", err);
    if (ckpt) {
        restore_checkpoint(&o, ckpt, &tr);
        tg_checkpoint_close(ckpt);
    }

    tg_csv log;
    if (tg_csv_open(&log, o.log, "epoch,step,seconds,lr,train_loss,test_loss,test_acc,tokens_per_s",
                    err, sizeof err) != 0)
        tg_cli_die(PROG, "%s", err);
    fprintf(stderr,
            "%s: %s %dx%d, %zu parameters, %s lr %g (%s), clip %g, batch %d, %d shards on %d "
            "threads; train %d, test %d images of %dx%d\n",
            PROG, cfg.kind->name, cfg.layers, cfg.hidden, tg_params_numel(tr.params), o.optim,
            cfg.optim.lr, o.schedule, cfg.clip, cfg.batch, cfg.shards, cfg.threads, train.d.count, test.d.count,
            cfg.steps, cfg.in);

    uint32_t *order = malloc((size_t)train.d.count * sizeof *order);
    if (!order) tg_cli_die(PROG, "out of memory for %d indices", train.d.count);
    uint64_t steps_per_epoch = (uint64_t)(train.d.count + o.batch - 1) / (uint64_t)o.batch;
    tg_lr_schedule sched = lr_schedule(&o, cfg.optim.lr, steps_per_epoch);
    tg_progress pg;
    tg_progress_init(&pg, stderr, 10.0);
    run_stats st = {0};
    double t_start = tg_clock_seconds(), test_loss = 0, test_acc = 0, epochs_run = 0;
    long confusion[CLASSES * CLASSES];
    int evaluated = 0, stopped = 0;
    for (int epoch = 1; epoch <= o.epochs && !stopped; epoch++) {
        double train_loss = train_epoch(&o, &tr, &train.d, order, &sched, steps_per_epoch, epoch,
                                        t_start, &st, &pg, &stopped);
        tg_progress_done(&pg);
        rowseq_evaluate(&tr, &test.d, test.d.count, &test_loss, &test_acc, confusion);
        evaluated = 1;
        uint64_t done = st.step - (uint64_t)(epoch - 1) * steps_per_epoch;
        epochs_run = epoch - 1 + (double)done / (double)steps_per_epoch;
        double tps = st.train_seconds > 0 ? st.train_tokens / st.train_seconds : 0;
        double elapsed = tg_clock_seconds() - t_start;
        printf("epoch %3d%s  train_loss %.4f  test_loss %.4f  test_acc %.4f  %.1fs  %.0f tokens/s\n",
               epoch, stopped ? " (partial, time budget)" : "", train_loss, test_loss, test_acc,
               elapsed, tps);
        fflush(stdout);
        tg_csv_row(&log, "%.4f,%llu,%.2f,%.6g,%.6f,%.6f,%.6f,%.0f", epochs_run,
                   (unsigned long long)st.step, elapsed, tg_optim_lr(tr.opt), train_loss,
                   test_loss, test_acc, tps);
        if (o.save) save_checkpoint(&o, &tr, epochs_loaded + epoch);
    }
    if (!evaluated) rowseq_evaluate(&tr, &test.d, test.d.count, &test_loss, &test_acc, confusion);
    if (o.epochs == 0) printf("evaluation  test_loss %.4f  test_acc %.4f\n", test_loss, test_acc);
    print_confusion(confusion);
    if (tg_csv_close(&log, err, sizeof err) != 0) tg_cli_die(PROG, "%s", err);

    size_t high = 0;
    for (int s = 0; s < cfg.shards; s++) {
        size_t h = tg_tape_arena_high_water(tg_workers_tape(tr.workers, s));
        high = h > high ? h : high;
    }
    fprintf(stderr, "%s: step arena high water %.1f MiB of %.1f MiB per shard\n", PROG,
            high / 1048576.0, rowseq_arena_bytes(&cfg) / 1048576.0);
    double seconds = tg_clock_seconds() - t_start;
    double tps = st.train_seconds > 0 ? st.train_tokens / st.train_seconds : 0;
    char epochs_text[32];
    if (epochs_run == floor(epochs_run)) snprintf(epochs_text, sizeof epochs_text, "%.0f", epochs_run);
    else snprintf(epochs_text, sizeof epochs_text, "%.2f", epochs_run);
    tg_result("test_acc=%.4f epochs=%s seconds=%.1f tokens_per_s=%.0f", test_acc, epochs_text,
              seconds, tps);
    free(order);
    rowseq_trainer_free(&tr);
    idx_images_free(&train.im);
    idx_labels_free(&train.lb);
    idx_images_free(&test.im);
    idx_labels_free(&test.lb);
    return 0;
}
