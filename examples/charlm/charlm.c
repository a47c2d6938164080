/* charlm: a character-level language model on any UTF-8 text.
 *
 *   charlm --text book.txt --cell lstm --hidden 256 --seconds 300 --save lm.safetensors
 *   charlm --text book.txt --steps 20000 --checkpoint run.ckpt --every 500
 *   charlm --text book.txt --resume run.ckpt --checkpoint run.ckpt   # after a crash
 *   charlm --load lm.safetensors --steps 0 --sample 500 --prime "And God said"
 *
 * The vocabulary is the text's code points (any script). The last
 * --valid-frac of the text is held out and reported in bits per character.
 * Without --text the King James Bible (Debian package bible-kjv) is used.
 * --resume continues a --checkpoint run exactly (resume.c, trainckpt.h). */
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "charlm.h"
#include "cli.h"
#include "corpus.h"
#include "text.h"
#include "tg_checkpoint.h"
#include "torch_io.h"
#include "tg_optim.h"
#include "trainrun.h"

#define PROG "charlm"
#define LN2 0.69314718055994530942

typedef charlm_options options;
typedef tg_cmdline cmdline;

/* The file the model came from (--load, --import-torch), for messages;
 * NULL for a new one. */
static const char *model_file(const options *o)
{
    return o->load ? o->load : o->import_torch;
}

/* Validation bits per character (NaN when the held-out text is too short
 * to predict one character from another). A loss that is NaN or infinite
 * there, of a model as loaded (trained 0), is a model whose outputs are
 * not: exit 1 (tg_cli_die_nonfinite), not "valid_bpc=nan" and exit 0. One
 * trained in this run logs it and goes on to its checkpoint and --save
 * (the training's guard stops a loss that is not finite). */
static double evaluate(const options *o, charlm_trainer *tr, int trained)
{
    double bpc = charlm_evaluate(tr) / LN2;
    if (!trained && tr->eval_B > 0 && !isfinite(bpc))
        tg_cli_die_nonfinite(PROG, model_file(o), "loss on the validation text");
    return bpc;
}

static int given(const cmdline *c, const char *name) { return tg_cmdline_given(c, name); }

/* ------------------------------------------------------------------ data */

typedef struct corpus {
    char name[4300]; /* for messages */
    uint32_t *cps;
    size_t n;
} corpus;

/* inherited: the text came from --resume's checkpoint, not from --text. */
static void load_corpus(const options *o, int inherited, corpus *c)
{
    char err[1024], *bytes;
    size_t len;
    if (o->text) {
        snprintf(c->name, sizeof c->name, "%s", o->text);
        int failed =
            tg_file_read_all(o->text, TG_TEXT_MAX_BYTES, &bytes, &len, err, sizeof err) != 0;
        if (failed && inherited)
            tg_trainckpt_die_inherited(PROG, o->resume, "text", "--text FILE", err);
        if (failed) tg_cli_die(PROG, "%s", err);
    } else if (tg_corpus_kjv(&bytes, &len, c->name, sizeof c->name, err, sizeof err)) {
        tg_cli_die(PROG, "%s", err);
    }
    /* before decoding: a text too large would be killed, not refused, there */
    char what[sizeof c->name + 32];
    snprintf(what, sizeof what, "%s: holding this text", c->name);
    tgx_memory_check_data(PROG, what, len * CHARLM_BYTES_PER_CHAR,
                          CHARLM_BYTES_PER_CHAR_HOW ", at most one character a byte",
                          "train on a shorter text");
    if (tg_text_decode(c->name, bytes, len, &c->cps, &c->n, err, sizeof err))
        tg_cli_die(PROG, "%s", err);
    free(bytes);
}

static size_t line_of_cp(const uint32_t *cps, size_t i)
{
    size_t line = 1;
    for (size_t k = 0; k < i; k++) line += cps[k] == '\n';
    return line;
}

