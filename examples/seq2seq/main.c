/* seq2seq: an encoder-decoder translation model trained with teacher forcing.
 *
 * With no --train it trains on the built-in English->Korean corpus
 * (corpus_enko.h) and scores held-out subject-verb-object combinations;
 * --train/--test read any "source<TAB>target" file. --translate translates
 * sentences (arguments or stdin lines) with a --load'ed model.
 * --checkpoint/--every write training checkpoints that --resume continues
 * exactly (resume.c, trainckpt.h). */
#include <errno.h>
#include <math.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "bleu.h"
#include "cli.h"
#include "corpus_enko.h"
#include "decode.h"
#include "model.h"
#include "model_io.h"
#include "pairs.h"
#include "resume.h"
#include "tapegrad.h"
#include "tg_layers.h"
#include "tg_optim.h"

static const char *prog = "seq2seq";

/* ------------------------------------------------------------------ options */

typedef s2s_options options;
typedef tg_cmdline cmdline;

static options defaults(void)
{
    options o;
    memset(&o, 0, sizeof o);
    o.valid_frac = 0.1;
    o.pairs = 20000;
    o.test_pairs = 1000;
    o.corpus_seed = 1;
    o.cell = "lstm";
    o.hidden = 256;
    o.embed = 64;
    o.layers = 1;
    o.feed_context = 1;
    o.reverse = 0;
    o.dropout = 0;
    o.batch = 64;
    o.lr = 3e-3;
    o.optim = "adam";
    o.clip = 5;
    o.epochs = 3;
    o.seconds = 150;
    o.every = 100;
    o.beam = 1;
    o.max_len = 60;
    o.len_alpha = 1.0;
    o.threads = 1;
    o.shards = 2;
    o.seed = 1;
    o.min_count = 1;
    o.max_tokens = S2S_MAX_TOKENS;
    o.show = 5;
    o.eval_batch = 256;
    return o;
}

/* The flag table over o, into c->flags. */
static void make_flags(options *o, cmdline *c)
{
    static char cells[64];
    snprintf(cells, sizeof cells, "%s", tg_cell_kind_names());
    const tg_flag flags[] = {
        {"train", TG_STR, &o->train, "training pairs, source<TAB>target per line; none: the built-in English->Korean corpus", 0, 0, NULL},
        {"test", TG_STR, &o->test, "test pairs; none: the built-in held-out set, or --valid-frac of --train", 0, 0, NULL},
        {"valid-frac", TG_DOUBLE, &o->valid_frac, "share of --train held out for testing when no --test", 0, 0.9, NULL},
        {"pairs", TG_INT, &o->pairs, "built-in corpus: training pairs", 1, 10000000, NULL},
        {"test-pairs", TG_INT, &o->test_pairs, "built-in corpus: held-out test pairs", 1, 100000, NULL},
        {"corpus-seed", TG_U64, &o->corpus_seed, "built-in corpus: generator seed", 0, 0, NULL},
        {"write-corpus", TG_STR, &o->write_corpus, "write the data as DIR/train.tsv and DIR/test.tsv", 0, 0, NULL},
        {"cell", TG_STR, &o->cell, "recurrent cell of encoder and decoder", 0, 0, cells},
        {"hidden", TG_INT, &o->hidden, "hidden units per layer", 1, 8192, NULL},
        {"embed", TG_INT, &o->embed, "embedding size", 1, 8192, NULL},
        {"layers", TG_INT, &o->layers, "recurrent layers (encoder and decoder each)", 1, TG_MAX_LAYERS, NULL},
        {"feed-context", TG_BOOL, &o->feed_context, "give every decoder step the encoder's final h", 0, 0, NULL},
        {"reverse", TG_BOOL, &o->reverse, "read the source backwards", 0, 0, NULL},
        {"dropout", TG_DOUBLE, &o->dropout, "dropout on embeddings, between layers and before the output", 0, 0.95, NULL},
        {"batch", TG_INT, &o->batch, "sentence pairs per training step", 1, 65536, NULL},
        {"lr", TG_DOUBLE, &o->lr, "learning rate", 0, 10, NULL},
        {"optim", TG_STR, &o->optim, "optimizer", 0, 0, "sgd,adam,adamw"},
        {"clip", TG_DOUBLE, &o->clip, "clip the gradient's global norm (0: off)", 0, 1e9, NULL},
        {"epochs", TG_INT, &o->epochs, "training epochs, counted from the run's start (0: evaluate/translate only)", 0, 1000000, NULL},
        {"steps", TG_INT, &o->steps, "stop training after this many steps, counted from the run's start (0: no limit)", 0, 1 << 30, NULL},
        {"seconds", TG_DOUBLE, &o->seconds, "stop training after this many seconds, then evaluate (0: no limit)", 0, 1e9, NULL},
        {"beam", TG_INT, &o->beam, "beam size for the final evaluation and --translate (1: greedy)", 1, 16, NULL},
        {"len-alpha", TG_DOUBLE, &o->len_alpha, "beam length normalisation: score = log p / len^alpha", 0, 5, NULL},
        {"max-len", TG_INT, &o->max_len, "longest output in tokens", 1, 1000, NULL},
        {"max-tokens", TG_INT, &o->max_tokens, "skip pairs with a side longer than this", 1, 10000, NULL},
        {"min-count", TG_INT, &o->min_count, "words seen fewer times become <unk>", 1, 1000000, NULL},
        {"lowercase", TG_BOOL, &o->lowercase, "lowercase --train/--test text", 0, 0, NULL},
        {"threads", TG_INT, &o->threads, "threads (one per shard; with --shards 1: inside kernels)", 1, 1024, NULL},
        {"shards", TG_INT, &o->shards, "data-parallel shards of each batch; results depend on this, not on --threads", 1, 256, NULL},
        {"seed", TG_U64, &o->seed, "seed for initialisation and batch order", 0, 0, NULL},
        {"save", TG_STR, &o->save, "save the model (and optimizer) here after every epoch", 0, 0, NULL},
        {"load", TG_STR, &o->load, "start from this saved model (its vocabularies and shape)", 0, 0, NULL},
        {"checkpoint", TG_STR, &o->checkpoint, "write a training checkpoint (all --resume needs) to FILE every --every steps and at the end", 0, 0, NULL},
        {"every", TG_INT, &o->every, "steps between training checkpoints (0: at the end only)", 0, 1 << 30, NULL},
        {"resume", TG_STR, &o->resume, "continue the run in training checkpoint FILE exactly; settings not given are taken from it", 0, 0, NULL},
        {"skip-nonfinite", TG_BOOL, &o->skip_nonfinite, "skip a step whose loss or gradient is NaN or infinite, instead of stopping with exit 1", 0, 0, NULL},
        {"translate", TG_BOOL, &o->translate, "translate the arguments (or stdin lines) with --load's model", 0, 0, NULL},
        {"show", TG_INT, &o->show, "test sentences to print at the end", 0, 1000, NULL},
        {"eval-batch", TG_INT, &o->eval_batch, "sentences per batch when decoding", 1, 65536, NULL},
        {"log", TG_STR, &o->log, "CSV metrics per epoch", 0, 0, NULL},
    };
    _Static_assert(sizeof flags / sizeof *flags <= TG_CLI_MAX_FLAGS, "raise TG_CLI_MAX_FLAGS");
    c->n = (int)(sizeof flags / sizeof *flags);
    memcpy(c->flags, flags, sizeof flags);
}

