/* The seq2seq model in PyTorch's names (see torch_s2s.h): a namer for
 * examples/common/torch_io.h's named export and import, and the metadata
 * of a --save file (model_io.h). */
#include "torch_s2s.h"

#include <stdio.h>
#include <string.h>

#include "model_io.h"
#include "torch_io.h"

/* Our stacks and their PyTorch modules. */
static const char *const stacks[][2] = {
    {"encoder.fwd", "encoder.fwd"},
    {"encoder.bwd", "encoder.bwd"},
    {"encoder", "encoder"},
    {"decoder", "decoder"},
};

static int ends_with(const char *s, const char *tail)
{
    size_t n = strlen(s), k = strlen(tail);
    return n >= k && strcmp(s + n - k, tail) == 0;
}

/* "encoder.bridge.l<l>.<h|c>.<weight|bias>" -> "encoder.bridge.<l>.<h|c>.<...>". */
static int bridge_name(const char *ours, char *out, size_t cap)
{
    int l, used = 0;
    if (sscanf(ours, "encoder.bridge.l%d%n", &l, &used) != 1 || used == 0 || l < 0 ||
        l >= TG_MAX_LAYERS)
        return -1;
    const char *rest = ours + used;
    if (strcmp(rest, ".h.weight") && strcmp(rest, ".h.bias") && strcmp(rest, ".c.weight") &&
        strcmp(rest, ".c.bias"))
        return -1;
    return snprintf(out, cap, "encoder.bridge.%d%s", l, rest) < (int)cap ? 0 : -1;
}

/* tgx_torch_namer for the seq2seq model's parameters. */
static int s2s_torch_name(const char *ours, char *out, size_t cap, int *bias, void *ctx)
{
    (void)ctx;
    for (size_t i = 0; i < sizeof stacks / sizeof *stacks; i++) {
        int rc = tgx_torch_stack_name(ours, stacks[i][0], stacks[i][1], out, cap, bias);
        if (rc <= 0) return rc;
    }
    *bias = ends_with(ours, ".bias");
    if (strncmp(ours, "encoder.bridge.", 15) == 0) return bridge_name(ours, out, cap);
    if (strncmp(ours, "decoder.attn.", 13) == 0)
        return snprintf(out, cap, "attn.%s", ours + 13) < (int)cap ? 0 : -1;
    if (strcmp(ours, "src_embed.weight") && strcmp(ours, "tgt_embed.weight") &&
        strcmp(ours, "out.weight") && strcmp(ours, "out.bias"))
        return -1;
    return snprintf(out, cap, "%s", ours) < (int)cap ? 0 : -1;
}

int s2s_torch_export(const char *path, const s2s_model *m, const s2s_vocab *src,
                     const s2s_vocab *tgt, const s2s_tokenize_options *tok,
                     const s2s_pieces *pieces, char *err, size_t errlen)
{
    const char *module = tgx_torch_module_of(m->cfg.cell);
    if (!module) {
        snprintf(err, errlen, "cannot export %s: cell '%s' has no PyTorch module (" TGX_TORCH_CELLS
                 ")", path, m->cfg.cell->name);
        return -1;
    }
    s2s_meta mm;
    if (s2s_meta_make(&mm, &m->cfg, src, tgt, tok, pieces, path, err, errlen) != 0) return -1;
    tg_ckpt_meta meta[S2S_META_MAX + 2];
    meta[0] = (tg_ckpt_meta){TGX_TORCH_KEY_MODULE, S2S_TORCH_MODULE};
    meta[1] = (tg_ckpt_meta){TGX_TORCH_KEY_CELL, module};
    memcpy(meta + 2, mm.kv, mm.n * sizeof *meta);
    int rc = tgx_torch_export_named(m->params, s2s_torch_name, NULL, S2S_TORCH_MODULE, path,
                                    meta, mm.n + 2, err, errlen);
    s2s_meta_free(&mm);
    return rc;
}

/* The file says it is a Seq2Seq of a cell with a PyTorch module. */
static int check_module(const tg_checkpoint *ck, const char *path, char *err, size_t errlen)
{
    const char *module = tg_checkpoint_meta(ck, TGX_TORCH_KEY_MODULE);
    if (module && strcmp(module, S2S_TORCH_MODULE) != 0)
        return snprintf(err, errlen, "%s: a PyTorch %.40s, not a %s (metadata '%s')", path,
                        module, S2S_TORCH_MODULE, TGX_TORCH_KEY_MODULE), -1;
    if (tgx_torch_refuse_native(ck, path, err, errlen) != 0) return -1;
    if (!module)
        return snprintf(err, errlen, "%s: metadata '%s' is missing: not a %s file "
                        "(scripts/torch_models.py save_seq2seq writes one)", path,
                        TGX_TORCH_KEY_MODULE, S2S_TORCH_MODULE), -1;
    return 0;
}

/* The metadata's cell has a PyTorch module, and the torch.cell key agrees. */
static int check_cell(const tg_checkpoint *ck, const char *path, const tg_cell_kind *kind,
                      char *err, size_t errlen)
{
    const char *module = tgx_torch_module_of(kind);
    const char *cell = tg_checkpoint_meta(ck, TGX_TORCH_KEY_CELL);
    if (!module)
        return snprintf(err, errlen, "%s: cell '%s' has no PyTorch module (" TGX_TORCH_CELLS ")",
                        path, kind->name), -1;
    if (cell && strcmp(cell, module) != 0)
        return snprintf(err, errlen, "%s: metadata '%s' is '%.20s' but 's2s.cell' is '%s' "
                        "(nn.%s)", path, TGX_TORCH_KEY_CELL, cell, kind->name, module), -1;
    return 0;
}

int s2s_torch_import(const char *path, s2s_model *m, s2s_vocab *src, s2s_vocab *tgt,
                     s2s_tokenize_options *tok, char *err, size_t errlen)
{
    memset(m, 0, sizeof *m);
    tg_checkpoint *ck = tg_checkpoint_open(path, err, errlen);
    if (!ck) return -1;
    int rc = check_module(ck, path, err, errlen);
    if (rc == 0) rc = s2s_build_from_meta(ck, path, m, src, tgt, tok, err, errlen);
    if (rc != 0) {
        tg_checkpoint_close(ck);
        return -1;
    }
    char why[768];
    rc = check_cell(ck, path, m->cfg.cell, err, errlen);
    if (rc == 0 && (rc = tgx_torch_import_named(ck, m->params, s2s_torch_name, NULL, why,
                                                sizeof why)) != 0)
        snprintf(err, errlen, "%s: %s", path, why);
    tg_checkpoint_close(ck);
    if (rc != 0) {
        s2s_model_free(m);
        s2s_vocab_free(tgt);
        s2s_vocab_free(src);
    }
    return rc;
}
