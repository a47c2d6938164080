/* PyTorch interchange (see torch_io.h): the same values under PyTorch's
 * names, biases 1-D. The file format is the library's (tg_checkpoint.h). */
#include "torch_io.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "trainrun.h" /* tgx_write_begin */

#define NAME_CAP (TG_NAME_MAX + 32)

const char *tgx_torch_module_of(const tg_cell_kind *kind)
{
    if (!kind) return NULL;
    if (kind == &tg_cell_lstm || kind == &tg_cell_lstm_composed) return "LSTM";
    if (kind == &tg_cell_gru || kind == &tg_cell_gru_composed) return "GRU";
    if (kind == &tg_cell_rnn) return "RNN";
    return NULL;
}

static const char *const rnn_fields[4] = {"weight_ih", "weight_hh", "bias_ih", "bias_hh"};

int tgx_torch_stack_name(const char *ours, const char *from, const char *to, char *out,
                         size_t cap, int *bias)
{
    size_t n = strlen(from);
    int k, used = 0;
    if (strncmp(ours, from, n) != 0 || strncmp(ours + n, ".l", 2) != 0) return 1;
    if (sscanf(ours + n, ".l%d.%n", &k, &used) != 1 || used == 0 || k < 0 || k >= TG_MAX_LAYERS)
        return -1;
    for (int f = 0; f < 4; f++)
        if (strcmp(ours + n + used, rnn_fields[f]) == 0) {
            if (snprintf(out, cap, "%s.%s_l%d", to, rnn_fields[f], k) >= (int)cap) return -1;
            *bias = f >= 2;
            return 0;
        }
    return -1;
}

/* CharRNN / RowRNN: "rnn.l<k>.<field>" -> "rnn.<field>_l<k>", the
 * embedding and head as they are. */
static int char_row_name(const char *ours, char *out, size_t cap, int *bias, void *ctx)
{
    (void)ctx;
    int rc = tgx_torch_stack_name(ours, "rnn", "rnn", out, cap, bias);
    if (rc <= 0) return rc;
    if (strcmp(ours, "embed.weight") && strcmp(ours, "head.weight") && strcmp(ours, "head.bias"))
        return -1;
    size_t len = strlen(ours); /* not snprintf: gcc -O2 with sanitizers calls ours NULL */
    if (len >= cap) return -1;
    memcpy(out, ours, len + 1);
    *bias = strcmp(ours, "head.bias") == 0;
    return 0;
}

/* ------------------------------------------------------------------ export */

int tgx_torch_export_named(const tg_params *p, tgx_torch_namer name, void *ctx,
                           const char *module, const char *path, const tg_ckpt_meta *meta,
                           size_t n_meta, char *err, size_t errlen)
{
    size_t n = tg_params_count(p);
    tg_ckpt_tensor *t = calloc(n ? n : 1, sizeof *t);
    char(*names)[NAME_CAP] = calloc(n ? n : 1, sizeof *names);
    int rc = t && names ? 0 : -1;
    if (rc) snprintf(err, errlen, "cannot export %s: out of memory", path);
    for (size_t i = 0; rc == 0 && i < n; i++) {
        const tg_tensor *x = tg_params_at(p, i);
        int bias = 0;
        if (name(tg_params_name(p, i), names[i], NAME_CAP, &bias, ctx) != 0 ||
            (bias && x->rows != 1)) {
            snprintf(err, errlen, "cannot export %s: parameter '%s' [%d, %d] has no place in the "
                     "PyTorch module %s", path, tg_params_name(p, i), x->rows, x->cols, module);
            rc = -1;
        } else {
            t[i] = (tg_ckpt_tensor){names[i], x->data, bias ? 0 : x->rows, x->cols};
        }
    }
    if (rc == 0) {
        tgx_write_begin(path); /* a second Ctrl-C during it leaves no temporary */
        rc = tg_checkpoint_save_tensors(path, t, n, meta, n_meta, err, errlen);
        tgx_write_end();
    }
    free(names);
    free(t);
    return rc;
}