/* The run's checkpoint and output files. */
static tg_run_files run_files(const options *o)
{
    return (tg_run_files){o->checkpoint, o->resume, o->load, o->save, o->log};
}

/* Flags that exclude or need each other. */
static void check_combinations(const options *o, const cmdline *c, int argc, int first)
{
    if (!o->translate && first < argc)
        tg_cli_die_usage(prog, "unexpected argument '%s' (sentences go with --translate)",
                         c->argv[first]);
    if (o->translate && !o->load) tg_cli_die_usage(prog, "--translate needs --load MODEL");
    if (o->translate && (o->checkpoint || o->resume))
        tg_cli_die_usage(prog, "--translate does not train: --checkpoint and --resume do not apply");
    const tg_run_files files = run_files(o);
    tg_trainckpt_check_flags(prog, c, &files);
}

static void parse_options(int argc, char **argv, options *o, cmdline *c, tg_inherited *inh,
                          int *first_positional)
{
    *o = defaults();
    c->argc = argc;
    c->argv = argv;
    make_flags(o, c);
    tg_cli_parse(argc, argv, c->flags, c->n, prog,
                 "Encoder-decoder translation (English->Korean built in, or any TSV pair file).",
                 first_positional);
    check_combinations(o, c, argc, *first_positional);
    inh->n = 0;
    if (o->resume) s2s_inherit_settings(o->resume, c, inh);
    if (o->test && !o->train) tg_cli_die_usage(prog, "--test needs --train");
    /* a test hook: poison a gradient at this step (the non-finite guard) */
    o->fault_step = tg_cli_env_step(prog, "SEQ2SEQ_FAULT_STEP");
}

/* ------------------------------------------------------------------ data */

/* Pairs as id sequences. */
typedef struct id_set {
    size_t n;
    int **src, **tgt;
    int *src_len, *tgt_len;
    int max_src, max_tgt;
    long tokens; /* source + target tokens */
} id_set;

/* Encodes pairs; target words the vocabulary lacks become tgt_oov (<unk>
 * for training, -1 for references so they never match). */
static int encode_set(id_set *s, const s2s_pairs *p, const s2s_vocab *vs, const s2s_vocab *vt,
                      int tgt_oov)
{
    memset(s, 0, sizeof *s);
    s->n = p->n;
    s->src = calloc(p->n + 1, sizeof *s->src);
    s->tgt = calloc(p->n + 1, sizeof *s->tgt);
    s->src_len = calloc(p->n + 1, sizeof *s->src_len);
    s->tgt_len = calloc(p->n + 1, sizeof *s->tgt_len);
    if (!s->src || !s->tgt || !s->src_len || !s->tgt_len) return -1;
    for (size_t i = 0; i < p->n; i++) {
        int ns = s2s_count_tokens(p->src[i]), nt = s2s_count_tokens(p->tgt[i]);
        s->src[i] = malloc((size_t)(ns + 1) * sizeof **s->src);
        s->tgt[i] = malloc((size_t)(nt + 1) * sizeof **s->tgt);
        if (!s->src[i] || !s->tgt[i]) return -1;
        s->src_len[i] = s2s_vocab_encode(vs, p->src[i], s->src[i], ns, S2S_UNK);
        s->tgt_len[i] = s2s_vocab_encode(vt, p->tgt[i], s->tgt[i], nt, tgt_oov);
        if (s->src_len[i] > s->max_src) s->max_src = s->src_len[i];
        if (s->tgt_len[i] > s->max_tgt) s->max_tgt = s->tgt_len[i];
        s->tokens += s->src_len[i] + s->tgt_len[i];
    }
    return 0;
}

static void free_set(id_set *s)
{
    for (size_t i = 0; i < s->n; i++) {
        if (s->src) free(s->src[i]);
        if (s->tgt) free(s->tgt[i]);
    }
    free(s->src);
    free(s->tgt);
    free(s->src_len);
    free(s->tgt_len);
}

/* A pair file that cannot be read; from_ckpt: --resume's checkpoint when
 * the file came from it (no --train, --test), else NULL. */
static _Noreturn void pairs_error(const char *from_ckpt, const char *what, const char *usage,
                                  const char *err)
{
    if (from_ckpt) tg_trainckpt_die_inherited(prog, from_ckpt, what, usage, err);
    tg_cli_die(prog, "%s", err);
}

