/* seq2seq's set-up: the model (built, or --load'ed), the optimizer, and
 * the step arenas, measured (tgx_arena_measure): one training step on
 * the largest batch a shard can get, and one decoding batch of the longest
 * sources, each run once on a probe tape before the run starts. Nothing
 * the probes do stays: the gradients they leave are zeroed, their dropout
 * generator is their own. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "decode.h"
#include "model_io.h"
#include "program.h"
#include "tg_layers.h"
#include "torch_io.h"
#include "torch_s2s.h"
#include "trainrun.h"

#define prog S2S_PROG

tg_optim *s2s_make_optim(const s2s_options *o, const s2s_model *m)
{
    tg_optim_config cfg;
    char err[256];
    if (tgx_optim_from_flag(o->optim, &cfg) != 0)
        tg_cli_die_usage(prog, "--optim: unknown '%s'", o->optim);
    cfg.lr = o->lr;
    tg_optim *opt = tg_optim_new(&cfg, tg_params_numel(m->params), err, sizeof err);
    if (!opt) tg_cli_die(prog, "optimizer: %s", err);
    return opt;
}

#define S2S_LOWER "--hidden, --embed, --layers, --batch or --eval-batch"

/* A model too large to train is refused from its config, before it is
 * built (issue 16: --hidden 8192 --embed 8192 aborted on an arena after
 * 52 s): the parameters counted from the shapes (attention and the
 * decoder's fed input at their largest), the optimizer's state from --optim. */
static void check_planned_memory(const s2s_options *o, const s2s_config *c)
{
    size_t numel = s2s_config_numel_bound(c);
    tg_optim_config oc;
    if (tgx_optim_from_flag(o->optim, &oc) != 0) return; /* s2s_make_optim says so */
    tgx_memory_plan p = tgx_memory_plan_config(numel, o->shards, &oc, 0);
    tgx_memory_check(prog, &p, S2S_LOWER);
}

void s2s_check_memory(const s2s_model *m, const s2s_options *o, const tg_optim *opt,
                      size_t arenas, size_t data)
{
    tgx_memory_plan p = tgx_memory_plan_of(tg_params_numel(m->params), o->shards, opt, arenas);
    p.data = data;
    tgx_memory_check(prog, &p, S2S_LOWER ", or train on fewer pairs");
}

void s2s_check_translate_memory(const s2s_model *m, size_t arena)
{
    tgx_memory_plan p = tgx_memory_plan_of(tg_params_numel(m->params), 1, NULL, arena);
    tgx_memory_check(prog, &p, "--eval-batch, --beam or --max-len"); /* the model is as loaded */
}

void s2s_build_model(const s2s_options *o, s2s_model *m, const s2s_vocab *vs, const s2s_vocab *vt)
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
    if (tg_attn_kind_by_name(o->attention, &c.attention) != 0)
        tg_cli_die(prog, "--attention '%s' is not one of %s", o->attention, tg_attn_kind_names());
    c.bidirectional = o->bidirectional;
    check_planned_memory(o, &c);
    if (s2s_model_init(m, &c, o->seed) != 0) tg_cli_die(prog, "out of memory building the model");
}

/* --load FILE: the model; a training checkpoint gets a pointer to --resume. */
static void load_native(const s2s_options *o, s2s_model *m, s2s_vocab *vs, s2s_vocab *vt,
                        s2s_tokenize_options *tok)
{
    char err[1024], cell[32], err2[1024];
    if (s2s_load(o->load, m, vs, vt, tok, err, sizeof err) == 0) return;
    if (tg_trainckpt_read_config(o->load, "cell", cell, sizeof cell, err2, sizeof err2) == 0)
        tg_cli_die(prog, "%s: a training checkpoint, not a model: continue its run with --resume "
                   "%s (a model is what --save writes)", o->load, o->load);
    tg_cli_die(prog, "%s", err);
}

static void check_model_flags(const s2s_options *o, const tg_cmdline *cl, const s2s_config *c,
                              const char *file)
{
    tgx_check_model_str(prog, cl, "cell", o->cell, c->cell->name, file);
    if (strcmp(o->attention, "auto") != 0)
        tgx_check_model_str(prog, cl, "attention", o->attention, tg_attn_kind_name(c->attention),
                            file);
    tgx_check_model_int(prog, cl, "hidden", o->hidden, c->hidden, file);
    if (o->embed > 0) /* 0: the default */
        tgx_check_model_int(prog, cl, "embed", o->embed, c->embed, file);
    tgx_check_model_int(prog, cl, "layers", o->layers, c->layers, file);
    tgx_check_model_int(prog, cl, "bidirectional", o->bidirectional, c->bidirectional, file);
    tgx_check_model_int(prog, cl, "reverse", o->reverse, c->reverse_source, file);
    if (c->attention == TG_ATTN_NONE) /* attention replaces it */
        tgx_check_model_int(prog, cl, "feed-context", o->feed_context, c->feed_context, file);
}