/* ids of the text in v; a character outside a loaded vocabulary is a data error. */
static int *encode_corpus(const corpus *c, const tg_vocab *v, const char *ckpt)
{
    int *ids = malloc(c->n * sizeof *ids);
    size_t bad;
    if (!ids) tg_cli_die(PROG, "out of memory encoding %zu characters", c->n);
    if (tg_vocab_encode(v, c->cps, c->n, ids, &bad) != 0)
        tg_cli_die(PROG, "%s:%zu: character U+%04X is not in the vocabulary of checkpoint %s",
                   c->name, line_of_cp(c->cps, bad), (unsigned)c->cps[bad], ckpt);
    return ids;
}

/* ------------------------------------------------------------------ training */

static int no_limit(const options *o) { return !o->steps && !o->seconds; }

static double eta_seconds(const options *o, const tgx_run *r)
{
    double eta = INFINITY, done = (double)(r->step - r->start_step);
    if (o->steps > 0 && done > 0)
        eta = ((double)o->steps - (double)r->step) * r->run_seconds / done;
    if (o->seconds > 0 && o->seconds - r->train_seconds < eta) eta = o->seconds - r->train_seconds;
    return eta < 0 ? 0 : eta;
}

/* The progress line and the --log row of a step; skipped (not finite,
 * --skip-nonfinite): its loss, bpc and gradient norm are left empty, where
 * the row repeated the last applied step's. */
static void report(const options *o, tgx_run *r, double lr, double valid_bpc, int last,
                   int skipped)
{
    char eta[32], step[48], valid[32] = "", losses[64] = ",", norm[32] = "";
    double tps = tgx_run_tokens_per_second(r);
    unsigned long long n = (unsigned long long)r->step;
    tg_format_duration(eta_seconds(o, r), eta, sizeof eta);
    if (o->steps)
        snprintf(step, sizeof step, "%llu/%d", n, o->steps);
    else
        snprintf(step, sizeof step, "%llu", n);
    if (isnan(valid_bpc))
        tg_progress_update(&r->pg, last, "step %s  loss %.4f  %.3f bpc  %.0f tok/s  eta %s", step,
                           r->recent_loss, r->recent_loss / LN2, tps, eta);
    else { /* kept on screen: the line is ended, not redrawn */
        tg_progress_update(&r->pg, 1, "step %s  valid %.4f bpc  (train %.3f bpc)  %.0f tok/s",
                           step, valid_bpc, r->recent_loss / LN2, tps);
        tg_progress_done(&r->pg);
    }
    if (!isnan(valid_bpc)) snprintf(valid, sizeof valid, "%.6f", valid_bpc);
    if (!skipped) { /* "loss,bpc" and the norm */
        snprintf(losses, sizeof losses, "%.6f,%.6f", r->last_loss, r->last_loss / LN2);
        snprintf(norm, sizeof norm, "%.6g", r->last_norm);
    }
    tg_csv_row(&r->csv, "%llu,%.3f,%.0f,%s,%.6g,%s,%.1f,%s", n, r->train_seconds,
               (double)r->step * (double)o->seq_len * o->batch, losses, lr, norm, tps, valid);
}

/* The kept model: --save and --export-torch hold the best model by
 * validation. They are written when an --eval-every evaluation beats every
 * earlier one (of the whole run: best and its step are in the training
 * checkpoint, so a resumed run keeps comparing against them), and at the
 * end unless an earlier model was better. */
typedef struct keeper {
    const options *o;
    const charmodel *m;
    const tg_vocab *v;
    tg_optim *opt;
    double best;        /* the best validation bpc of the run (NAN: none yet) */
    uint64_t best_step; /* its step */
    int written;        /* this process wrote the files */
} keeper;

/* The model now, of validation bpc valid_bpc at step r->step. */
static void write_kept(keeper *k, const tgx_run *r, double valid_bpc)
{
    char err[1024];
    const options *o = k->o;
    if (!tgx_run_is_root(r)) return; /* every rank holds the same model: rank 0 writes it */
    tgx_kept_meta km; /* a resumed run compares against it (tgx_run_adopt_kept) */
    tgx_kept_meta_make(&km, r, "valid_bpc", valid_bpc);
    if (o->save) {
        tgx_write_begin(o->save); /* a second Ctrl-C during it leaves no temporary */
        int rc = charmodel_save(o->save, k->m, k->v, k->opt, km.kv,
                                isnan(valid_bpc) ? 0 : TGX_KEPT_KEYS, err, sizeof err);
        tgx_write_end();
        if (rc != 0) tg_cli_die(PROG, "%s", err);
    }
    if (o->export_torch &&
        tgx_torch_export_charmodel(k->m, k->v, o->export_torch, err, sizeof err) != 0)
        tg_cli_die(PROG, "--export-torch %s", err);
    k->written = 1;
}