int tgx_torch_export(const tg_params *p, const tg_cell_kind *kind, const char *path,
                     const tg_ckpt_meta *meta, size_t n_meta, char *err, size_t errlen)
{
    const char *module = tgx_torch_module_of(kind);
    if (!module) {
        snprintf(err, errlen, "cannot export %s: cell '%s' has no PyTorch module (" TGX_TORCH_CELLS
                 ")", path, kind ? kind->name : "(none)");
        return -1;
    }
    tg_ckpt_meta *m = malloc((n_meta + 2) * sizeof *m);
    if (!m) {
        snprintf(err, errlen, "cannot export %s: out of memory", path);
        return -1;
    }
    const char *what = tg_params_find(p, "embed.weight") ? "CharRNN" : "RowRNN";
    m[0] = (tg_ckpt_meta){TGX_TORCH_KEY_MODULE, what};
    m[1] = (tg_ckpt_meta){TGX_TORCH_KEY_CELL, module};
    if (n_meta) memcpy(m + 2, meta, n_meta * sizeof *m);
    int rc = tgx_torch_export_named(p, char_row_name, NULL, what, path, m, n_meta + 2, err,
                                    errlen);
    free(m);
    return rc;
}

/* ------------------------------------------------------------------ import */

int tgx_torch_refuse_as_model(const tg_checkpoint *c, const char *path, const char *module_read,
                              char *err, size_t errlen)
{
    const char *module = tg_checkpoint_meta(c, TGX_TORCH_KEY_MODULE);
    if (!module) return 0;
    if (strcmp(module, module_read) == 0)
        snprintf(err, errlen, "%s: a PyTorch %.40s state_dict (what --export-torch writes), not "
                 "a tapegrad model: give it to --import-torch", path, module);
    else
        snprintf(err, errlen, "%s: a PyTorch %.40s state_dict, another program's model (this "
                 "one's --import-torch reads a %s)", path, module, module_read);
    return -1;
}

int tgx_torch_refuse_native(const tg_checkpoint *c, const char *path, char *err, size_t errlen)
{
    /* tg_checkpoint_save alone adds the data checksum; an export has none */
    if (tg_checkpoint_meta(c, TGX_TORCH_KEY_MODULE) || !tg_checkpoint_meta(c, TG_CKPT_CRC_KEY))
        return 0;
    if (tg_checkpoint_meta(c, "trainckpt.version"))
        snprintf(err, errlen, "%s: a training checkpoint (what --checkpoint writes), not a "
                 "PyTorch state_dict: continue its run with --resume", path);
    else
        snprintf(err, errlen, "%s: a model in tapegrad's names (what --save writes), not a "
                 "PyTorch state_dict: give it to --load", path);
    return -1;
}

/* Shape of a tensor that must be present. */
static int need_shape(const tg_checkpoint *c, const char *path, const char *name, int *rows,
                      int *cols, char *err, size_t errlen)
{
    if (tg_checkpoint_tensor_shape(c, name, rows, cols) == 0) return 0;
    snprintf(err, errlen, "%s: tensor '%s' is missing: not a PyTorch CharRNN/RowRNN state_dict "
             "(scripts/torch_models.py)", path, name);
    return -1;
}

static int bad_shape(const char *path, const char *name, int rows, int cols, const char *want,
                     char *err, size_t errlen)
{
    snprintf(err, errlen, "%s: tensor '%s' has shape [%d, %d], expected %s", path, name, rows,
             cols, want);
    return -1;
}

