/* rowseq's model files: --save (weights, optimizer state, the shuffling
 * generator and the architecture in "rowseq.*" metadata, written
 * atomically after every epoch) and --load (a --save file, or a
 * --checkpoint file whose "config.*" describe the model). */
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "rowseq.h"
#include "torch_io.h" /* tgx_torch_refuse_as_model */
#include "tg_checkpoint.h"
#include "trainrun.h" /* tgx_check_model_int, tgx_check_model_str */

#define PROG "rowseq"

void rowseq_save_model(const char *path, rowseq_trainer *tr, uint64_t epochs_done)
{
    char hidden[32], layers[32], steps[32], in[32], epochs[32], rng[TG_RNG_HEX_LEN], err[1024];
    snprintf(hidden, sizeof hidden, "%d", tr->cfg.hidden);
    snprintf(layers, sizeof layers, "%d", tr->cfg.layers);
    snprintf(steps, sizeof steps, "%d", tr->cfg.steps);
    snprintf(in, sizeof in, "%d", tr->cfg.in);
    snprintf(epochs, sizeof epochs, "%llu", (unsigned long long)epochs_done);
    tg_checkpoint_rng_hex(&tr->rng, rng);
    const tg_ckpt_meta meta[] = {
        {"rowseq.cell", tr->cfg.kind->name}, {"rowseq.hidden", hidden},
        {"rowseq.layers", layers},           {"rowseq.steps", steps},
        {"rowseq.in", in},                   {"rowseq.epochs", epochs},
        {"rowseq.rng", rng},
    };
    tgx_write_begin(path); /* a second Ctrl-C during it leaves no temporary */
    int rc = tg_checkpoint_save_training(path, tr->params, tr->opt, meta,
                                         sizeof meta / sizeof meta[0], err, sizeof err);
    tgx_write_end();
    if (rc != 0) tg_cli_die(PROG, "%s", err);
}

/* Metadata key of a model file field: "rowseq.<name>" in a --save file,
 * "config.<name>" (or the loop's "u64.epoch") in a --checkpoint file. */
static void model_key(int training, const char *name, char *key, size_t cap)
{
    static const char *const from[] = {"steps", "in", "epochs"};
    static const char *const to[] = {"config.rows", "config.cols", "u64.epoch"};
    if (!training) {
        snprintf(key, cap, "rowseq.%s", name);
        return;
    }
    snprintf(key, cap, "config.%s", name);
    for (int i = 0; i < 3; i++)
        if (strcmp(name, from[i]) == 0) snprintf(key, cap, "%s", to[i]);
}

static uint64_t model_u64(const tg_checkpoint *c, int training, const char *name)
{
    char key[64], err[1024];
    uint64_t v;
    model_key(training, name, key, sizeof key);
    if (tg_checkpoint_meta_u64(c, key, &v, err, sizeof err) != 0) tg_cli_die(PROG, "%s", err);
    return v;
}

/* Whether c is a training checkpoint (--checkpoint) of rowseq; exits 1 when
 * it is one of another program. */
static int is_training_checkpoint(const tg_checkpoint *c, const char *path)
{
    if (!tg_checkpoint_meta(c, "trainckpt.version")) return 0;
    const char *prog = tg_checkpoint_meta(c, "trainckpt.program");
    if (!prog || strcmp(prog, PROG) != 0)
        tg_cli_die(PROG, "%s: a training checkpoint of '%.40s', not of '%s'", path,
                   prog ? prog : "(unknown program)", PROG);
    return 1;
}

void rowseq_check_model_flags(const rowseq_options *o, const tg_cmdline *cl, const char *cell,
                              int hidden, int layers, const char *file)
{
    tgx_check_model_str(PROG, cl, "cell", o->cell, cell, file);
    tgx_check_model_int(PROG, cl, "hidden", o->hidden, hidden, file);
    tgx_check_model_int(PROG, cl, "layers", o->layers, layers, file);
}

/* Reads the architecture stored in a --save or --checkpoint file into o
 * (before the model is built). Returns the open file. */
tg_checkpoint *rowseq_open_model(rowseq_options *o, const tg_cmdline *cl, uint64_t *epochs_done,
                                 int *training)
{
    char err[1024], key[64];
    tg_checkpoint *c = tg_checkpoint_open(o->load, err, sizeof err);
    if (!c || tgx_torch_refuse_as_model(c, o->load, "RowRNN", err, sizeof err) != 0)
        tg_cli_die(PROG, "%s", err);
    *training = is_training_checkpoint(c, o->load);
    model_key(*training, "cell", key, sizeof key);
    const char *cell = tg_checkpoint_meta(c, key);
    if (!cell || !tg_cell_kind_by_name(cell))
        tg_cli_die(PROG, "%s: metadata '%s' is %s%s%s: expected one of %s", o->load, key,
                   cell ? "'" : "", cell ? cell : "missing", cell ? "'" : "",
                   tg_cell_kind_names());
    uint64_t hidden = model_u64(c, *training, "hidden"), layers = model_u64(c, *training, "layers");
    uint64_t epochs = model_u64(c, *training, "epochs");
    if (hidden < 1 || hidden > 4096 || layers < 1 || layers > TG_MAX_LAYERS)
        tg_cli_die(PROG, "%s: hidden %llu / layers %llu in metadata: expected 1..4096 / 1..%d",
                   o->load, (unsigned long long)hidden, (unsigned long long)layers,
                   TG_MAX_LAYERS);
    rowseq_check_model_flags(o, cl, cell, (int)hidden, (int)layers, o->load);
    o->cell = cell;
    o->hidden = (int)hidden;
    o->layers = (int)layers;
    *epochs_done = epochs > 1000000 ? 1000000 : epochs;
    return c;
}

/* The model in a file reads images of a fixed size. */
void rowseq_check_model_shape(const rowseq_options *o, const tg_checkpoint *c, int training,
                              int rows, int cols)
{
    uint64_t steps = model_u64(c, training, "steps"), in = model_u64(c, training, "in");
    if (steps != (uint64_t)rows || in != (uint64_t)cols)
        tg_cli_die(PROG, "%s: the model reads %llu steps of %llu pixels, the images are %dx%d",
                   o->load, (unsigned long long)steps, (unsigned long long)in, rows, cols);
}

/* Copies weights (all or nothing) and, when the optimizer kind matches, its
 * state; from a --save file the shuffling stream continues where the saved
 * run left it. */
void rowseq_restore_model(const rowseq_options *o, tg_checkpoint *c, rowseq_trainer *tr)
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