/* An evaluation at a step: the model is kept when it is the best so far. */
static void consider(keeper *k, const tgx_run *r, double valid_bpc)
{
    if (!tgx_run_keep_best(valid_bpc, &k->best, 0)) return;
    k->best_step = r->step;
    write_kept(k, r, valid_bpc);
}

/* The run's end: the final model is kept unless an earlier one was better
 * (and its file is there); says which. */
static void keep_final(keeper *k, const tgx_run *r, double valid_bpc)
{
    const options *o = k->o;
    const char *file = o->save ? o->save : o->export_torch;
    struct stat st;
    if (!file || !tgx_run_is_root(r)) return;
    /* this process's model when it kept one at this step; an adopted best
     * (tgx_run_adopt_kept) at this step is another model */
    int earlier = !isnan(k->best) && !(k->written && k->best_step == r->step) &&
                  !tgx_run_keep_best(valid_bpc, &k->best, 0);
    if (earlier && stat(file, &st) == 0) {
        fprintf(stderr, "%s: kept %s: the best model by validation, %.4f bpc at step %llu (the "
                "final model's: %.4f bpc)\n", PROG, file, k->best,
                (unsigned long long)k->best_step, valid_bpc);
        return;
    }
    if (earlier)
        fprintf(stderr, "%s: %s, with the best model (step %llu), is gone: keeping the final "
                "one\n", PROG, file, (unsigned long long)k->best_step);
    /* consider() wrote this very model when it evaluated this step; asked
     * after best_step moved here, the final model was never written when
     * an earlier one had been (the file held step 50's for a better 90) */
    int already = k->written && k->best_step == r->step;
    if (!earlier && !isnan(valid_bpc)) k->best_step = r->step;
    if (!already) write_kept(k, r, valid_bpc);
    fprintf(stderr, "%s: saved %s\n", PROG, file);
}

static void train(const options *o, charlm_trainer *tr, tgx_run *r, keeper *k)
{
    tg_lr_schedule sched = {!strcmp(o->schedule, "cosine") ? TG_LR_COSINE : TG_LR_CONSTANT,
                            o->lr, (uint64_t)o->warmup, 1, 1.0,
                            o->steps > o->warmup ? (uint64_t)(o->steps - o->warmup) : 1, 0.0};
    double step_tokens = (double)o->seq_len * o->batch;
    while (!no_limit(o) && !tgx_run_stop(r)) {
        double lr = tg_lr_at(&sched, r->step);
        tgx_run_begin_step(r);
        double loss = charlm_train_window(tr);
        int skipped = tgx_run_end_step(r, loss, lr, 1, step_tokens) == TGX_SKIPPED;
        if (skipped) charlm_trainer_reset_nonfinite(tr); /* a NaN state would poison every later window */
        int eval_now = tgx_run_eval_due(r, (uint64_t)o->eval_every);
        double valid_bpc = eval_now ? evaluate(o, tr, 1) : NAN;
        if (eval_now) consider(k, r, valid_bpc);
        report(o, r, lr, valid_bpc, tgx_run_stop(r) != TGX_GOING, skipped);
        tgx_run_periodic_checkpoint(r);
    }
}

/* ------------------------------------------------------------------ the run */

/* The training run, and every piece of state the loop reads, for the
 * guard, --checkpoint and --resume. */