/* The recurrent stack's layers, width and cell from rnn.weight_*_l<k>. */
static int read_rnn(const tg_checkpoint *c, const char *path, tgx_torch_arch *a, char *err,
                    size_t errlen)
{
    int gh, in, r, h;
    if (need_shape(c, path, "rnn.weight_ih_l0", &gh, &in, err, errlen) ||
        need_shape(c, path, "rnn.weight_hh_l0", &r, &h, err, errlen))
        return -1;
    /* weight_hh alone gives G and H; then weight_ih is blamed for its rows */
    if (r % h != 0 || (r / h != 1 && r / h != 3 && r / h != 4))
        return bad_shape(path, "rnn.weight_hh_l0", r, h, "[G*H, H] with G = 4 (LSTM), 3 (GRU) "
                         "or 1 (RNN)", err, errlen);
    if (gh != r) {
        char want[64];
        snprintf(want, sizeof want, "[%d, in] (the rows of rnn.weight_hh_l0)", r);
        return bad_shape(path, "rnn.weight_ih_l0", gh, in, want, err, errlen);
    }
    a->kind = gh / h == 4 ? &tg_cell_lstm : gh / h == 3 ? &tg_cell_gru : &tg_cell_rnn;
    a->in = in;
    a->hidden = h;
    a->layers = 1;
    char name[NAME_CAP], want[64];
    snprintf(want, sizeof want, "[%d, %d]", gh, h);
    for (int k = 1;; k++) {
        snprintf(name, sizeof name, "rnn.weight_ih_l%d", k);
        if (tg_checkpoint_tensor_shape(c, name, &r, &in) != 0) break;
        if (k >= TG_MAX_LAYERS) {
            snprintf(err, errlen, "%s: more than %d recurrent layers", path, TG_MAX_LAYERS);
            return -1;
        }
        if (r != gh || in != h) return bad_shape(path, name, r, in, want, err, errlen);
        a->layers = k + 1;
    }
    const char *cell = tg_checkpoint_meta(c, TGX_TORCH_KEY_CELL);
    if (cell && strcmp(cell, tgx_torch_module_of(a->kind)) != 0) {
        snprintf(err, errlen, "%s: metadata '%s' is '%.20s' but the shapes are nn.%s's", path,
                 TGX_TORCH_KEY_CELL, cell, tgx_torch_module_of(a->kind));
        return -1;
    }
    return 0;
}

static int read_arch(const tg_checkpoint *c, const char *path, tgx_torch_arch *a, char *err,
                     size_t errlen)
{
    memset(a, 0, sizeof *a);
    const char *module = tg_checkpoint_meta(c, TGX_TORCH_KEY_MODULE);
    if (module && strcmp(module, "CharRNN") != 0 && strcmp(module, "RowRNN") != 0)
        return snprintf(err, errlen, "%s: a PyTorch %.40s state_dict, not a CharRNN or RowRNN "
                        "(scripts/torch_models.py)", path, module), -1;
    if (read_rnn(c, path, a, err, errlen)) return -1;
    if (tg_checkpoint_tensor_shape(c, "embed.weight", &a->vocab, &a->embed) == 0 &&
        a->embed != a->in) {
        char want[64];
        snprintf(want, sizeof want, "[vocab, %d] (rnn.weight_ih_l0's columns)", a->in);
        return bad_shape(path, "embed.weight", a->vocab, a->embed, want, err, errlen);
    }
    /* the module the file names, where it names one, is the one its shapes make */
    const char *shapes = a->vocab > 0 ? "CharRNN" : "RowRNN";
    if (module && strcmp(module, shapes) != 0)
        return snprintf(err, errlen, "%s: metadata '%s' says %.40s, but the file %s an "
                        "embed.weight: a %s", path, TGX_TORCH_KEY_MODULE, module,
                        a->vocab > 0 ? "has" : "has no", shapes), -1;
    int cols;
    if (need_shape(c, path, "head.weight", &a->out, &cols, err, errlen)) return -1;
    if (cols != a->hidden) {
        char want[64];
        snprintf(want, sizeof want, "[out, %d] (the hidden width)", a->hidden);
        return bad_shape(path, "head.weight", a->out, cols, want, err, errlen);
    }
    return 0;
}

tg_checkpoint *tgx_torch_open(const char *path, tgx_torch_arch *a, char *err, size_t errlen)
{
    tg_checkpoint *c = tg_checkpoint_open(path, err, errlen);
    if (c && (tgx_torch_refuse_native(c, path, err, errlen) != 0 ||
              read_arch(c, path, a, err, errlen) != 0)) {
        tg_checkpoint_close(c);
        c = NULL;
    }
    return c;
}