void s2s_load_model(const s2s_options *o, const tg_cmdline *cl, s2s_model *m, s2s_vocab *vs,
                    s2s_vocab *vt, s2s_tokenize_options *tok, s2s_pieces *pc)
{
    char err[1024];
    if (o->import_torch && s2s_torch_import(o->import_torch, m, vs, vt, tok, err, sizeof err))
        tg_cli_die(prog, "--import-torch %s", err);
    if (!o->import_torch) load_native(o, m, vs, vt, tok);
    check_model_flags(o, cl, &m->cfg, o->import_torch ? o->import_torch : o->load);
    /* the model's tokenizer reads the input: a flag that says otherwise was
     * silently ignored */
    tgx_check_model_int(prog, cl, "lowercase", o->lowercase, tok->lowercase,
                        o->import_torch ? o->import_torch : o->load);
    /* a subword model's piece models, checked against its vocabularies;
     * named by its flag as the import's other errors are */
    if (s2s_load_pieces(o->load, vs, vt, tok, pc, err, sizeof err) != 0)
        tg_cli_die(prog, "%s%s", o->import_torch ? "--import-torch " : "", err);
    if (o->export_torch && !tgx_torch_module_of(m->cfg.cell))
        tg_cli_die_usage(prog, "--export-torch: the model %s has cell '%s', which has no PyTorch "
                         "module (" TGX_TORCH_CELLS ")",
                         o->load, m->cfg.cell->name);
    if (o->translate) s2s_export_torch(o, m, vs, vt, tok, pc); /* --translate trains nothing */
}

void s2s_take_dropout(s2s_options *o, const tg_cmdline *cl, s2s_model *m)
{
    if (o->translate || !tg_cmdline_given(cl, "dropout") || o->dropout == m->cfg.dropout) {
        o->dropout = m->cfg.dropout;
        return;
    }
    s2s_config c = m->cfg;
    c.dropout = o->dropout;
    s2s_model with;
    if (s2s_model_init(&with, &c, o->seed) != 0) tg_cli_die(prog, "out of memory building the model");
    memcpy(tg_params_data(with.params), tg_params_data(m->params),
           tg_params_numel(m->params) * sizeof(tg_real));
    s2s_model_free(m);
    *m = with;
}

void s2s_export_torch(const s2s_options *o, const s2s_model *m, const s2s_vocab *vs,
                      const s2s_vocab *vt, const s2s_tokenize_options *tok, const s2s_pieces *pc)
{
    char err[1024];
    if (!o->export_torch) return;
    if (s2s_torch_export(o->export_torch, m, vs, vt, tok, pc, err, sizeof err) != 0)
        tg_cli_die(prog, "--export-torch %s", err);
    fprintf(stderr, "%s: exported %s (scripts/torch_models.py load_seq2seq)\n", prog,
            o->export_torch);
}

typedef struct probe {
    const s2s_model *m;
    const s2s_options *o;
    int rows, max_src, max_tgt, threads;
    int mixed; /* one short source row: masks and blends at every step */
    int *src_ids, *tgt_ids; /* rows x max_src, rows x max_tgt (tgx_probe_ids) */
} probe;

static void train_probe(void *ctx, tg_tape *t)
{
    probe *p = ctx;
    const int **src = tg_tape_alloc(t, (size_t)p->rows * sizeof *src);
    const int **tgt = tg_tape_alloc(t, (size_t)p->rows * sizeof *tgt);
    int *sl = tg_tape_ints(t, (size_t)p->rows), *tl = tg_tape_ints(t, (size_t)p->rows);
    /* mixed: every row full but the last source, which a length-sorted
     * batch's one short pair makes: its masks, every logit row and every
     * distinct id at once (padding all rows but one measured a step with
     * few logits and ids, and real batches overflowed it) */
    for (int i = 0; i < p->rows; i++) {
        src[i] = p->src_ids + (size_t)i * (size_t)p->max_src;
        tgt[i] = p->tgt_ids + (size_t)i * (size_t)p->max_tgt;
        sl[i] = p->mixed && i == p->rows - 1 ? 1 : p->max_src;
        tl[i] = p->max_tgt;
    }
    tg_rng drop;
    tg_rng_seed(&drop, 1);
    tg_tape_set_threads(t, p->threads);
    s2s_batch b;
    s2s_batch_make(&b, t, &p->m->cfg, p->rows, src, sl, tgt, tl, 0, 0);
    tg_tensor *loss = s2s_loss_smoothed(t, p->m, &b, p->o->label_smoothing,
                                        p->o->dropout > 0 ? &drop : NULL, NULL);
    tg_backward(t, tg_scale(t, loss, 0.5));
    tg_params_zero_grad(p->m->params);
}

