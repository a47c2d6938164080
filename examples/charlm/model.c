/* charlm's model: built new, read from --load or --import-torch (checked
 * against the model flags given), and its optimizer (charlm.h). */
#include <stdio.h>
#include <string.h>

#include "charlm.h"
#include "torch_io.h"
#include "trainrun.h"

#define PROG "charlm"

typedef charlm_options options;
typedef tg_cmdline cmdline;

static int given(const cmdline *c, const char *name) { return tg_cmdline_given(c, name); }

/* --export-torch of a cell without a PyTorch module: refused before any
 * training, not after it. */
void charlm_check_exportable(const options *o, const charmodel *m)
{
    if (o->export_torch && !tgx_torch_module_of(m->cfg.kind))
        tg_cli_die_usage(PROG, "--export-torch: cell '%s' has no PyTorch module (only lstm, gru "
                         "and rnn map to nn.LSTM, nn.GRU and nn.RNN)", m->cfg.kind->name);
}

/* Explicit model flags must agree with a model read from file. */
static void check_model_flags(const options *o, const cmdline *cl, const charmodel_config *cfg,
                              const char *file)
{
    tgx_check_model_str(PROG, cl, "cell", o->cell, cfg->kind->name, file);
    tgx_check_model_int(PROG, cl, "hidden", o->hidden, cfg->hidden, file);
    tgx_check_model_int(PROG, cl, "embed", o->embed, cfg->embed, file);
    tgx_check_model_int(PROG, cl, "layers", o->layers, cfg->layers, file);
}

/* --import-torch: a PyTorch CharRNN file (torch_io.h); its shapes give the
 * model, its metadata the vocabulary. An explicit --dropout rebuilds the
 * model with it (the stack's dropout is fixed at build). */
static void import_model(const options *o, const cmdline *cl, charmodel *m, tg_vocab *v)
{
    char err[1024];
    if (tgx_torch_import_charmodel(o->import_torch, m, v, err, sizeof err) != 0)
        tg_cli_die(PROG, "--import-torch %s", err);
    check_model_flags(o, cl, &m->cfg, o->import_torch);
    if (!given(cl, "dropout") || o->dropout == m->cfg.dropout) return;
    charmodel_config cfg = m->cfg;
    charmodel with;
    tg_rng r;
    cfg.dropout = o->dropout;
    tg_rng_seed(&r, o->seed);
    if (charmodel_init(&with, &cfg, &r, err, sizeof err)) tg_cli_die(PROG, "%s", err);
    memcpy(tg_params_data(with.params), tg_params_data(m->params),
           tg_params_numel(m->params) * sizeof(tg_real));
    charmodel_free(m);
    *m = with;
}

/* A char model's parameters (embedding, recurrent stack, output layer) at
 * their most, or at their fewest (floor: weights only). */
static size_t numel_of(const tg_cell_kind *kind, int vocab, int embed, int hidden, int layers,
                       int floor)
{
    size_t V = (size_t)vocab, H = (size_t)hidden;
    return V * (size_t)embed + H * V +
           (floor ? tgx_stack_weights(kind, embed, hidden, layers)
                  : V + tgx_stack_numel(kind, embed, hidden, layers));
}

/* The model a file's metadata describes, before it is built: its tensors
 * hold at least its parameters, and those with their gradients fit in
 * memory (tgx_model_meta_fits). */
static int check_file_model(const tg_checkpoint *ck, const char *path,
                            const charmodel_config *c, char *err, size_t errlen)
{
    char what[128];
    snprintf(what, sizeof what, "embed %d, hidden %d, layers %d, vocabulary %d", c->embed,
             c->hidden, c->layers, c->vocab);
    return tgx_model_meta_fits(PROG, ck, path,
                               numel_of(c->kind, c->vocab, c->embed, c->hidden, c->layers, 1),
                               numel_of(c->kind, c->vocab, c->embed, c->hidden, c->layers, 0),
                               what, err, errlen);
}

/* Model and vocabulary from --load (or --import-torch), checked against
 * explicit flags; *ck: the --load file, for the optimizer state. */
void charlm_load_model(const options *o, const cmdline *cl, charmodel *m, tg_vocab *v,
                       tg_checkpoint **ck)
{
    char err[1024];
    charmodel_config cfg;
    tg_rng r;
    *ck = NULL;
    if (o->import_torch) {
        import_model(o, cl, m, v);
        return;
    }
    *ck = tg_checkpoint_open(o->load, err, sizeof err);
    if (!*ck || charmodel_read_config(*ck, o->load, &cfg, v, err, sizeof err) ||
        check_file_model(*ck, o->load, &cfg, err, sizeof err))
        tg_cli_die(PROG, "%s", err);
    check_model_flags(o, cl, &cfg, o->load);
    if (given(cl, "dropout")) cfg.dropout = o->dropout;
    tg_rng_seed(&r, o->seed);
    if (charmodel_init(m, &cfg, &r, err, sizeof err) ||
        tg_checkpoint_load_params(*ck, m->params, err, sizeof err))
        tg_cli_die(PROG, "%s", err);
}

/* Refuses a new model too large to train before it is built (building it
 * would already take much of the memory): its parameters counted from the
 * config, the optimizer's state from --optim, and the text's n characters. */
static void check_planned_memory(const options *o, int vocab, size_t n)
{
    size_t numel = numel_of(tg_cell_kind_by_name(o->cell), vocab, o->embed, o->hidden,
                            o->layers, 0);
    tg_optim_config oc;
    if (tgx_optim_from_flag(o->optim, &oc) != 0) return; /* charlm_make_optim says so */
    if (oc.kind == TG_OPTIM_SGD) oc.momentum = o->momentum;
    tgx_memory_plan p = tgx_memory_plan_config(numel, o->shards, &oc, 0);
    p.data = n * CHARLM_BYTES_PER_CHAR;
    tgx_memory_check(PROG, &p, CHARLM_LOWER);
}

void charlm_new_model(const options *o, const uint32_t *cps, size_t n, charmodel *m, tg_vocab *v)
{
    char err[1024];
    tg_rng r;
    if (tg_vocab_build(v, cps, n) != 0) tg_cli_die(PROG, "out of memory");
    charmodel_config cfg = {tg_cell_kind_by_name(o->cell), v->size, o->embed, o->hidden,
                            o->layers, o->dropout};
    check_planned_memory(o, v->size, n);
    tg_rng_seed(&r, o->seed);
    if (charmodel_init(m, &cfg, &r, err, sizeof err)) tg_cli_die(PROG, "%s", err);
}

tg_optim *charlm_make_optim(const options *o, const charmodel *m, tg_checkpoint *ck)
{
    char err[1024];
    tg_optim_config oc;
    if (tgx_optim_from_flag(o->optim, &oc) != 0)
        tg_cli_die_usage(PROG, "--optim: unknown '%s'", o->optim);
    oc.lr = o->lr;
    oc.weight_decay = o->weight_decay;
    if (oc.kind == TG_OPTIM_SGD) oc.momentum = o->momentum;
    tg_optim *opt = tg_optim_new(&oc, tg_params_numel(m->params), err, sizeof err);
    if (!opt) tg_cli_die_usage(PROG, "%s", err);
    if (ck && tg_checkpoint_meta(ck, "optim.kind") &&
        tg_checkpoint_load_optim(ck, opt, err, sizeof err) != 0)
        fprintf(stderr, "%s: note: starting the optimizer afresh: %s\n", PROG, err);
    return opt;
}
