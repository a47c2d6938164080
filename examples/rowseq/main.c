/* rowseq: Fashion-MNIST read as 28 time steps of 28 pixels, classified from
 * the last hidden state of a recurrent stack (many-to-one).
 *
 *   rowseq                                  LSTM 128, Adam 2e-3 cosine, 12 epochs
 *   rowseq --preset seed                    the seed's tanh RNN 100, SGD 0.1, 20 epochs
 *   rowseq --seconds 600 --save m.safetensors
 *   rowseq --load m.safetensors             evaluate a saved model (no training flag)
 *   rowseq --export-torch m.torch.safetensors     ... for PyTorch (scripts/torch_models.py)
 *   rowseq --import-torch m.torch.safetensors     evaluate (or train) a PyTorch RowRNN
 *   rowseq --checkpoint run.ckpt --every 200      killed in epoch 7 ...
 *   rowseq --resume run.ckpt --checkpoint run.ckpt    ... goes on exactly
 *
 * Per epoch: train loss, test loss and accuracy (no-grad evaluation in large
 * batches) on stdout; a confusion matrix at the end; last line
 *   result: test_acc=0.8912 epochs=10 seconds=612.3 tokens_per_s=41250 steps=9380 skipped=0
 * where a token is one image row (one time step) processed in training.
 * --resume continues a --checkpoint run exactly (resume.c, trainckpt.h). */
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "cli.h"
#include "idx.h"
#include "rowseq.h"
#include "rowseq_model.h"
#include "tg_checkpoint.h"
#include "torch_io.h"
#include "trainckpt.h"
#include "trainrun.h"

#define PROG "rowseq"
#define CLASSES ROWSEQ_CLASSES


typedef rowseq_options options;
typedef rowseq_split split;

/* ------------------------------------------------------------------ the training loop */

/* What one training step needs, set up once; the run (trainrun.h) keeps
 * the step, the stops, the epochs done ("u64.epoch"), the guard. */
typedef struct loop {
    const options *o;
    rowseq_trainer *tr;
    const rowseq_data *train;
    uint32_t *order; /* this epoch's permutation */
    tg_lr_schedule sched;
    uint64_t steps_per_epoch;
    tgx_run run;
    /* the loop's own state, in training checkpoints */
    uint64_t pos;       /* images of this epoch's permutation already trained */
    tg_rng shuffle_rng; /* the trainer's generator before this epoch's shuffle */
} loop;

/* The stop's words in the epoch line ("epoch 2 (partial, --steps)"). */
static const char *partial_name(tgx_stop s)
{
    return s == TGX_STOP_STEPS ? "--steps" : s == TGX_STOP_SECONDS ? "time budget"
                                           : tgx_stop_name(s);
}

static int stopped(const loop *L) { return L->o->epochs == 0 || tgx_run_stop(&L->run); }

/* One step on the next batch of this epoch's permutation. */
static void train_step(loop *L)
{
    const options *o = L->o;
    rowseq_trainer *tr = L->tr;
    int left = L->train->count - (int)L->pos;
    int B = left < o->batch ? left : o->batch;
    double lr = rowseq_lr_for_step(o, &L->sched, L->run.step, L->steps_per_epoch);
    tgx_run_begin_step(&L->run);
    double loss = rowseq_train_backward(tr, L->train, L->order + L->pos, B);
    L->pos += (uint64_t)B;
    tgx_run_end_step(&L->run, loss, lr, (uint64_t)B, (double)B * L->train->rows);
}