static void load_pairs(const options *o, const char *from_ckpt, s2s_pairs *train, s2s_pairs *test,
                       s2s_tokenize_options *tok)
{
    char err[512];
    s2s_pairs_init(train);
    s2s_pairs_init(test);
    if (!o->train) {
        enko_options eo;
        enko_options_default(&eo);
        eo.seed = o->corpus_seed;
        eo.n_train = o->pairs;
        eo.n_test = o->test_pairs;
        if (enko_generate(&eo, train, test, NULL, NULL, err, sizeof err) != 0)
            tg_cli_die(prog, "built-in corpus: %s", err);
        return;
    }
    s2s_read_options ro;
    s2s_read_options_default(&ro);
    ro.tok = *tok;
    ro.max_tokens = o->max_tokens;
    if (s2s_pairs_read_tsv(train, o->train, &ro, err, sizeof err) != 0)
        pairs_error(from_ckpt, "training pairs", "--train FILE", err);
    if (train->skipped_long)
        fprintf(stderr, "%s: %s: skipped %zu pairs longer than %d tokens\n", prog, o->train,
                train->skipped_long, o->max_tokens);
    if (o->test) {
        if (s2s_pairs_read_tsv(test, o->test, &ro, err, sizeof err) != 0)
            pairs_error(from_ckpt, "test pairs", "--test FILE", err);
        if (test->skipped_long)
            fprintf(stderr, "%s: %s: skipped %zu pairs longer than %d tokens\n", prog, o->test,
                    test->skipped_long, o->max_tokens);
    } else if (s2s_pairs_split(train, test, o->valid_frac, o->seed) != 0) {
        tg_cli_die(prog, "out of memory");
    }
    if (train->n == 0) tg_cli_die(prog, "%s: no sentence pairs", o->train);
}

static void write_corpus(const char *dir, const s2s_pairs *train, const s2s_pairs *test)
{
    char path[1024], err[1200];
    snprintf(path, sizeof path, "%s/train.tsv", dir);
    if (s2s_pairs_write_tsv(train, path, err, sizeof err) != 0) tg_cli_die(prog, "%s", err);
    snprintf(path, sizeof path, "%s/test.tsv", dir);
    if (s2s_pairs_write_tsv(test, path, err, sizeof err) != 0) tg_cli_die(prog, "%s", err);
    fprintf(stderr, "%s: wrote %zu + %zu pairs under %s\n", prog, train->n, test->n, dir);
}

/* ------------------------------------------------------------------ batches */

typedef struct keyed {
    uint64_t key;
    size_t index;
} keyed;

typedef struct batcher {
    size_t n, nb, B;
    size_t *order;  /* pair indices, grouped by length */
    size_t *starts; /* first index into order of each batch, in training order */
    keyed *tmp;
} batcher;

static int batcher_init(batcher *b, size_t n, int B)
{
    b->n = n;
    b->B = (size_t)B;
    b->nb = (n + b->B - 1) / b->B;
    b->order = malloc(n * sizeof *b->order);
    b->starts = malloc(b->nb * sizeof *b->starts);
    b->tmp = malloc(n * sizeof *b->tmp);
    return b->order && b->starts && b->tmp ? 0 : -1;
}

static void batcher_free(batcher *b)
{
    free(b->order);
    free(b->starts);
    free(b->tmp);
}

static int by_key(const void *a, const void *b)
{
    uint64_t x = ((const keyed *)a)->key, y = ((const keyed *)b)->key;
    return x < y ? -1 : x > y;
}

/* Buckets by length: sort by (source length, target length, random), cut
 * into batches of similar length, and shuffle the batches. */
static void batcher_epoch(batcher *b, const id_set *s, tg_rng *r)
{
    for (size_t i = 0; i < b->n; i++) {
        b->tmp[i].index = i;
        b->tmp[i].key = ((uint64_t)s->src_len[i] << 48) | ((uint64_t)s->tgt_len[i] << 32) |
                        (tg_rng_u64(r) >> 32);
    }
    qsort(b->tmp, b->n, sizeof *b->tmp, by_key);
    for (size_t i = 0; i < b->n; i++) b->order[i] = b->tmp[i].index;
    for (size_t k = 0; k < b->nb; k++) b->starts[k] = k * b->B;
    for (size_t k = b->nb; k > 1; k--) {
        size_t j = tg_rng_below(r, (uint32_t)k), x = b->starts[k - 1];
        b->starts[k - 1] = b->starts[j];
        b->starts[j] = x;
    }
}

/* ------------------------------------------------------------------ training */

/* A run stops after this many skipped steps in a row: the model is not
 * recovering, and skipping on would only burn time. */
#define MAX_SKIP_STREAK 100

typedef struct trainer {
    const options *o;
    s2s_model *m;
    tg_tape *tape;          /* evaluation, and training with one shard */
    tg_workers *workers;    /* training with several shards */
    s2s_model *shard_model; /* each worker's view of the parameters */
    tg_optim *opt;
    tg_trainckpt *ck;       /* the non-finite guard; --checkpoint, --resume */
    /* the loop's state, in training checkpoints */
    tg_rng rng;             /* batch order (and dropout with one shard) */
    tg_rng order_rng;       /* rng as it was before this epoch's order was drawn */
    uint64_t steps;         /* steps run (applied or skipped), from the run's start */
    uint64_t epoch, batch;  /* the epoch in progress (from 1) and its batches done */
    uint64_t skipped, streak; /* steps skipped as non-finite; of them, in a row now */
    double epoch_loss;      /* sum of this epoch's applied steps' losses ... */
    uint64_t epoch_losses;  /* ... and their count */
    double train_seconds;   /* training time, all the run's processes together */
    /* this process only */
    double run_seconds;     /* its training time */
    long tokens;            /* source + target tokens it trained on */
    int unsaved;            /* the state changed since the last checkpoint */
} trainer;

/* The loss of pairs idx[lo..hi) on tape t, weighted by its share of the
 * batch's target tokens, backpropagated. Returns the weighted loss. */
static double shard_step(trainer *tr, const s2s_model *m, tg_tape *t, const id_set *s,
                         const size_t *idx, int lo, int hi, long batch_tgt, tg_rng *drop)
{
    int B = hi - lo;
    if (B <= 0) return 0;
    const int **src = tg_tape_alloc(t, (size_t)B * sizeof *src);
    const int **tgt = tg_tape_alloc(t, (size_t)B * sizeof *tgt);
    int *sl = tg_tape_ints(t, (size_t)B), *tl = tg_tape_ints(t, (size_t)B);
    for (int i = 0; i < B; i++) {
        size_t k = idx[lo + i];
        src[i] = s->src[k], tgt[i] = s->tgt[k];
        sl[i] = s->src_len[k], tl[i] = s->tgt_len[k];
    }
    s2s_batch b;
    s2s_batch_make(&b, t, &m->cfg, B, src, sl, tgt, tl, 0, 0);
    tg_tensor *loss = s2s_loss(t, m, &b, tr->o->dropout > 0 ? drop : NULL, NULL);
    tg_tensor *share = tg_scale(t, loss, (double)b.n_tgt / (double)batch_tgt);
    tg_backward(t, share);
    return share->data[0];
}