static void start_run(const options *o, const charmodel *m, const tg_vocab *v, const corpus *c,
                      tg_optim *opt, charlm_trainer *tr, tgx_run *r, keeper *k)
{
    tgx_run_config rc = TGX_RUN_CONFIG_FROM(PROG, m->params, opt, o);
    rc.dist = tr->dist;
    rc.workers = tr->workers; /* the norm of the gradient they set */
    rc.hooks.before_checkpoint = charlm_trainer_share_state; /* shards' state to rank 0 */
    rc.hooks.ctx = tr;
    tgx_run_init(r, &rc);
    if (charlm_register_config(tgx_run_ckpt(r), o, &m->cfg, v, c->cps, c->n) != 0 ||
        charlm_trainer_register(tr, tgx_run_ckpt(r)) != 0 ||
        tg_trainckpt_f64(tgx_run_ckpt(r), "best_valid_bpc", &k->best) != 0 ||
        tg_trainckpt_u64(tgx_run_ckpt(r), "best_step", &k->best_step) != 0)
        tg_cli_die(PROG, "out of memory");
    tgx_run_register_loss(r, NULL, NULL, "last_loss", "recent_loss");
}

/* After --resume loaded the run (tgx_run_resume): what the file cannot
 * check (the data position), then where the run goes on. Exits 1 naming
 * the file. */
static void check_resumed(const options *o, const charlm_trainer *tr, const tgx_run *r)
{
    char err[1024];
    if (charlm_trainer_check_loaded(tr, o->resume, err, sizeof err) != 0)
        tg_cli_die(PROG, "%s", err);
    fprintf(stderr, "%s: resumed %s at step %llu\n", PROG, o->resume,
            (unsigned long long)r->step);
    tgx_run_say_nothing_left(r);
}

/* ------------------------------------------------------------------ sampling */

/* ids of --prime, or of the text's first character when it is empty. */
static int *prime_ids(const options *o, const corpus *c, const tg_vocab *v, int *n)
{
    char err[512];
    uint32_t *cps = NULL;
    size_t len = 1;
    if (o->prime[0] && tg_text_decode("--prime", o->prime, strlen(o->prime), &cps, &len, err,
                                      sizeof err))
        tg_cli_die_usage(PROG, "%s", err);
    int *ids = malloc(len * sizeof *ids);
    size_t bad;
    if (!ids) tg_cli_die(PROG, "out of memory");
    if (tg_vocab_encode(v, cps ? cps : c->cps, len, ids, &bad) != 0)
        tg_cli_die_usage(PROG, "--prime: character U+%04X is not in the model's vocabulary",
                         (unsigned)cps[bad]);
    free(cps);
    *n = (int)len;
    return ids;
}

static void print_ids(const tg_vocab *v, const int *ids, int n)
{
    char buf[4];
    for (int i = 0; i < n; i++) fwrite(buf, 1, tg_vocab_utf8(v, ids[i], buf), stdout);
}

/* --sample N holds N ids: refused before any training when they would
 * not fit (checked at the sampling, an hour's run ended refused). */
static void check_sample_memory(const options *o)
{
    char what[64];
    if (o->sample <= 0) return;
    snprintf(what, sizeof what, "sampling %d characters (--sample)", o->sample);
    tgx_memory_check_data(PROG, what, (size_t)o->sample * sizeof(int),
                          "4 bytes a character: its id", "lower --sample");
}

static void print_sample(const options *o, const int *prime, int n_prime, const charmodel *m,
                         const tg_vocab *v)
{
    int *out = malloc((size_t)o->sample * sizeof *out);
    tg_rng r;
    tg_rng_seed(&r, o->seed ^ 0x5A4D504C45ull); /* its own stream: same sample for same model */
    int rc = out ? charmodel_sample(m, prime, n_prime, o->sample, o->temperature, &r, out) : -1;
    if (rc == CHARMODEL_NONFINITE) { /* it printed the last character (NaN: no draw) */
        int at = 0;
        while (out[at] >= 0) at++;
        tg_cli_die_nonfinite(PROG, model_file(o), "logits at sampled character %d", at + 1);
    }
    if (rc != 0) tg_cli_die(PROG, "out of memory sampling %d characters (--sample)", o->sample);
    print_ids(v, prime, n_prime);
    print_ids(v, out, o->sample);
    fputc('\n', stdout);
    free(out);
}

/* --load without a training flag or a text: the loaded model samples
 * (its vocabulary is in the file); nothing trains, no text is read. */