/* Trains this epoch from L->pos on, until it ends or a stopping rule holds. */
static void train_epoch(loop *L)
{
    rowseq_trainer *tr = L->tr;
    const int count = L->train->count;
    /* the epoch's permutation, drawn again from the saved state on resume */
    tr->rng = L->shuffle_rng;
    rowseq_shuffle(tr, L->order, count);
    while (L->pos < (uint64_t)count && !stopped(L)) {
        train_step(L);
        tg_progress_update(&L->run.pg, 0, "epoch %llu  %6llu/%d  loss %.4f  lr %.2g  %.0f "
                           "tokens/s", (unsigned long long)L->run.epochs_done + 1,
                           (unsigned long long)L->pos, count, tgx_run_mean_loss(&L->run),
                           tg_optim_lr(tr->opt), tgx_run_tokens_per_second(&L->run));
        /* at the end of the epoch: after its evaluation, in the next epoch's state */
        if (L->pos < (uint64_t)count) tgx_run_periodic_checkpoint(&L->run);
    }
}

/* The epoch is over: the next one starts at its first image, drawing its
 * permutation from where this one's shuffle left the generator. */
static void next_epoch(loop *L)
{
    tgx_run_end_epoch(&L->run);
    L->pos = 0;
    L->shuffle_rng = L->tr->rng;
}

/* ------------------------------------------------------------------ the run */

/* The training run and every piece of state the loop reads, for the guard,
 * --checkpoint and --resume. */
static void start_run(loop *L)
{
    const options *o = L->o;
    rowseq_trainer *tr = L->tr;
    tgx_run_config rc = TGX_RUN_CONFIG_FROM(PROG, tr->params, tr->opt, o);
    rc.dist = tr->dist;
    rc.workers = tr->workers; /* the norm of the gradient they set */
    rc.hooks.before_checkpoint = rowseq_trainer_share_state; /* shards' dropout streams */
    rc.hooks.ctx = tr;
    rc.epochs = (uint64_t)o->epochs;
    tgx_run_init(&L->run, &rc);
    tg_trainckpt *ck = tgx_run_ckpt(&L->run);
    int bad = rowseq_register_config(ck, o, &tr->cfg, L->train) != 0 ||
              tg_trainckpt_u64(ck, "epoch", &L->run.epochs_done) != 0 ||
              tg_trainckpt_u64(ck, "epoch_pos", &L->pos) != 0 ||
              tg_trainckpt_rng(ck, "shuffle", &L->shuffle_rng) != 0;
    for (int i = 0; !bad && i < tr->cfg.shards; i++) {
        char name[32];
        snprintf(name, sizeof name, "dropout.%d", i);
        bad = tg_trainckpt_rng(ck, name, &tr->shard_rng[i]) != 0;
    }
    if (bad) tg_cli_die(PROG, "out of memory");
    tgx_run_register_loss(&L->run, "epoch_loss", "epoch_images", NULL, NULL);
}

/* After a load: what the file could not check by itself — the data
 * position lies inside the training set, on a batch boundary, at the step
 * it claims. Exits 1 naming the file. */
static void check_position(const char *path, const loop *L)
{
    const tgx_run *s = &L->run;
    uint64_t batch = (uint64_t)L->o->batch, count = (uint64_t)L->train->count;
    if (L->pos >= count || L->pos % batch != 0 ||
        s->epochs_done > s->step / L->steps_per_epoch ||
        s->step != s->epochs_done * L->steps_per_epoch + L->pos / batch ||
        s->loss_weight > L->pos) /* skipped and its streak: tgx_run_resume */
        tg_cli_die(PROG, "%s: data position 'u64.epoch' %llu, 'u64.epoch_pos' %llu does not fit "
                   "'u64.step' %llu with %d images in batches of %d", path,
                   (unsigned long long)s->epochs_done, (unsigned long long)L->pos,
                   (unsigned long long)s->step, L->train->count, L->o->batch);
}

/* After --resume loaded the run (tgx_run_resume): what the file cannot
 * check (the data position), then where the run goes on. Exits 1 naming
 * the file. */
