/* PyTorch interchange for the seq2seq model (issue 16): a file in the names
 * and shapes of scripts/torch_models.py's Seq2Seq, so that
 * `Seq2Seq(...).load_state_dict(tensors, strict=True)` takes it as it is
 * (torch_models.load_seq2seq builds the module from the file), and the
 * reverse (torch_models.save_seq2seq writes one this imports).
 *
 * The module (E embed, H hidden, L layers, V_s / V_t the vocabularies,
 * nn.X the cell's nn.LSTM / nn.GRU / nn.RNN(tanh), time-major):
 *   src_embed   nn.Embedding(V_s, E)
 *   tgt_embed   nn.Embedding(V_t, E)
 *   encoder     nn.X(E, H, L)                        one direction, or
 *   encoder.fwd nn.X(E, H/2, L), encoder.bwd the same  --bidirectional: two
 *               stacks meeting only at the top (not nn.X(bidirectional=True),
 *               whose layer l+1 reads both directions of layer l), and
 *   encoder.bridge.<l>.h  nn.Linear(H, H)  h_dec = tanh(W [h_fwd; h_bwd] + b)
 *   encoder.bridge.<l>.c  nn.Linear(H, H)  c_dec = W [c_fwd; c_bwd] + b (LSTM)
 *   decoder     nn.X(E + F, H, L)   F = H with attention (input feeding: the
 *               previous attentional output) or --feed-context (the
 *               encoder's top final h), else 0; starts from the encoder's
 *               final states (bridged when bidirectional)
 *   attn.linear_in       nn.Linear(H, H, bias=False)  general: score = h . W m
 *   attn.linear_context  nn.Linear(H, H, bias=False)  mlp: v . tanh(Wq h + bq + U m)
 *   attn.linear_query    nn.Linear(H, H)              mlp
 *   attn.v               nn.Linear(H, 1, bias=False)  mlp
 *   attn.linear_out      nn.Linear(2H, H, bias=mlp)   out = tanh(W [ctx; h] (+ b))
 *   out                  nn.Linear(H, V_t)            logits
 * Ours -> PyTorch's names: "<stack>.l<k>.weight_ih" -> "<stack>.weight_ih_l<k>"
 * (stacks encoder, encoder.fwd, encoder.bwd, decoder), "encoder.bridge.l<l>.h"
 * -> "encoder.bridge.<l>.h", "decoder.attn.*" -> "attn.*", the rest as
 * they are; every bias [1, N] -> [N]. The values are the same.
 * Metadata: torch.module "Seq2Seq", torch.cell "LSTM"/"GRU"/"RNN", and every
 * s2s.* key of a --save file (model_io.h: shape, attention, bidirectional,
 * tokenizer, both vocabularies, the piece models of a subword model), so an
 * imported file needs nothing else. */
#ifndef S2S_TORCH_H
#define S2S_TORCH_H

#include <stddef.h>

#include "model.h"
#include "pairs.h"
#include "pieces.h"

#define S2S_TORCH_MODULE "Seq2Seq"

/* Writes m in the names above to path, atomically, with its vocabularies,
 * tokenizer options and piece models (NULL or off: word mode). 0, or -1
 * with a message (a cell without a PyTorch module, a write error). */
int s2s_torch_export(const char *path, const s2s_model *m, const s2s_vocab *src,
                     const s2s_vocab *tgt, const s2s_tokenize_options *tok,
                     const s2s_pieces *pieces, char *err, size_t errlen);

/* Reads a Seq2Seq file (an export, or torch_models.save_seq2seq's): the
 * architecture and vocabularies from its metadata, then every tensor
 * checked against that architecture's names and shapes, strictly (none
 * missing, none extra). The piece models: s2s_load_pieces(path, ...), as
 * for a --save file. 0, or -1 with one line naming the file and the
 * problem; nothing to free then. */
int s2s_torch_import(const char *path, s2s_model *m, s2s_vocab *src, s2s_vocab *tgt,
                     s2s_tokenize_options *tok, char *err, size_t errlen);

#endif