static void decode_probe(void *ctx, tg_tape *t)
{
    probe *p = ctx;
    size_t n = (size_t)p->rows;
    const int **src = malloc(n * sizeof *src);
    int *len = malloc(n * sizeof *len), *out_len;
    int **out = s2s_alloc_outputs(n, 2, &out_len);
    if (!src || !len) tg_cli_die(prog, "out of memory");
    for (size_t i = 0; i < n; i++) { /* mixed: one short source, as train_probe */
        src[i] = p->src_ids + i * (size_t)p->max_src;
        len[i] = p->mixed && i == n - 1 ? 1 : p->max_src;
    }
    s2s_decode_options d;
    s2s_decode_options_default(&d);
    d.beam = p->o->beam;
    d.max_len = 2; /* every step runs on a reset tape over the same rows: two show them all */
    d.len_alpha = p->o->len_alpha;
    d.batch = p->rows;
    tg_tape_set_threads(t, p->threads);
    /* logits that are not finite: the decoding itself will say where */
    int rc = s2s_translate(t, p->m, src, len, n, &d, out, out_len);
    if (rc != 0 && rc != S2S_DECODE_NONFINITE) tg_cli_die(prog, "out of memory while decoding");
    s2s_free_outputs(out, n, out_len);
    free(src);
    free(len);
}

void s2s_check_decoded(const s2s_options *o, int rc, const s2s_decode_fault *fault,
                       const char *unit, const long *number)
{
    if (rc == 0) return;
    if (rc != S2S_DECODE_NONFINITE) tg_cli_die(prog, "out of memory while decoding");
    long k = number ? number[fault->sentence] : (long)fault->sentence + 1;
    tg_cli_die_nonfinite(prog, s2s_model_file(o), "logits at output token %d of %s %ld",
                         fault->token, unit, k);
}

const char *s2s_model_file(const s2s_options *o) { return o->load ? o->load : o->import_torch; }

#define TRAIN_LOWER "--batch (or raise --shards), --hidden, --embed, --layers or --max-tokens"
#define DECODE_LOWER "--eval-batch, --beam, --hidden, --embed, --layers or --max-len"

/* The probe's step arena; exit 1 naming the flags in lower when it could
 * not be measured or needs more than any step may take. */
static size_t measured(void (*fn)(void *, tg_tape *), probe *p, const char *lower)
{
    size_t ns = (size_t)p->rows * (size_t)(p->max_src > 0 ? p->max_src : 1);
    size_t nt = (size_t)p->rows * (size_t)(p->max_tgt > 0 ? p->max_tgt : 1);
    p->src_ids = malloc(ns * sizeof *p->src_ids);
    p->tgt_ids = malloc(nt * sizeof *p->tgt_ids);
    if (!p->src_ids || !p->tgt_ids) tg_cli_die(prog, "out of memory");
    /* ids from <unk> on (never <pad>): every vocabulary holds the specials */
    tgx_probe_ids(p->src_ids, ns, S2S_UNK, p->m->cfg.src_vocab);
    tgx_probe_ids(p->tgt_ids, nt, S2S_UNK, p->m->cfg.tgt_vocab);
    size_t bytes = tgx_arena_measure(fn, p);
    free(p->src_ids);
    free(p->tgt_ids);
    char err[512];
    if (tgx_arena_problem(bytes, lower, err, sizeof err)) tg_cli_die(prog, "%s", err);
    return bytes;
}

size_t s2s_train_arena(const s2s_model *m, const s2s_options *o, int rows, int max_src,
                       int max_tgt)
{
    probe p = {m, o, rows, max_src, max_tgt, o->shards > 1 ? 1 : o->threads, 0, NULL, NULL};
    size_t equal = measured(train_probe, &p, TRAIN_LOWER);
    p.mixed = rows > 1;
    size_t mixed = p.mixed ? measured(train_probe, &p, TRAIN_LOWER) : 0;
    return equal > mixed ? equal : mixed;
}

size_t s2s_decode_arena(const s2s_model *m, const s2s_options *o, int sentences, int max_src)
{
    probe p = {m, o, sentences, max_src, 1, o->threads, 0, NULL, NULL};
    size_t equal = measured(decode_probe, &p, DECODE_LOWER);
    /* unequal sources: the encoder blends padded rows, attention masks them */
    p.mixed = sentences > 1 && max_src > 1;
    size_t mixed = p.mixed ? measured(decode_probe, &p, DECODE_LOWER) : 0;
    return equal > mixed ? equal : mixed;
}