static void check_resumed(const loop *L)
{
    const options *o = L->o;
    check_position(o->resume, L);
    fprintf(stderr, "%s: resumed %s at step %llu (epoch %llu, image %llu of %d)\n", PROG,
            o->resume, (unsigned long long)L->run.step,
            (unsigned long long)L->run.epochs_done + 1, (unsigned long long)L->pos,
            L->train->count);
    if (tgx_run_stop(&L->run) == TGX_STOP_EPOCHS)
        fprintf(stderr, "%s: already at epoch %llu of --epochs %d: nothing to train\n", PROG,
                (unsigned long long)L->run.epochs_done, o->epochs);
    else
        tgx_run_say_nothing_left(&L->run);
}

/* ------------------------------------------------------------------ main */

/* The trainer of o over these images. A pass holds at most the test set
 * (as seq2seq's batch_rows): --eval-batch 1000 over 5 test images probes,
 * and evaluates, 5 rows, not 1000 that could refuse a model that fits. */
static rowseq_trainer_config trainer_config(const options *o, const rowseq_data *train,
                                            const rowseq_data *test)
{
    rowseq_trainer_config cfg = {0};
    cfg.kind = tg_cell_kind_by_name(o->cell);
    cfg.steps = train->rows;
    cfg.in = train->cols;
    cfg.hidden = o->hidden;
    cfg.layers = o->layers;
    cfg.classes = CLASSES;
    cfg.dropout = o->dropout;
    cfg.optim = rowseq_optim_config(o);
    cfg.clip = o->clip;
    cfg.batch = o->batch;
    cfg.eval_batch = test->count > 0 && test->count < o->eval_batch ? test->count : o->eval_batch;
    cfg.train_count = train->count;
    cfg.shards = o->shards;
    cfg.threads = o->threads;
    cfg.seed = o->seed;
    return cfg;
}

/* Evaluation after training in an epoch: the epoch line and the log row. */
typedef struct epoch_report {
    double test_loss, test_acc;
    long confusion[CLASSES * CLASSES];
    int evaluated;
} epoch_report;

/* The test set's loss, accuracy and confusion into r. A loss that is NaN
 * or infinite, of a model as loaded (trained 0), is a model whose outputs
 * are not: exit 1 (tg_cli_die_nonfinite), not "test_loss nan" and exit 0.
 * An epoch's evaluation in training reports it and the run goes on to its
 * checkpoint and --save (the training's guard stops a loss not finite). */
static void evaluate(const options *o, rowseq_trainer *tr, const rowseq_data *test, int trained,
                     epoch_report *r)
{
    rowseq_evaluate(tr, test, test->count, &r->test_loss, &r->test_acc, r->confusion);
    if (!trained && !isfinite(r->test_loss))
        tg_cli_die_nonfinite(PROG, o->load ? o->load : o->import_torch, "loss on the test set");
    r->evaluated = 1;
}

static void report_epoch(loop *L, const rowseq_data *test, const char *partial,
                         double t_start, epoch_report *r)
{
    rowseq_trainer *tr = L->tr;
    tgx_run *s = &L->run;
    evaluate(L->o, tr, test, 1, r);
    double train_loss = tgx_run_mean_loss(s);
    double epochs_run = (double)s->step / (double)L->steps_per_epoch;
    double elapsed = tg_clock_seconds() - t_start, tps = tgx_run_tokens_per_second(s);
    char label[64] = "";
    if (partial) snprintf(label, sizeof label, " (partial, %s)", partial);
    printf("epoch %3llu%s  train_loss %.4f  test_loss %.4f  test_acc %.4f  %.1fs  %.0f tokens/s\n",
           (unsigned long long)s->epochs_done + 1, label, train_loss, r->test_loss, r->test_acc,
           elapsed, tps);
    fflush(stdout);
    tg_csv_row(&s->csv, "%.4f,%llu,%.2f,%.6g,%.6f,%.6f,%.6f,%.0f", epochs_run,
               (unsigned long long)s->step, elapsed, tg_optim_lr(tr->opt), train_loss,
               r->test_loss, r->test_acc, tps);
}