typedef struct shard_job {
    trainer *tr;
    const id_set *s;
    const size_t *idx;
    int B;
    long batch_tgt;
} shard_job;

static double run_shard(int shard, tg_tape *t, tg_params *params, void *ctx)
{
    (void)params; /* the worker's model views were built over it */
    shard_job *j = ctx;
    int S = j->tr->o->shards;
    tg_rng drop; /* per step and shard: the same whatever the thread count */
    tg_rng_seed(&drop, j->tr->o->seed * 0x9e3779b97f4a7c15ull + (uint64_t)j->tr->steps * 256 +
                           (uint64_t)shard);
    return shard_step(j->tr, &j->tr->shard_model[shard], t, j->s, j->idx, j->B * shard / S,
                      j->B * (shard + 1) / S, j->batch_tgt, &drop);
}

/* 0 when the step's loss, gradients and parameters are finite and the
 * gradient is clipped; else -1 with "step N: ... is not finite; stopping,
 * last checkpoint kept" in err. */
static int check_and_clip(trainer *tr, double loss, char *err, size_t errlen)
{
    /* before clipping, which would spread a NaN over every gradient: the
     * message names the parameter where it arose */
    if (tg_trainckpt_guard(tr->ck, loss, tr->steps + 1, err, errlen) != 0) return -1;
    double norm = tg_clip_grad_norm(tr->m->params, tr->o->clip);
    if (isfinite(norm)) return 0; /* finite values whose squares overflowed */
    snprintf(err, errlen, "step %llu: gradient norm is %g; stopping, last checkpoint kept",
             (unsigned long long)(tr->steps + 1), norm);
    return -1;
}

/* Whether to apply the step's update: yes when everything is finite; no
 * with --skip-nonfinite (said on stderr); otherwise exits 1 at once: no
 * update, no checkpoint, no --save. */
static int apply_step(trainer *tr, double loss, tg_progress *pr)
{
    char err[1024];
    if (check_and_clip(tr, loss, err, sizeof err) == 0) return 1;
    tg_progress_done(pr);
    if (!tr->o->skip_nonfinite)
        tg_cli_die(prog, "%s (try a smaller --lr or --clip, or --skip-nonfinite)", err);
    char *why = strstr(err, "; stopping"); /* the guard's words for the stopping case */
    if (why) *why = '\0';
    if (tr->streak + 1 >= MAX_SKIP_STREAK)
        tg_cli_die(prog, "%s: %d steps in a row were not finite; stopping, last checkpoint kept",
                   err, MAX_SKIP_STREAK);
    fprintf(stderr, "%s: %s; step skipped (--skip-nonfinite)\n", prog, err);
    return 0;
}

/* One training step on pairs idx[0..B): forward and backward, the
 * non-finite guard, clipping, the update (unless skipped). */
static void train_step(trainer *tr, const id_set *s, const size_t *idx, int B, tg_progress *pr)
{
    long batch_tgt = 0;
    for (int i = 0; i < B; i++) {
        batch_tgt += s->tgt_len[idx[i]] + 1;
        tr->tokens += s->src_len[idx[i]] + s->tgt_len[idx[i]];
    }
    double loss;
    tg_params_zero_grad(tr->m->params);
    if (tr->workers) {
        shard_job j = {tr, s, idx, B, batch_tgt};
        loss = tg_workers_run(tr->workers, tr->o->threads, run_shard, &j);
    } else {
        tg_tape_reset(tr->tape);
        loss = shard_step(tr, tr->m, tr->tape, s, idx, 0, B, batch_tgt, &tr->rng);
    }
    if (tr->o->fault_step == tr->steps + 1) tg_params_grad(tr->m->params)[0] = (tg_real)NAN;
    int applied = apply_step(tr, loss, pr);
    tr->steps++;
    tr->unsaved = 1;
    if (!applied) {
        tr->skipped++;
        tr->streak++;
        return;
    }
    tg_optim_step(tr->opt, tr->m->params);
    tr->streak = 0;
    tr->epoch_loss += loss;
    tr->epoch_losses++;
}

typedef struct scores {
    double exact, bleu;
} scores;

/* Decodes every source of s and scores it against the references. */
static scores evaluate(trainer *tr, const id_set *s, int beam, int **out, int *out_len)
{
    s2s_decode_options d;
    s2s_decode_options_default(&d);
    d.beam = beam;
    d.max_len = tr->o->max_len;
    d.len_alpha = tr->o->len_alpha;
    d.batch = tr->o->eval_batch;
    if (s2s_translate(tr->tape, tr->m, (const int *const *)s->src, s->src_len, s->n, &d, out,
                      out_len) != 0)
        tg_cli_die(prog, "out of memory while decoding");
    s2s_bleu b;
    s2s_bleu_init(&b);
    for (size_t i = 0; i < s->n; i++) s2s_bleu_add(&b, out[i], out_len[i], s->tgt[i], s->tgt_len[i]);
    return (scores){s2s_bleu_exact(&b), s2s_bleu_score(&b)};
}

static int **alloc_outputs(size_t n, int max_len, int **lens)
{
    int **out = calloc(n + 1, sizeof *out);
    *lens = calloc(n + 1, sizeof **lens);
    if (!out || !*lens) tg_cli_die(prog, "out of memory");
    for (size_t i = 0; i < n; i++)
        if (!(out[i] = malloc((size_t)max_len * sizeof **out))) tg_cli_die(prog, "out of memory");
    return out;
}

static void free_outputs(int **out, size_t n, int *lens)
{
    for (size_t i = 0; out && i < n; i++) free(out[i]);
    free(out);
    free(lens);
}

static void save_model(const options *o, trainer *tr, const s2s_vocab *vs, const s2s_vocab *vt,
                       const s2s_tokenize_options *tok)
{
    char err[1024];
    if (!o->save) return;
    if (s2s_save(o->save, tr->m, tr->opt, vs, vt, tok, err, sizeof err) != 0)
        tg_cli_die(prog, "%s", err);
}

static void save_checkpoint(trainer *tr)
{
    char err[1024];
    if (tg_trainckpt_save(tr->ck, tr->o->checkpoint, err, sizeof err) != 0)
        tg_cli_die(prog, "%s", err);
    tr->unsaved = 0;
}