static int sample_main(const options *o, const cmdline *cl)
{
    char err[1024];
    charmodel m;
    tg_vocab v;
    tg_checkpoint *ck;
    charlm_load_model(o, cl, &m, &v, &ck);
    charlm_check_exportable(o, &m);
    if (ck) tg_checkpoint_close(ck);
    int n_prime = 0, *prime = NULL;
    if (o->sample > 0 && !o->prime[0])
        tg_cli_die_usage(PROG, "--sample with %s and no --text needs --prime TEXT (what the "
                         "sample continues)", o->import_torch ? "--import-torch" : "--load");
    check_sample_memory(o);
    if (o->sample > 0) prime = prime_ids(o, NULL, &v, &n_prime);
    if (o->sample > 0) print_sample(o, prime, n_prime, &m, &v);
    if (o->export_torch &&
        tgx_torch_export_charmodel(&m, &v, o->export_torch, err, sizeof err) != 0)
        tg_cli_die(PROG, "--export-torch %s", err);
    if (o->export_torch) fprintf(stderr, "%s: exported %s\n", PROG, o->export_torch);
    tg_result("sampled=%d params=%zu cell=%s hidden=%d layers=%d", o->sample,
              tg_params_numel(m.params), m.cfg.kind->name, m.cfg.hidden, m.cfg.layers);
    tg_cli_check_stdout(PROG); /* the sample is the output: not lost unsaid */
    free(prime);
    tg_vocab_free(&v);
    charmodel_free(&m);
    return 0;
}

/* ------------------------------------------------------------------ main */

/* Refuses, before training, a configuration that does not fit in memory:
 * the parameters, each shard's gradient, the optimizer's state and the
 * text's n characters first (tr NULL: before the arenas are measured, which
 * takes a step of the model), then with the shards' and the evaluation's
 * step arenas. */
static void check_memory(const options *o, const charmodel *m, const tg_optim *opt,
                         const charlm_trainer *tr, size_t n)
{
    size_t arenas = tr ? (size_t)tr->shards * tr->arena_bytes + tr->eval_arena_bytes : 0;
    tgx_memory_plan p = tgx_memory_plan_of(tg_params_numel(m->params), o->shards, opt, arenas);
    p.data = n * CHARLM_BYTES_PER_CHAR;
    tgx_memory_check(PROG, &p, CHARLM_LOWER);
}

static void describe(const options *o, const corpus *c, const charmodel *m, size_t n_train,
                     size_t n_valid)
{
    const charmodel_config *g = &m->cfg;
    fprintf(stderr, "%s: %s: %zu characters, vocabulary %d; %zu train / %zu valid%s\n", PROG,
            c->name, c->n, g->vocab, n_train, n_valid,
            n_valid < 2 ? " (too few to predict one from another: valid_bpc is nan; raise "
                          "--valid-frac)" : "");
    fprintf(stderr, "%s: %s %dx%d, embed %d, dropout %g, %zu parameters; batch %d x %d steps, "
            "%s lr %g, clip %g, %d shard(s), %d thread(s)\n", PROG, g->kind->name, g->layers,
            g->hidden, g->embed, g->dropout, tg_params_numel(m->params), o->batch, o->seq_len,
            o->optim, o->lr, o->clip, o->shards, o->threads);
}