/* Epochs until a stopping rule holds: train, evaluate, report, --save, and
 * checkpoint every --every steps. */
static void train_run(loop *L, const rowseq_data *test, uint64_t epochs_loaded, double t_start,
                      epoch_report *r)
{
    const options *o = L->o;
    while (!stopped(L)) {
        train_epoch(L);
        tg_progress_done(&L->run.pg);
        int ended = L->pos >= (uint64_t)L->train->count;
        report_epoch(L, test, ended ? NULL : partial_name(tgx_run_stop(&L->run)), t_start, r);
        if (ended) next_epoch(L);
        if (o->save && tgx_run_is_root(&L->run)) rowseq_save_model(o->save, L->tr, epochs_loaded + L->run.epochs_done);
        if (ended) tgx_run_periodic_checkpoint(&L->run);
    }
}

/* --import-torch: opens the PyTorch RowRNN file and takes its cell, hidden
 * and layers (as --load does); exits 1 when it is not one. */
static tg_checkpoint *open_torch(options *o, const tg_cmdline *cl, tgx_torch_arch *a)
{
    char err[1024];
    tg_checkpoint *c = tgx_torch_open(o->import_torch, a, err, sizeof err);
    if (!c) tg_cli_die(PROG, "--import-torch %s", err);
    if (a->embed > 0)
        tg_cli_die(PROG, "--import-torch %s: has an embedding (a CharRNN, charlm's model): "
                   "rowseq takes a RowRNN (scripts/torch_models.py)", o->import_torch);
    if (a->out != CLASSES || a->hidden > 4096)
        tg_cli_die(PROG, "--import-torch %s: tensor 'head.weight' is [%d, %d]: rowseq needs %d "
                   "classes from at most 4096 hidden units", o->import_torch, a->out, a->hidden,
                   CLASSES);
    rowseq_check_model_flags(o, cl, a->kind->name, a->hidden, a->layers, o->import_torch);
    o->cell = a->kind->name;
    o->hidden = a->hidden;
    o->layers = a->layers;
    return c;
}

/* Copies the PyTorch weights in (all or nothing) once the images' width is
 * known; the optimizer starts afresh. */
static void import_torch(const options *o, tg_checkpoint *c, const tgx_torch_arch *a,
                         rowseq_trainer *tr)
{
    char err[1024];
    int rc = a->in != tr->cfg.in
                 ? snprintf(err, sizeof err, "tensor 'rnn.weight_ih_l0' reads %d pixels a step, "
                            "the images are %dx%d", a->in, tr->cfg.steps, tr->cfg.in)
                 : tgx_torch_import(c, tr->params, err, sizeof err);
    tg_checkpoint_close(c); /* closed on every path: the leak check of the tests sees it */
    if (rc != 0) tg_cli_die(PROG, "--import-torch %s: %s", o->import_torch, err);
}

/* Refuses a model too large to train before the trainer builds it and
 * runs a probe step (both would already take much of the memory). */
static void check_planned_memory(const rowseq_trainer_config *c)
{
    size_t numel = tgx_stack_numel(c->kind, c->in, c->hidden, c->layers) +
                   (size_t)c->classes * (size_t)(c->hidden + 1);
    tgx_memory_plan p = tgx_memory_plan_config(numel, c->shards, &c->optim, 0);
    tgx_memory_check(PROG, &p, ROWSEQ_LOWER);
}

/* Refuses, before training, a configuration that does not fit in memory:
 * the trainer has measured its arenas (one per shard, reused by the
 * evaluation) and reserved, not yet touched, the rest; the images held
 * count as its data. */
static void check_memory(const rowseq_trainer *tr, const split *train, const split *test)
{
    size_t arenas = tr->arena_bytes * (size_t)tr->cfg.shards;
    tgx_memory_plan p =
        tgx_memory_plan_of(tg_params_numel(tr->params), tr->cfg.shards, tr->opt, arenas);
    p.data = rowseq_split_bytes(train) + rowseq_split_bytes(test);
    tgx_memory_check(PROG, &p, ROWSEQ_LOWER);
}

