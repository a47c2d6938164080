/* tapegrad layers: attention, an attention decoder with input feeding, and a
 * bidirectional encoder (layers/attention.c, attn_decoder.c, bidir.c).
 * Included by tg_layers.h; composed of public ops only, no backward code.
 *
 * Memory: the encoder's outputs, time-major (S*B x M, source step s of
 * example b in row s*B + b, as tg_rnn_forward returns them). Source padding
 * (steps s >= lengths[b]) is masked out of every softmax; an example with
 * length 0 gets a zero context (the softmax of an all-masked row is 0).
 *
 * Parameter names (OpenNMT-py's GlobalAttention, under "<prefix>.attn"):
 *   general: linear_in.weight       H x M   keys = m W_in^T, computed once per batch
 *                                           (OpenNMT applies its linear_in to the
 *                                           query; h . (W m) is the same bilinear form
 *                                           with the weight transposed: with M == H,
 *                                           load OpenNMT's weight transposed)
 *   mlp:     linear_context.weight  H x M   keys = m U^T, once per batch (no bias)
 *            linear_query.weight    H x H   W q + b, per step
 *            linear_query.bias      1 x H
 *            v.weight               1 x H   score = v . tanh(W q + b + U m)
 *   all:     linear_out.weight      H x (M+H)  out = tanh([c; h] W_c^T (+ b_c))
 *            linear_out.bias        1 x H      mlp only (as OpenNMT)
 *   dot:     score = h . m, needs M == H. */
#ifndef TG_ATTENTION_H
#define TG_ATTENTION_H

#include "tg_layers.h"