static volatile sig_atomic_t interrupted;

static void on_interrupt(int sig)
{
    interrupted = 1;
    signal(sig, SIG_DFL); /* a second Ctrl-C (or TERM) ends the program at once */
}

/* Why training stops now (NULL: it goes on), short of running out of epochs. */
static const char *stop_reason(const trainer *tr)
{
    const options *o = tr->o;
    if (interrupted) return "interrupted";
    if (o->steps > 0 && tr->steps >= (uint64_t)o->steps) return "--steps reached";
    if (o->seconds > 0 && tr->train_seconds >= o->seconds) return "--seconds reached";
    return NULL;
}

static void add_time(trainer *tr, double t0)
{
    double dt = tg_clock_seconds() - t0;
    tr->train_seconds += dt;
    tr->run_seconds += dt;
}

/* The batch order of the epoch in progress. A new epoch draws it from the
 * data generator (keeping the generator's state before, for checkpoints);
 * an epoch resumed in the middle draws it again from that saved state. */
static void begin_epoch(trainer *tr, batcher *bt, const id_set *s)
{
    double t0 = tg_clock_seconds();
    if (tr->batch == 0) {
        tr->order_rng = tr->rng;
        batcher_epoch(bt, s, &tr->rng);
        tr->epoch_loss = 0;
        tr->epoch_losses = 0;
    } else {
        tg_rng r = tr->order_rng;
        batcher_epoch(bt, s, &r);
    }
    add_time(tr, t0);
}

/* The rest of the epoch in progress, or until a stop; returns the reason
 * of a stop (NULL: the epoch is done). */
static const char *train_epoch(trainer *tr, const batcher *bt, const id_set *s, tg_progress *pr)
{
    const options *o = tr->o;
    const char *stop = NULL;
    for (size_t k = (size_t)tr->batch; k < bt->nb && !stop; k++) {
        double t0 = tg_clock_seconds();
        size_t first = bt->starts[k];
        int B = (int)(first + bt->B <= bt->n ? bt->B : bt->n - first);
        train_step(tr, s, bt->order + first, B, pr);
        tr->batch = k + 1;
        add_time(tr, t0);
        tg_progress_update(pr, 0, "epoch %d/%d  batch %zu/%zu  loss %.4f  %.0f tok/s  %.0fs",
                           (int)tr->epoch, o->epochs, k + 1, bt->nb,
                           tr->epoch_loss / (double)(tr->epoch_losses ? tr->epoch_losses : 1),
                           (double)tr->tokens / tr->run_seconds, tr->train_seconds);
        if (o->checkpoint && o->every > 0 && tr->steps % (uint64_t)o->every == 0)
            save_checkpoint(tr);
        stop = stop_reason(tr);
    }
    return stop;
}

/* Runs the epochs from the one in progress (or until --steps, --seconds or
 * Ctrl-C), evaluating greedily after each; *evaluated says whether any was. */
static scores train(trainer *tr, const id_set *train_set, const id_set *test_set, tg_csv *csv,
                    const s2s_vocab *vs, const s2s_vocab *vt, const s2s_tokenize_options *tok,
                    int **out, int *lens, int *evaluated)
{
    const options *o = tr->o;
    batcher bt;
    tg_progress pr;
    scores sc = {0, 0};
    if (batcher_init(&bt, train_set->n, o->batch) != 0) tg_cli_die(prog, "out of memory");
    tg_progress_init(&pr, stderr, 10.0);
    const char *stop = NULL;
    while (!stop && tr->epoch <= (uint64_t)o->epochs) {
        begin_epoch(tr, &bt, train_set);
        stop = train_epoch(tr, &bt, train_set, &pr);
        tg_progress_done(&pr);
        sc = evaluate(tr, test_set, 1, out, lens);
        *evaluated = 1;
        double tps = tr->run_seconds > 0 ? (double)tr->tokens / tr->run_seconds : 0;
        double loss = tr->epoch_loss / (double)(tr->epoch_losses ? tr->epoch_losses : 1);
        printf("epoch %d: loss %.4f  test exact %.4f  bleu %.2f  %.0f tok/s  %.1fs%s%s%s\n",
               (int)tr->epoch, loss, sc.exact, sc.bleu, tps, tr->train_seconds,
               stop ? "  (" : "", stop ? stop : "", stop ? ")" : "");
        fflush(stdout);
        tg_csv_row(csv, "%d,%llu,%.6f,%.6f,%.4f,%.1f,%.3f", (int)tr->epoch,
                   (unsigned long long)tr->steps, loss, sc.exact, sc.bleu, tps, tr->train_seconds);
        save_model(o, tr, vs, vt, tok);
        if (tr->batch == bt.nb) { /* done: a checkpoint from here on starts the next one */
            tr->epoch++;
            tr->batch = 0;
            tr->unsaved = 1;
        }
    }
    batcher_free(&bt);
    return sc;
}

/* ------------------------------------------------------------------ output */

static void print_ids(const char *label, const s2s_vocab *v, const int *ids, int n)
{
    printf("  %s", label);
    for (int i = 0; i < n; i++) printf("%s%s", i ? " " : "", ids[i] >= 0 ? v->words[ids[i]] : "<unk>");
    printf("\n");
}

static void show_examples(const options *o, const s2s_pairs *test, const s2s_vocab *vt,
                          int **out, const int *lens, const id_set *s)
{
    size_t n = (size_t)o->show < test->n ? (size_t)o->show : test->n;
    if (n == 0) return;
    printf("test sentences (%s):\n", o->beam > 1 ? "beam search" : "greedy");
    for (size_t i = 0; i < n; i++) {
        int ok = lens[i] == s->tgt_len[i] && memcmp(out[i], s->tgt[i], (size_t)lens[i] * sizeof(int)) == 0;
        printf("  src: %s\n  ref: %s\n", test->src[i], test->tgt[i]);
        print_ids(ok ? "out: " : "out! ", vt, out[i], lens[i]);
    }
}

/* ------------------------------------------------------------------ translate */

/* The longest input --translate reads (its arena is sized for it). */
#define TRANSLATE_MAX_TOKENS 1000