static void describe(const options *o, const rowseq_trainer *tr, const rowseq_data *train,
                     const rowseq_data *test)
{
    const rowseq_trainer_config *c = &tr->cfg;
    fprintf(stderr,
            "%s: %s %dx%d, %zu parameters, %s lr %g (%s), clip %g, batch %d, %d shards on %d "
            "threads; train %d, test %d images of %dx%d\n",
            PROG, c->kind->name, c->layers, c->hidden, tg_params_numel(tr->params), o->optim,
            c->optim.lr, o->schedule, c->clip, c->batch, c->shards, c->threads, train->count,
            test->count, c->steps, c->in);
}

/* No output is another output's file or an input's (the --data folder's
 * IDX files among them), and each can be written. */
static void check_files(const options *o)
{
    char data[ROWSEQ_DATA_FILES][ROWSEQ_PATH_BYTES];
    tg_run_files files = rowseq_run_files(o);
    rowseq_data_files(o->data, data);
    for (int i = 0; i < ROWSEQ_DATA_FILES; i++) tg_run_files_add(files.reads, "--data", data[i]);
    tg_trainckpt_check_outputs(PROG, &files);
}

int main(int argc, char **argv)
{
    tg_cli_adopt_blas_core(argv); /* first: it may start the program again */
    options o;
    tg_cmdline cl;
    tg_inherited inherited;
    char err[1024];
    rowseq_parse_options(argc, argv, &o, &cl, &inherited);
    tg_dist *dist = tgx_dist_init(PROG, &argc, &argv); /* NULL without mpirun */
    check_files(&o); /* before any work */
    if (o.export_torch && tg_cli_check_output("--export-torch", o.export_torch, 1, err, sizeof err))
        tg_cli_die(PROG, "%s", err);
    tgx_torch_arch arch;
    tg_checkpoint *torch_file = o.import_torch ? open_torch(&o, &cl, &arch) : NULL;
    uint64_t epochs_loaded = 0;
    int load_training = 0;
    tg_checkpoint *model_file =
        o.load ? rowseq_open_model(&o, &cl, &epochs_loaded, &load_training) : NULL;

    split train = {0}, test = {0};
    /* the run's data folder, when --resume took it from the checkpoint */
    const char *data_from = tg_inherited_has(&inherited, "data") ? o.resume : NULL;
    rowseq_load_split(o.data, "train", o.limit_train, data_from, 0, &train);
    rowseq_load_split(o.data, "t10k", o.limit_test, data_from, rowseq_split_bytes(&train), &test);
    if (train.d.rows != test.d.rows || train.d.cols != test.d.cols)
        tg_cli_die(PROG, "%s: training images are %dx%d but test images are %dx%d", o.data,
                   train.d.rows, train.d.cols, test.d.rows, test.d.cols);

    rowseq_trainer_config cfg = trainer_config(&o, &train.d, &test.d);
    check_planned_memory(&cfg);
    if (o.export_torch && !tgx_torch_module_of(cfg.kind)) /* before training, not after */
        tg_cli_die_usage(PROG, "--export-torch: cell '%s' has no PyTorch module (only lstm, gru "
                         "and rnn map to nn.LSTM, nn.GRU and nn.RNN)", cfg.kind->name);
    if (model_file) rowseq_check_model_shape(&o, model_file, load_training, cfg.steps, cfg.in);
    rowseq_trainer tr;
    if (rowseq_trainer_init(&tr, &cfg, err, sizeof err) != 0) tg_cli_die(PROG, "%s", err);
    check_memory(&tr, &train, &test);
    if (torch_file) import_torch(&o, torch_file, &arch, &tr);
    if (dist && tg_dist_attach(dist, tr.workers, err, sizeof err) != 0)
        tg_cli_die_usage(PROG, "%s", err);
    tr.dist = dist;
    if (model_file) {
        rowseq_restore_model(&o, model_file, &tr);
        tg_checkpoint_close(model_file);
    }

    loop L = {0};
    L.o = &o;
    L.tr = &tr;
    L.train = &train.d;
    L.order = malloc((size_t)train.d.count * sizeof *L.order);
    if (!L.order) tg_cli_die(PROG, "out of memory for %d indices", train.d.count);
    L.steps_per_epoch = (uint64_t)(train.d.count + o.batch - 1) / (uint64_t)o.batch;
    L.sched = rowseq_lr_schedule(&o, cfg.optim.lr, L.steps_per_epoch);
    L.shuffle_rng = tr.rng; /* after the init draws, or as a --save file left it */
    start_run(&L);
    tgx_run_resume(&L.run);
    if (o.resume) check_resumed(&L);
    tgx_run_open_log(&L.run, "epoch,step,seconds,lr,train_loss,test_loss,test_acc,tokens_per_s");
    describe(&o, &tr, &train.d, &test.d);

    tgx_run_start(&L.run);
    double t_start = tg_clock_seconds();
    epoch_report r = {0};
    train_run(&L, &test.d, epochs_loaded, t_start, &r);
    tgx_run_finish(&L.run);
    if (!r.evaluated) { /* nothing trained: a --load'ed or --import-torch'ed model */
        evaluate(&o, &tr, &test.d, 0, &r);
        printf("evaluation  test_loss %.4f  test_acc %.4f\n", r.test_loss, r.test_acc);
        if (o.save && tgx_run_is_root(&L.run)) { /* was silently not written */
            rowseq_save_model(o.save, &tr, epochs_loaded + L.run.epochs_done);
            fprintf(stderr, "%s: saved %s\n", PROG, o.save);
        }
    }
    rowseq_print_confusion(r.confusion);
    if (o.export_torch && tgx_run_is_root(&L.run)) {
        if (tgx_torch_export(tr.params, cfg.kind, o.export_torch, NULL, 0, err, sizeof err) != 0)
            tg_cli_die(PROG, "--export-torch %s", err);
        fprintf(stderr, "%s: exported %s\n", PROG, o.export_torch);
    }
    if (tg_csv_close(&L.run.csv, err, sizeof err) != 0) tg_cli_die(PROG, "%s", err);

    size_t high = 0;
    for (int sh = 0; sh < cfg.shards; sh++) {
        size_t h = tg_tape_arena_high_water(tg_workers_tape(tr.workers, sh));
        high = h > high ? h : high;
    }
    fprintf(stderr, "%s: step arena high water %.1f MiB of %.1f MiB per shard\n", PROG,
            high / 1048576.0, tr.arena_bytes / 1048576.0);
    double seconds = tg_clock_seconds() - t_start;
    double epochs_run = (double)L.run.step / (double)L.steps_per_epoch;
    char epochs_text[32];
    if (epochs_run == floor(epochs_run)) snprintf(epochs_text, sizeof epochs_text, "%.0f", epochs_run);
    else snprintf(epochs_text, sizeof epochs_text, "%.2f", epochs_run);
    if (tgx_run_is_root(&L.run))
        tg_result("test_acc=%.4f epochs=%s seconds=%.1f tokens_per_s=%.0f steps=%llu skipped=%llu",
              r.test_acc, epochs_text, seconds, tgx_run_tokens_per_second(&L.run),
              (unsigned long long)L.run.step, (unsigned long long)L.run.skipped);
    tgx_run_free(&L.run);
    free(L.order);
    rowseq_trainer_free(&tr);
    rowseq_split_free(&train);
    rowseq_split_free(&test);
    tg_inherited_free(&inherited);
    tg_dist_finalize(dist);
    return 0;
}