int main(int argc, char **argv)
{
    tg_cli_adopt_blas_core(argv); /* first: it may start the program again */
    options o;
    cmdline cl;
    tg_inherited inherited;
    char err[1024];
    charlm_parse_options(argc, argv, &o, &cl, &inherited);
    /* --load without a training flag or a text: the loaded model samples
     * (sample_main), work a second rank would repeat */
    int samples_only = (o.load || o.import_torch) && !o.text && !given(&cl, "steps") &&
                       !given(&cl, "seconds");
    if (samples_only) tg_cli_one_process(PROG, "a run with no training flag (a loaded model "
                                             "sampled or exported)");
    /* NULL without mpirun, and for that run: no MPI to finalize after it */
    tg_dist *dist = samples_only ? NULL : tgx_dist_init(PROG, &argc, &argv);
    const tg_run_files files = charlm_run_files(&o);
    tg_trainckpt_check_outputs(PROG, &files); /* before any work */
    if (o.export_torch && tg_cli_check_output("--export-torch", o.export_torch, 1, err, sizeof err))
        tg_cli_die(PROG, "%s", err);
    double wall0 = tg_clock_seconds();
    if (samples_only) return sample_main(&o, &cl); /* nothing to train: no text needed */

    corpus c;
    int text_inherited = tg_inherited_has(&inherited, "text");
    load_corpus(&o, text_inherited, &c);
    charmodel m;
    tg_vocab v;
    tg_checkpoint *ck = NULL;
    if (o.load || o.import_torch)
        charlm_load_model(&o, &cl, &m, &v, &ck);
    else
        charlm_new_model(&o, c.cps, c.n, &m, &v);
    charlm_check_exportable(&o, &m);
    if (text_inherited) charlm_check_inherited_text(o.resume, o.text, &v, c.cps, c.n);
    int *ids = encode_corpus(&c, &v, o.load ? o.load : o.import_torch);
    int n_prime, *prime = prime_ids(&o, &c, &v, &n_prime); /* checked before any training */
    check_sample_memory(&o);
    size_t n_valid = (size_t)((double)c.n * o.valid_frac), n_train = c.n - n_valid;
    tg_optim *opt = charlm_make_optim(&o, &m, ck);
    if (ck) tg_checkpoint_close(ck);
    check_memory(&o, &m, opt, NULL, c.n);

    charlm_trainer tr;
    int init = charlm_trainer_init(&tr, &m, ids, n_train, ids + n_train, n_valid, o.seq_len,
                                   o.batch, o.shards, o.threads, o.seed, !no_limit(&o), err,
                                   sizeof err);
    if (init == -1) tg_cli_die_usage(PROG, "%s", err);
    if (init != 0) tg_cli_die(PROG, "%s", err); /* exit 1: memory, or the text itself */
    check_memory(&o, &m, opt, &tr, c.n);
    if (dist && charlm_trainer_attach_dist(&tr, dist, err, sizeof err) != 0)
        tg_cli_die_usage(PROG, "%s", err);
    tgx_run run;
    keeper keep = {&o, &m, &v, opt, NAN, 0, 0};
    start_run(&o, &m, &v, &c, opt, &tr, &run, &keep);
    tgx_run_resume(&run);
    if (o.resume) check_resumed(&o, &tr, &run);
    if (o.resume && o.save) /* kept after the checkpoint by the run that wrote it */
        tgx_run_adopt_kept(&run, o.save, "valid_bpc", 0, &keep.best, &keep.best_step);
    tgx_run_open_log(&run, "step,seconds,tokens,loss,bpc,lr,grad_norm,tokens_per_s,valid_bpc");
    if (tgx_run_is_root(&run)) describe(&o, &c, &m, n_train, n_valid);

    tgx_run_start(&run);
    train(&o, &tr, &run, &keep);
    tgx_run_finish(&run);
    double valid_bpc = evaluate(&o, &tr, run.step > run.start_step);
    keep_final(&keep, &run, valid_bpc);
    if (tg_csv_close(&run.csv, err, sizeof err) != 0) tg_cli_die(PROG, "%s", err);
    if (o.sample > 0 && tgx_run_is_root(&run)) print_sample(&o, prime, n_prime, &m, &v);

    if (tgx_run_is_root(&run))
        tg_result("valid_bpc=%.4f train_bpc=%.4f tokens_per_s=%.0f steps=%llu seconds=%.1f "
              "wall_seconds=%.1f params=%zu cell=%s hidden=%d layers=%d skipped=%llu",
              valid_bpc, run.step > run.skipped ? run.recent_loss / LN2 : NAN,
              tgx_run_tokens_per_second(&run), (unsigned long long)run.step, run.train_seconds, tg_clock_seconds() - wall0,
              tg_params_numel(m.params), m.cfg.kind->name, m.cfg.hidden, m.cfg.layers,
              (unsigned long long)run.skipped);

    tgx_run_free(&run);
    charlm_trainer_free(&tr);
    tg_optim_free(opt);
    free(ids);
    free(prime);
    free(c.cps);
    tg_vocab_free(&v);
    charmodel_free(&m);
    tg_inherited_free(&inherited);
    tg_dist_finalize(dist);
    return 0;
}