#ifdef __cplusplus
extern "C" {
#endif

/* ------------------------------------------------------------------ attention */

typedef enum tg_attn_kind {
    TG_ATTN_NONE = 0, /* no attention (a program's choice; no layer of this kind) */
    TG_ATTN_DOT,      /* Luong dot:     h . m */
    TG_ATTN_GENERAL,  /* Luong general: h . (W_a m) */
    TG_ATTN_MLP,      /* Bahdanau:      v . tanh(W q + b + U m) */
} tg_attn_kind;

/* "none", "dot", "general", "mlp". by_name: 0 and *kind set, -1 unknown. */
const char *tg_attn_kind_name(tg_attn_kind kind);
int tg_attn_kind_by_name(const char *name, tg_attn_kind *kind);
const char *tg_attn_kind_names(void); /* "none,dot,general,mlp", for --help */

typedef struct tg_attention {
    tg_attn_kind kind;
    int query, mem;             /* H (decoder hidden), M (memory width) */
    tg_tensor *linear_in;       /* general */
    tg_tensor *linear_context;  /* mlp */
    tg_linear linear_query;     /* mlp */
    tg_tensor *v;               /* mlp */
    tg_tensor *out_w, *out_b;   /* linear_out; out_b NULL except for mlp */
} tg_attention;

/* Registers "<prefix>.linear_in.weight" ... (see the top). kind must not be
 * TG_ATTN_NONE; dot needs mem == query. 0 ok, -1 out of memory. */
int tg_attention_init(tg_attention *a, tg_params *p, const char *prefix, tg_attn_kind kind,
                      int query, int mem, tg_rng *r);

/* One batch's memory, with what every step reuses computed once. */
typedef struct tg_attn_memory {
    int S, B;
    tg_tensor *values; /* S*B x M: what the context sums */
    tg_tensor *keys;   /* S*B x H: scored against (dot: values) */
    tg_tensor *v_rows; /* mlp: v repeated over the B rows (B x H), else NULL */
    const int *mask;   /* B*S ints on the tape, 1 = padding; NULL when none */
} tg_attn_memory;

/* values: S*B x M. lengths: B entries in 0..S, or NULL (all S). */
tg_attn_memory tg_attn_memory_init(tg_tape *t, const tg_attention *a, tg_tensor *values, int S,
                                   int B, const int *lengths);

/* One decoder step: h (B x H) -> attentional output tanh(W_c [c; h]) (B x H).
 * weights (may be NULL) receives the attention weights (B x S, rows sum to
 * 1 over unpadded positions, 0 on padding). */
tg_tensor *tg_attention_forward(tg_tape *t, const tg_attention *a, const tg_attn_memory *m,
                                tg_tensor *h, tg_tensor **weights);

/* ------------------------------------------------------------------ decoder */

/* A recurrent stack with attention and input feeding (OpenNMT's default RNN
 * decoder): layer 0's input at step t is [embedding(y_t); out_{t-1}], the
 * attentional output of the previous step (zeros at t = 0); the top layer's
 * h goes through attention, whose output (after dropout) is both the step's
 * output and the next step's feed. Any cell kind, any number of layers.
 * Parameters: "<prefix>.l<l>.*" (the stack; layer 0 has in = embed + hidden,
 * W_ih's first embed columns multiply the embedding), "<prefix>.attn.*". */
typedef struct tg_attn_decoder {
    tg_rnn_stack rnn;
    tg_attention attn;
    int embed, hidden;
    double dropout; /* on the attentional output; between layers too (rnn.dropout) */
} tg_attn_decoder;

int tg_attn_decoder_init(tg_attn_decoder *d, tg_params *p, const char *prefix,
                         const tg_cell_kind *cell, tg_attn_kind kind, int embed, int hidden,
                         int layers, int mem, double dropout, tg_rng *r);

/* The decoder's state between steps. */
typedef struct tg_attn_dec_state {
    tg_state layer[TG_MAX_LAYERS];
    tg_tensor *feed; /* B x H: last attentional output (zeros before the first step) */
} tg_attn_dec_state;

/* Start state: init[l] per layer (NULL, or a NULL .h: zeros), zero feed. */
tg_attn_dec_state tg_attn_decoder_start(tg_tape *t, const tg_attn_decoder *d, int B,
                                        const tg_state *init);

/* One step from embedded inputs x (B x embed): updates *s, returns the
 * attentional output (B x H; the generator's input). For greedy and beam
 * search; weights as tg_attention_forward. dropout_rng NULL: no dropout. */
tg_tensor *tg_attn_decoder_step(tg_tape *t, const tg_attn_decoder *d, const tg_attn_memory *m,
                                tg_tensor *x, tg_attn_dec_state *s, tg_tensor **weights,
                                tg_rng *dropout_rng);

/* Teacher-forced run over T steps of ids (T*B, time-major) embedded by emb
 * (emb->dim == d->embed): the steps of tg_attn_decoder_step with layer 0's
 * embedding projection hoisted (one projection of the distinct ids for all
 * steps). init as tg_attn_decoder_start. Returns the T*B x H attentional
 * outputs; weights (NULL, or T entries) receives each step's B x S weights. */
tg_tensor *tg_attn_decoder_forward(tg_tape *t, const tg_attn_decoder *d, const tg_embed *emb,
                                   const int *ids, int T, int B, const tg_attn_memory *m,
                                   const tg_state *init, tg_tensor **weights,
                                   tg_rng *dropout_rng);

/* ------------------------------------------------------------------ bidirectional encoder */

/* Two stacks over the padded batch: "fwd" reads each example left to right,
 * "bwd" reads it right to left within its own length (padding stays at the
 * end, so the stack's length masking applies as usual). Each stack has its
 * own layers (the directions meet only at the top): memory row s*B + b is
 * [fwd_h(s); bwd_h(s)] (S*B x 2*hidden_dir), bwd_h(s) being the backward
 * state after reading positions len-1 .. s.
 * Bridge to a decoder of dec_hidden units and the same number of layers,
 * per layer l (JoeyNMT's bridge for h; plain linear for an LSTM's c, which
 * is not bounded):
 *   h_dec(l) = tanh([h_fwd(l); h_bwd(l)] W_h^T + b_h)   "<prefix>.bridge.l<l>.h.weight/.bias"
 *   c_dec(l) =      [c_fwd(l); c_bwd(l)] W_c^T + b_c    "<prefix>.bridge.l<l>.c.weight/.bias"
 * Stacks: "<prefix>.fwd.l<l>.*", "<prefix>.bwd.l<l>.*". */
typedef struct tg_bienc {
    tg_rnn_stack fwd, bwd;
    tg_linear bridge_h[TG_MAX_LAYERS], bridge_c[TG_MAX_LAYERS];
    int layers, hidden_dir, dec_hidden;
} tg_bienc;

int tg_bienc_init(tg_bienc *e, tg_params *p, const char *prefix, const tg_cell_kind *cell, int in,
                  int hidden_dir, int layers, double dropout, int dec_hidden, tg_rng *r);

/* X: S*B x in (time-major, padded). lengths: B entries in 0..S or NULL.
 * Returns the memory (S*B x 2*hidden_dir); dec_init (NULL, or layers
 * entries) receives the bridged decoder start states. */
tg_tensor *tg_bienc_forward(tg_tape *t, const tg_bienc *e, tg_tensor *X, int S, int B,
                            const int *lengths, tg_state *dec_init, tg_rng *dropout_rng);
/* The same fed by token ids (S*B) through emb, projecting distinct ids once
 * per direction (tg_rnn_forward with .emb and .ids). */
tg_tensor *tg_bienc_forward_ids(tg_tape *t, const tg_bienc *e, const tg_embed *emb,
                                const int *ids, int S, int B, const int *lengths,
                                tg_state *dec_init, tg_rng *dropout_rng);

#ifdef __cplusplus
}
#endif
#endif
