/* PyTorch interchange: a model file in the names and shapes of a PyTorch
 * state_dict, so that `module.load_state_dict(tensors, strict=True)` takes it
 * as it is, and the reverse.
 *
 * The modules are defined in scripts/torch_models.py (with a safetensors
 * reader/writer, as Debian 12 has no python3-safetensors):
 *
 *   CharRNN (charlm):  embed = nn.Embedding(vocab, embed)
 *                      rnn   = nn.LSTM | nn.GRU | nn.RNN(tanh)(embed, hidden, layers)
 *                      head  = nn.Linear(hidden, vocab)
 *                      ids [T, B] (time-major, batch_first=False) -> logits [T, B, vocab]
 *   RowRNN (rowseq):   rnn   = nn.LSTM | nn.GRU | nn.RNN(tanh)(cols, hidden, layers,
 *                                                               batch_first=True)
 *                      head  = nn.Linear(hidden, classes)
 *                      images [B, rows, cols] in [0, 1] (bytes / 255) -> logits [B, classes]
 *                      from the top layer's last hidden state
 *
 * Names: ours -> PyTorch's
 *   embed.weight [V, E]          -> embed.weight [V, E]
 *   rnn.l<k>.weight_ih [G*H, I]  -> rnn.weight_ih_l<k>     (also weight_hh)
 *   rnn.l<k>.bias_ih [1, G*H]    -> rnn.bias_ih_l<k> [G*H] (also bias_hh)
 *   head.weight [C, H]           -> head.weight
 *   head.bias [1, C]             -> head.bias [C]
 * The values are the same (our layouts are PyTorch's, gates in its order:
 * LSTM i,f,g,o, GRU r,z,n). Exported values are F32 in the float build and
 * F64 in the double build; load_state_dict converts either.
 *
 * Cells without a PyTorch module (mgu, any user cell) are refused. The
 * seq2seq encoder-decoder (Seq2Seq) uses the named export and import below
 * with its own names (examples/seq2seq/torch_s2s.h). */
#ifndef TG_EXAMPLES_TORCH_IO_H
#define TG_EXAMPLES_TORCH_IO_H

#include <stddef.h>

#include "charmodel.h"
#include "tapegrad.h"
#include "text.h"
#include "tg_checkpoint.h"
#include "tg_layers.h"