/* What a PyTorch name that fits no parameter looks like, for the message. */
static const char *unexpected_why(const char *torch)
{
    if (strstr(torch, "_reverse")) return " (bidirectional layers have no tapegrad model)";
    if (strstr(torch, "weight_hr")) return " (LSTM projections have no tapegrad model)";
    return "";
}

/* Every tensor of the file has a parameter in p (strict=True's other half):
 * names[i] is parameter i's PyTorch name. */
static int check_unexpected(const tg_checkpoint *c, size_t n, const char (*names)[NAME_CAP],
                            char *err, size_t errlen)
{
    for (size_t i = 0; i < tg_checkpoint_tensor_count(c); i++) {
        const char *tn = tg_checkpoint_tensor_name(c, i);
        size_t k = 0;
        while (k < n && strcmp(names[k], tn) != 0) k++;
        if (k == n) {
            snprintf(err, errlen, "tensor '%s' in the file is not a parameter of this model%s",
                     tn, unexpected_why(tn));
            return -1;
        }
    }
    return 0;
}

/* Parameter i's tensor is in the file with its shape (a bias 1-D or [1, N]). */
static int check_tensor(const tg_checkpoint *c, const char *ours, const char *tn, int bias,
                        const tg_tensor *x, char *err, size_t errlen)
{
    int rows, cols;
    if (tg_checkpoint_tensor_shape(c, tn, &rows, &cols) != 0) {
        snprintf(err, errlen, "tensor '%s' (for '%s', [%d, %d]) is missing from the file", tn,
                 ours, x->rows, x->cols);
        return -1;
    }
    if ((rows != x->rows || cols != x->cols) && bias) {
        char have[48]; /* a 1-D [n] reads as 1 x n */
        snprintf(have, sizeof have, rows == 1 ? "[%d]" : "[%d, %d]", rows == 1 ? cols : rows,
                 cols);
        snprintf(err, errlen, "tensor '%s' has shape %s in the file, the model expects [%d]", tn,
                 have, x->cols);
        return -1;
    }
    if (rows != x->rows || cols != x->cols) {
        snprintf(err, errlen, "tensor '%s' has shape [%d, %d] in the file, the model expects "
                 "[%d, %d]", tn, rows, cols, x->rows, x->cols);
        return -1;
    }
    return 0;
}

static int import_checked(const tg_checkpoint *c, tg_params *p, tgx_torch_namer name, void *ctx,
                          char (*names)[NAME_CAP], char *err, size_t errlen)
{
    size_t n = tg_params_count(p);
    for (size_t i = 0; i < n; i++) {
        int bias = 0;
        if (name(tg_params_name(p, i), names[i], NAME_CAP, &bias, ctx) != 0) {
            snprintf(err, errlen, "parameter '%s' has no PyTorch name", tg_params_name(p, i));
            return -1;
        }
        if (check_tensor(c, tg_params_name(p, i), names[i], bias, tg_params_at(p, i), err,
                         errlen))
            return -1;
    }
    if (check_unexpected(c, n, (const char(*)[NAME_CAP])names, err, errlen)) return -1;
    /* Everything matched: only now touch the model. */
    for (size_t i = 0; i < n; i++) {
        tg_tensor *x = tg_params_at(p, i);
        if (tg_checkpoint_read_array(c, names[i], x->data, tg_numel(x), err, errlen)) return -1;
    }
    return 0;
}

int tgx_torch_import_named(const tg_checkpoint *c, tg_params *p, tgx_torch_namer name,
                           void *ctx, char *err, size_t errlen)
{
    size_t n = tg_params_count(p);
    char(*names)[NAME_CAP] = calloc(n ? n : 1, sizeof *names);
    if (!names) {
        snprintf(err, errlen, "out of memory");
        return -1;
    }
    int rc = import_checked(c, p, name, ctx, names, err, errlen);
    free(names);
    return rc;
}

int tgx_torch_import(const tg_checkpoint *c, tg_params *p, char *err, size_t errlen)
{
    return tgx_torch_import_named(c, p, char_row_name, NULL, err, errlen);
}

/* ------------------------------------------------------------------ charlm */