static int translate_line(trainer *tr, const char *line, const s2s_vocab *vs, const s2s_vocab *vt,
                          const s2s_tokenize_options *tok)
{
    size_t n = strlen(line), bad;
    if (!s2s_utf8_valid(line, n, &bad)) return -1;
    char *toks = malloc(S2S_TOKENIZED_SIZE(n));
    int *ids = malloc((n + 1) * sizeof *ids), *out = malloc((size_t)tr->o->max_len * sizeof *out);
    if (!toks || !ids || !out) tg_cli_die(prog, "out of memory");
    int k = s2s_tokenize(line, tok, toks), len = 0;
    if (k > TRANSLATE_MAX_TOKENS) {
        fprintf(stderr, "%s: input of %d tokens cut to its first %d\n", prog, k,
                TRANSLATE_MAX_TOKENS);
        k = TRANSLATE_MAX_TOKENS;
    }
    if (k > 0) {
        s2s_vocab_encode(vs, toks, ids, k, S2S_UNK);
        s2s_decode_options d;
        s2s_decode_options_default(&d);
        d.beam = tr->o->beam;
        d.max_len = tr->o->max_len;
        d.len_alpha = tr->o->len_alpha;
        d.batch = 1;
        const int *src[1] = {ids};
        int *outs[1] = {out};
        if (s2s_translate(tr->tape, tr->m, src, &k, 1, &d, outs, &len) != 0)
            tg_cli_die(prog, "out of memory while decoding");
    }
    for (int i = 0; i < len; i++) printf("%s%s", i ? " " : "", vt->words[out[i]]);
    printf("\n");
    fflush(stdout);
    free(toks);
    free(ids);
    free(out);
    return 0;
}

static void run_translate(trainer *tr, int argc, char **argv, int first, const s2s_vocab *vs,
                          const s2s_vocab *vt, const s2s_tokenize_options *tok)
{
    double t0 = tg_clock_seconds();
    long n = 0;
    if (first < argc) {
        for (int i = first; i < argc; i++, n++)
            if (translate_line(tr, argv[i], vs, vt, tok) != 0)
                tg_cli_die(prog, "argument %d: invalid UTF-8", i - first + 1);
    } else {
        char *line = NULL;
        size_t cap = 0;
        ssize_t got;
        while ((got = getline(&line, &cap, stdin)) >= 0) {
            while (got > 0 && (line[got - 1] == '\n' || line[got - 1] == '\r')) line[--got] = '\0';
            if (translate_line(tr, line, vs, vt, tok) != 0)
                tg_cli_die(prog, "<stdin>:%ld: invalid UTF-8", n + 1);
            n++;
        }
        free(line);
    }
    tg_result("translated=%ld seconds=%.2f", n, tg_clock_seconds() - t0);
}

/* ------------------------------------------------------------------ main */

static tg_optim *make_optim(const options *o, const s2s_model *m)
{
    tg_optim_kind kind;
    char err[256];
    if (tg_optim_kind_parse(o->optim, &kind) != 0) tg_cli_die_usage(prog, "--optim: unknown '%s'", o->optim);
    tg_optim_config cfg = tg_optim_defaults(kind);
    cfg.lr = o->lr;
    tg_optim *opt = tg_optim_new(&cfg, tg_params_numel(m->params), err, sizeof err);
    if (!opt) tg_cli_die(prog, "optimizer: %s", err);
    return opt;
}

static void build_model(const options *o, s2s_model *m, const s2s_vocab *vs, const s2s_vocab *vt)
{
    s2s_config c;
    memset(&c, 0, sizeof c);
    c.cell = tg_cell_kind_by_name(o->cell);
    c.embed = o->embed;
    c.hidden = o->hidden;
    c.layers = o->layers;
    c.dropout = o->dropout;
    c.src_vocab = vs->n;
    c.tgt_vocab = vt->n;
    c.feed_context = o->feed_context;
    c.reverse_source = o->reverse;
    if (s2s_model_init(m, &c, o->seed) != 0) tg_cli_die(prog, "out of memory building the model");
}

/* Data-parallel training: one tape and one parameter replica per shard,
 * with the model's tensors looked up by name on each replica. */
static void start_workers(const options *o, trainer *tr, int max_src, int max_tgt)
{
    int rows = (o->batch + o->shards - 1) / o->shards;
    size_t arena = s2s_arena_bytes(&tr->m->cfg, rows, max_src, max_tgt + 1);
    tr->workers = tg_workers_new(tr->m->params, o->shards, arena);
    tr->shard_model = calloc((size_t)o->shards, sizeof *tr->shard_model);
    if (!tr->workers || !tr->shard_model) tg_cli_die(prog, "out of memory (%d shards)", o->shards);
    for (int s = 0; s < o->shards; s++)
        if (s2s_model_init_on(&tr->shard_model[s], &tr->m->cfg,
                              tg_workers_params(tr->workers, s), o->seed) != 0)
            tg_cli_die(prog, "out of memory (shard %d)", s);
}

/* Arena use against capacity: how much margin the size estimates leave. */
static void report_arenas(trainer *tr)
{
    tg_tape *t = tr->workers ? tg_workers_tape(tr->workers, 0) : tr->tape;
    fprintf(stderr, "%s: arena high water: training %.1f of %.1f MiB, decoding %.1f of %.1f MiB\n",
            prog, (double)tg_tape_arena_high_water(t) / 1048576.0,
            (double)tg_tape_arena_capacity(t) / 1048576.0,
            (double)tg_tape_arena_high_water(tr->tape) / 1048576.0,
            (double)tg_tape_arena_capacity(tr->tape) / 1048576.0);
}

static size_t arena_for(const options *o, const s2s_config *c, int max_src, int max_tgt)
{
    size_t train = o->shards > 1 ? 0 : s2s_arena_bytes(c, o->batch, max_src, max_tgt + 1);
    size_t dec = s2s_decode_arena_bytes(c, o->eval_batch, o->beam, max_src);
    return train > dec ? train : dec;
}

/* Evaluates after training: greedy scores come from the last epoch; with
 * --beam K (or when no epoch was evaluated) the test set is decoded again. */