#ifdef __cplusplus
extern "C" {
#endif

/* Metadata an export adds: which module of scripts/torch_models.py
 * ("CharRNN" or "RowRNN") and which recurrent module ("LSTM", "GRU", "RNN"). */
#define TGX_TORCH_KEY_MODULE "torch.module"
#define TGX_TORCH_KEY_CELL "torch.cell"

/* A model's architecture, read from the tensor shapes of a PyTorch-named file. */
typedef struct tgx_torch_arch {
    const tg_cell_kind *kind; /* &tg_cell_lstm, &tg_cell_gru or &tg_cell_rnn */
    int vocab, embed;         /* nn.Embedding(vocab, embed); both 0 without one */
    int in;                   /* layer 0's input width: embed, or a step's features */
    int hidden, layers;
    int out; /* nn.Linear(hidden, out): the vocabulary or the classes */
} tgx_torch_arch;

/* Why a cell is refused, for messages: "cell 'mgu' has no PyTorch module ("
 * TGX_TORCH_CELLS ")". */
#define TGX_TORCH_CELLS "only lstm, gru and rnn map to nn.LSTM, nn.GRU and nn.RNN"

/* "LSTM", "GRU" or "RNN" for a built-in cell with a PyTorch module; NULL
 * for any other (mgu, user cells). */
const char *tgx_torch_module_of(const tg_cell_kind *kind);

/* Writes the parameters of p (an "embed" embedding or none, an "rnn" stack
 * of kind, a "head" linear) under PyTorch's names and shapes to path,
 * atomically, adding TGX_TORCH_KEY_* and meta (may be NULL) to the metadata.
 * 0 ok; -1 with a message (a cell without a PyTorch module, a parameter
 * with no place in the module, a write error). */
int tgx_torch_export(const tg_params *p, const tg_cell_kind *kind, const char *path,
                     const tg_ckpt_meta *meta, size_t n_meta, char *err, size_t errlen);

/* Opens a PyTorch-named file (an export, or a state_dict written by
 * scripts/torch_models.py) and reads its architecture from the shapes.
 * NULL with a message naming the file and tensor when it is not one of the
 * modules above (bidirectional and projected LSTMs included), or naming
 * --load or --resume when tapegrad saved it in its own names. */
tg_checkpoint *tgx_torch_open(const char *path, tgx_torch_arch *a, char *err, size_t errlen);
/* For --load: -1 with "PATH: a PyTorch X state_dict ...: give it to
 * --import-torch" in err when c is an export (its metadata names a PyTorch
 * module) of module_read, the module this program's --import-torch reads
 * ("another program's model" when it names another), else 0. */
int tgx_torch_refuse_as_model(const tg_checkpoint *c, const char *path, const char *module_read,
                              char *err, size_t errlen);
/* For --import-torch: -1 with "PATH: a model in tapegrad's names ...: give
 * it to --load" (or a training checkpoint's "--resume") in err when
 * tg_checkpoint_save wrote c (it has tapegrad's data checksum and no PyTorch
 * module), else 0. */
int tgx_torch_refuse_native(const tg_checkpoint *c, const char *path, char *err, size_t errlen);

/* Copies the file's tensors into p, all or nothing, as strict=True does:
 * every parameter of p must be in the file (biases [N] or [1, N]) with its
 * shape, and every tensor of the file must be a parameter of p. err names
 * the tensor, not the file (the caller adds the path). A read that fails
 * half-way (tg_checkpoint_load_params: the file changed since the open, an
 * I/O error) leaves p partly loaded; the programs then exit. */
int tgx_torch_import(const tg_checkpoint *c, tg_params *p, char *err, size_t errlen);

/* ------------------------------------------------------------------ any module */

/* Names a parameter in a PyTorch module: ours -> out (cap bytes), *bias set
 * when the tensor is 1-D [N] there (ours [1, N]). 0, or -1 when the
 * parameter has no place in the module. ctx: the namer's own. */
typedef int (*tgx_torch_namer)(const char *ours, char *out, size_t cap, int *bias, void *ctx);

/* A recurrent stack's names (tg_rnn_stack_init with prefix from) as an
 * nn.LSTM/GRU/RNN registered as to: "<from>.l<k>.weight_ih" ->
 * "<to>.weight_ih_l<k>" (weight_hh, bias_ih, bias_hh alike; biases 1-D).
 * 0 and out set; 1 when ours is not "<from>.l..."; -1 when it is but has
 * no PyTorch field (a peephole's, say). */
int tgx_torch_stack_name(const char *ours, const char *from, const char *to, char *out,
                         size_t cap, int *bias);

/* Writes every parameter of p under name's names to path, atomically,
 * with meta (the caller's TGX_TORCH_KEY_* included). module names the
 * module in messages. 0 ok; -1 with a message. */
int tgx_torch_export_named(const tg_params *p, tgx_torch_namer name, void *ctx,
                           const char *module, const char *path, const tg_ckpt_meta *meta,
                           size_t n_meta, char *err, size_t errlen);

/* tgx_torch_import under name's names: all or nothing, strict (every
 * parameter present with its shape, no tensor left over). */
int tgx_torch_import_named(const tg_checkpoint *c, tg_params *p, tgx_torch_namer name,
                           void *ctx, char *err, size_t errlen);

/* ------------------------------------------------------------------ charlm: one call each */

/* Metadata key of the vocabulary (tg_vocab_format's form, ids in order) and
 * of the dropout, as in a charmodel file. */
#define TGX_TORCH_KEY_VOCAB CHARMODEL_KEY_VOCAB
#define TGX_TORCH_KEY_DROPOUT CHARMODEL_KEY_DROPOUT

/* Exports a char model and its vocabulary (v->size == the model's vocab). */
int tgx_torch_export_charmodel(const charmodel *m, const tg_vocab *v, const char *path, char *err,
                               size_t errlen);

/* Makes m and v from a PyTorch-named CharRNN file, like charmodel_load: the
 * architecture from the shapes, the vocabulary from the metadata (required;
 * scripts/torch_models.py save_char_rnn writes it), the dropout from the
 * metadata or 0. 0 ok; -1 with a message (nothing to free then). */
int tgx_torch_import_charmodel(const char *path, charmodel *m, tg_vocab *v, char *err,
                               size_t errlen);

/* rowseq, in three calls (rowseq's model is built by its trainer):
 *   export: tgx_torch_export(tr.params, tr.cfg.kind, path, NULL, 0, err, n)
 *   import: c = tgx_torch_open(path, &a, err, n); check a.embed == 0 and
 *           a.in == the images' cols; build the trainer with a.kind,
 *           a.hidden, a.layers, classes = a.out; tgx_torch_import(c,
 *           tr.params, err, n); tg_checkpoint_close(c). */

#ifdef __cplusplus
}
#endif
#endif