int tgx_torch_export_charmodel(const charmodel *m, const tg_vocab *v, const char *path, char *err,
                               size_t errlen)
{
    if (v->size != m->cfg.vocab) {
        snprintf(err, errlen, "cannot export %s: vocabulary has %d entries, the model %d", path,
                 v->size, m->cfg.vocab);
        return -1;
    }
    char dropout[32];
    snprintf(dropout, sizeof dropout, "%.17g", m->cfg.dropout);
    char *vocab = tg_vocab_format(v);
    if (!vocab) {
        snprintf(err, errlen, "cannot export %s: out of memory", path);
        return -1;
    }
    const tg_ckpt_meta meta[] = {{TGX_TORCH_KEY_VOCAB, vocab}, {TGX_TORCH_KEY_DROPOUT, dropout}};
    int rc = tgx_torch_export(m->params, m->cfg.kind, path, meta, 2, err, errlen);
    free(vocab);
    return rc;
}

/* The file's dropout, or 0 when it has none (a PyTorch-made file may not). */
static int read_dropout(const tg_checkpoint *c, const char *path, double *out, char *err,
                        size_t errlen)
{
    const char *s = tg_checkpoint_meta(c, TGX_TORCH_KEY_DROPOUT);
    *out = 0;
    if (!s) return 0;
    return tg_meta_dropout(path, TGX_TORCH_KEY_DROPOUT, s, out, err, errlen);
}

/* The configuration of a CharRNN file: shapes, vocabulary and dropout. */
static int char_config(const tg_checkpoint *c, const tgx_torch_arch *a, const char *path,
                       charmodel_config *cfg, tg_vocab *v, char *err, size_t errlen)
{
    if (a->embed == 0 || a->out != a->vocab) {
        snprintf(err, errlen, "%s: not a CharRNN (%s): it needs embed.weight [V, E] and "
                 "head.weight [V, H] with the same V", path,
                 a->embed == 0 ? "no embed.weight" : "head and embedding sizes differ");
        return -1;
    }
    const char *vs = tg_checkpoint_meta(c, TGX_TORCH_KEY_VOCAB);
    char why[256];
    if (!vs) {
        snprintf(err, errlen, "%s: metadata '%s' (the vocabulary) is missing: save the module "
                 "with scripts/torch_models.py save_char_rnn(model, path, vocab)", path,
                 TGX_TORCH_KEY_VOCAB);
        return -1;
    }
    if (tg_vocab_parse(v, vs, why, sizeof why) != 0) {
        snprintf(err, errlen, "%s: metadata '%s': %s", path, TGX_TORCH_KEY_VOCAB, why);
        return -1;
    }
    *cfg = (charmodel_config){a->kind, a->vocab, a->embed, a->hidden, a->layers, 0};
    if (v->size != a->vocab) {
        snprintf(err, errlen, "%s: the vocabulary has %d entries, embed.weight %d rows", path,
                 v->size, a->vocab);
        tg_vocab_free(v);
        return -1;
    }
    if (read_dropout(c, path, &cfg->dropout, err, errlen) != 0) {
        tg_vocab_free(v);
        return -1;
    }
    return 0;
}

int tgx_torch_import_charmodel(const char *path, charmodel *m, tg_vocab *v, char *err,
                               size_t errlen)
{
    memset(m, 0, sizeof *m);
    memset(v, 0, sizeof *v);
    tgx_torch_arch a;
    tg_checkpoint *c = tgx_torch_open(path, &a, err, errlen);
    if (!c) return -1;
    charmodel_config cfg;
    tg_rng r;
    tg_rng_seed(&r, 0); /* every value is overwritten by the file's */
    int rc = char_config(c, &a, path, &cfg, v, err, errlen);
    if (rc == 0 && (rc = charmodel_init(m, &cfg, &r, err, errlen)) != 0) tg_vocab_free(v);
    if (rc == 0 && (rc = tgx_torch_import(c, m->params, err, errlen)) != 0) {
        char why[512];
        snprintf(why, sizeof why, "%s", err);
        snprintf(err, errlen, "%s: %s", path, why);
        charmodel_free(m);
        tg_vocab_free(v);
    }
    tg_checkpoint_close(c);
    return rc;
}