static scores final_scores(trainer *tr, const id_set *test_s, scores last, int evaluated,
                           int **out, int *lens)
{
    const options *o = tr->o;
    if (evaluated && o->beam == 1) return last;
    if (o->beam > 1 && evaluated) printf("greedy: exact %.4f  bleu %.2f\n", last.exact, last.bleu);
    double t0 = tg_clock_seconds();
    scores sc = evaluate(tr, test_s, o->beam, out, lens);
    printf("%s: exact %.4f  bleu %.2f  (%.1fs to decode %zu sentences)\n",
           o->beam > 1 ? "beam" : "greedy", sc.exact, sc.bleu, tg_clock_seconds() - t0, test_s->n);
    return sc;
}

/* ------------------------------------------------------------------ checkpoints */

/* Every piece of state the loop reads, for the guard, --checkpoint and
 * --resume; the workers' replicas share the master's values. */
static void make_trainckpt(trainer *tr, const s2s_vocab *vs, const s2s_vocab *vt,
                           const s2s_pairs *train_p)
{
    tg_trainckpt *ck = tg_trainckpt_new(prog, tr->m->params, tr->opt);
    if (!ck || s2s_register_config(ck, tr->o, &tr->m->cfg, vs, vt, train_p) != 0 ||
        tg_trainckpt_rng(ck, "data", &tr->rng) != 0 ||
        tg_trainckpt_rng(ck, "order", &tr->order_rng) != 0 ||
        tg_trainckpt_u64(ck, "step", &tr->steps) != 0 ||
        tg_trainckpt_u64(ck, "epoch", &tr->epoch) != 0 ||
        tg_trainckpt_u64(ck, "batch", &tr->batch) != 0 ||
        tg_trainckpt_u64(ck, "skipped", &tr->skipped) != 0 ||
        tg_trainckpt_u64(ck, "skip_streak", &tr->streak) != 0 ||
        tg_trainckpt_f64(ck, "epoch_loss", &tr->epoch_loss) != 0 ||
        tg_trainckpt_u64(ck, "epoch_losses", &tr->epoch_losses) != 0 ||
        tg_trainckpt_f64(ck, "train_seconds", &tr->train_seconds) != 0)
        tg_cli_die(prog, "out of memory");
    tr->ck = ck;
}

/* Loads everything registered; exits 1 naming the file and field (the file
 * is only read). */
static void resume_run(trainer *tr, uint64_t nb)
{
    const options *o = tr->o;
    char err[1024];
    if (tg_trainckpt_load(tr->ck, o->resume, err, sizeof err) != 0) tg_cli_die(prog, "%s", err);
    /* what the file cannot check: the position lies inside an epoch */
    if (tr->epoch < 1)
        tg_cli_die(prog, "%s: metadata 'u64.epoch' is 0 (epochs count from 1)", o->resume);
    if (tr->batch > nb)
        tg_cli_die(prog, "%s: metadata 'u64.batch' is %llu, beyond the %llu batches of an epoch",
                   o->resume, (unsigned long long)tr->batch, (unsigned long long)nb);
}

/* Whether there is nothing (more) to train; says so after a resume. */
static int nothing_to_train(const trainer *tr)
{
    const options *o = tr->o;
    const char *stop = stop_reason(tr);
    if (o->epochs > 0 && tr->epoch > (uint64_t)o->epochs)
        fprintf(stderr, "%s: already past epoch %d of --epochs %d: nothing to train\n", prog,
                o->epochs, o->epochs);
    else if (o->epochs > 0 && stop)
        fprintf(stderr, "%s: already at step %llu, %.1fs of training (%s): nothing to train\n",
                prog, (unsigned long long)tr->steps, tr->train_seconds, stop);
    return o->epochs == 0 || tr->epoch > (uint64_t)o->epochs || stop;
}

/* --log FILE; a resumed run appends to the log it continues. */
static void open_log(const options *o, tg_csv *csv)
{
    char err[1024];
    if (tg_csv_open_run(csv, o->log, "epoch,step,train_loss,test_exact,test_bleu,tokens_per_s,"
                        "seconds", o->resume != NULL, err, sizeof err) != 0)
        tg_cli_die(prog, "%s", err);
}

/* Training (unless there is nothing to train), then the final checkpoint. */
static scores run_training(trainer *tr, const id_set *train_s, const id_set *test_s,
                           tg_csv *csv, const s2s_vocab *vs, const s2s_vocab *vt,
                           const s2s_tokenize_options *tok, int **out, int *lens, int *evaluated)
{
    const options *o = tr->o;
    scores sc = {0, 0};
    *evaluated = 0;
    if (!nothing_to_train(tr)) {
        signal(SIGINT, on_interrupt);
        signal(SIGTERM, on_interrupt);
        sc = train(tr, train_s, test_s, csv, vs, vt, tok, out, lens, evaluated);
        signal(SIGINT, SIG_DFL);
        signal(SIGTERM, SIG_DFL);
        if (interrupted)
            fprintf(stderr, "%s: interrupted at step %llu\n", prog, (unsigned long long)tr->steps);
    }
    if (o->checkpoint) {
        if (tr->unsaved || !o->resume || strcmp(o->resume, o->checkpoint) != 0) save_checkpoint(tr);
        fprintf(stderr, "%s: checkpoint %s at step %llu\n", prog, o->checkpoint,
                (unsigned long long)tr->steps);
    }
    if (tr->skipped)
        fprintf(stderr, "%s: %llu of %llu steps skipped as not finite\n", prog,
                (unsigned long long)tr->skipped, (unsigned long long)tr->steps);
    return sc;
}

/* --translate: the loaded model over the arguments or stdin. */
static int translate_main(trainer *tr, int argc, char **argv, int first, s2s_vocab *vs,
                          s2s_vocab *vt, const s2s_tokenize_options *tok)
{
    const options *o = tr->o;
    tr->tape = tg_tape_new(s2s_decode_arena_bytes(&tr->m->cfg, 1, o->beam, TRANSLATE_MAX_TOKENS));
    if (!tr->tape) tg_cli_die(prog, "out of memory (arena)");
    tg_tape_set_threads(tr->tape, o->threads);
    run_translate(tr, argc, argv, first, vs, vt, tok);
    tg_tape_free(tr->tape);
    s2s_model_free(tr->m);
    s2s_vocab_free(vs);
    s2s_vocab_free(vt);
    return 0;
}

/* Training and evaluation: data, vocabularies (or the loaded ones), model,
 * epochs, scores, examples, the result line. pairs_from: the checkpoint
 * that gave the pair files, or NULL. */
static int train_main(trainer *tr, const char *pairs_from, s2s_vocab *vs, s2s_vocab *vt,
                      s2s_tokenize_options *tok)
{
    const options *o = tr->o;
    s2s_model *m = tr->m;
    char err[1024];
    s2s_pairs train_p, test_p;
    load_pairs(o, pairs_from, &train_p, &test_p, tok);
    if (o->write_corpus) write_corpus(o->write_corpus, &train_p, &test_p);
    if (test_p.n == 0) tg_cli_die(prog, "no test pairs (use --test or a larger --valid-frac)");
    if (!o->load) {
        if (s2s_vocab_build(vs, train_p.src, train_p.n, o->min_count) != 0 ||
            s2s_vocab_build(vt, train_p.tgt, train_p.n, o->min_count) != 0)
            tg_cli_die(prog, "out of memory building the vocabularies");
        build_model(o, m, vs, vt);
    }
    id_set train_s, test_s;
    if (encode_set(&train_s, &train_p, vs, vt, S2S_UNK) != 0 ||
        encode_set(&test_s, &test_p, vs, vt, -1) != 0)
        tg_cli_die(prog, "out of memory encoding the pairs");

    int max_src = train_s.max_src > test_s.max_src ? train_s.max_src : test_s.max_src;
    tr->tape = tg_tape_new(arena_for(o, &m->cfg, max_src, train_s.max_tgt));
    if (!tr->tape) tg_cli_die(prog, "out of memory (arena)");
    tg_tape_set_threads(tr->tape, o->shards > 1 ? 1 : o->threads);
    if (o->shards > 1) start_workers(o, tr, max_src, train_s.max_tgt);
    tr->opt = make_optim(o, m);
    if (o->load && s2s_load_optim(o->load, tr->opt, err, sizeof err) != 0)
        fprintf(stderr, "%s: optimizer state not restored (%s); starting it fresh\n", prog, err);
    make_trainckpt(tr, vs, vt, &train_p);
    uint64_t nb = (train_s.n + (size_t)o->batch - 1) / (size_t)o->batch; /* batches an epoch */
    if (o->resume) resume_run(tr, nb); /* a refusal is the only line on stderr */
    fprintf(stderr,
            "%s: %zu training pairs, %zu test pairs; vocabulary %d source, %d target; %s %dx%d "
            "(%zu parameters)\n",
            prog, train_p.n, test_p.n, vs->n, vt->n, m->cfg.cell->name, m->cfg.layers,
            m->cfg.hidden, tg_params_numel(m->params));
    if (o->resume)
        fprintf(stderr, "%s: resumed %s at step %llu (epoch %llu, batch %llu of %llu)\n", prog,
                o->resume, (unsigned long long)tr->steps, (unsigned long long)tr->epoch,
                (unsigned long long)tr->batch, (unsigned long long)nb);

    tg_csv csv;
    open_log(o, &csv);
    int *lens, **out = alloc_outputs(test_s.n, o->max_len, &lens), evaluated;
    scores sc = run_training(tr, &train_s, &test_s, &csv, vs, vt, tok, out, lens, &evaluated);
    sc = final_scores(tr, &test_s, sc, evaluated, out, lens);
    show_examples(o, &test_p, vt, out, lens, &test_s);
    if (tg_csv_close(&csv, err, sizeof err) != 0) tg_cli_die(prog, "%s", err);
    report_arenas(tr);
    double tps = tr->run_seconds > 0 ? (double)tr->tokens / tr->run_seconds : 0;
    tg_result("exact_match=%.4f bleu=%.2f test_pairs=%zu tokens_per_s=%.0f seconds=%.1f", sc.exact,
              sc.bleu, test_s.n, tps, tr->train_seconds);

    tg_trainckpt_free(tr->ck);
    free_outputs(out, test_s.n, lens);
    free_set(&train_s);
    free_set(&test_s);
    s2s_pairs_free(&train_p);
    s2s_pairs_free(&test_p);
    tg_optim_free(tr->opt);
    tg_workers_free(tr->workers);
    free(tr->shard_model);
    tg_tape_free(tr->tape);
    s2s_model_free(m);
    s2s_vocab_free(vs);
    s2s_vocab_free(vt);
    return 0;
}

/* --load FILE: the model; a training checkpoint gets a pointer to --resume. */
static void load_model(const options *o, s2s_model *m, s2s_vocab *vs, s2s_vocab *vt,
                       s2s_tokenize_options *tok)
{
    char err[1024], cell[32], err2[1024];
    if (s2s_load(o->load, m, vs, vt, tok, err, sizeof err) == 0) return;
    if (tg_trainckpt_read_config(o->load, "cell", cell, sizeof cell, err2, sizeof err2) == 0)
        tg_cli_die(prog, "%s: a training checkpoint, not a model: continue its run with --resume "
                   "%s (a model is what --save writes)", o->load, o->load);
    tg_cli_die(prog, "%s", err);
}

int main(int argc, char **argv)
{
    options o;
    cmdline cl;
    tg_inherited inherited;
    int first = argc;
    parse_options(argc, argv, &o, &cl, &inherited, &first);
    if (!o.translate) { /* before any work; --translate writes no file */
        const tg_run_files files = run_files(&o);
        tg_trainckpt_check_outputs(prog, &files);
    }
    tg_blas_set_threads(1); /* our threads are OpenMP's: BLAS pools never nest */

    s2s_tokenize_options tok = {o.lowercase, 1};
    s2s_vocab vs, vt;
    s2s_model m;
    trainer tr;
    memset(&tr, 0, sizeof tr);
    tr.o = &o;
    tr.m = &m;
    tr.epoch = 1;
    tg_rng_seed(&tr.rng, o.seed ^ 0xba7c4ull);
    if (o.load) load_model(&o, &m, &vs, &vt, &tok);
    /* the pair files, when --resume took them from the checkpoint */
    const char *pairs_from = tg_inherited_has(&inherited, "train") ? o.resume : NULL;
    int rc = o.translate ? translate_main(&tr, argc, argv, first, &vs, &vt, &tok)
                         : train_main(&tr, pairs_from, &vs, &vt, &tok);
    tg_inherited_free(&inherited);
    return rc;
}
