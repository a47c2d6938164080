/* The seq2seq model: source embedding -> encoder stack (any cell) whose
 * final states start the decoder stack -> linear to the target vocabulary ->
 * softmax cross-entropy, trained with teacher forcing.
 *
 *   encoder: h^enc = stack_enc(E_src[x_1..x_S])        (masked by source length)
 *   decoder: h_t = stack_dec([E_tgt[y_{t-1}] | ctx], state from the encoder)
 *            p(y_t | ...) = softmax(h_t W_out^T + b_out)
 * ctx (feed_context) is the encoder's top-layer final h, given to every
 * decoder step as in Cho et al. (2014), so the decoder does not have to carry
 * the whole source in its state alone; without it the decoder input is the
 * embedding only (Sutskever et al. 2014).
 *
 * Batches are time-major and padded: step t of row b is at t*B + b. Padding
 * never reaches the result: the encoder carries each row's state past its
 * length (tg_rnn_stack lengths), and padded decoder targets are <pad>, the
 * ignore index of the loss. */
#ifndef S2S_MODEL_H
#define S2S_MODEL_H

#include "tapegrad.h"
#include "tg_layers.h"
#include "tg_attention.h"

typedef struct s2s_config {
    const tg_cell_kind *cell;
    int embed, hidden, layers;
    double dropout;
    int src_vocab, tgt_vocab;
    int feed_context;   /* decoder input = [embedding | encoder top final h] */
    int reverse_source; /* feed the source backwards (Sutskever et al.) */
    /* Attention (layers/tg_attention.h): TG_ATTN_NONE keeps the model above.
     * Otherwise the decoder is a tg_attn_decoder with input feeding (it
     * replaces feed_context, which is then unused) over the encoder's
     * per-step outputs, masked by source length; bidirectional swaps the
     * encoder for a tg_bienc of hidden/2 units per direction (hidden even),
     * whose bridge starts the decoder. */
    tg_attn_kind attention;
    int bidirectional;
} s2s_config;

/* The widest --embed and --hidden (flags and model files alike). */
#define S2S_MAX_WIDTH 8192
/* --shards at most (each a replica's gradient and a tape) */
#define S2S_MAX_SHARDS 256

/* The parameters of a model of config c, counted before it is built and at
 * their largest (attention and the decoder's fed input as if on): to refuse
 * a configuration, or a model file's metadata, that cannot fit in memory. */
size_t s2s_config_numel_bound(const s2s_config *c);
/* The same at their fewest (the embeddings, the output layer's weights and
 * the recurrent weights from the embedding's size on): a model file's
 * tensors hold at least as many values. */
size_t s2s_config_numel_floor(const s2s_config *c);

typedef struct s2s_model {
    s2s_config cfg;
    tg_params *params;
    tg_embed src_emb, tgt_emb;
    tg_rnn_stack enc, dec;       /* enc: unless bidirectional; dec: no attention only */
    tg_bienc bienc;              /* bidirectional */
    tg_attn_decoder adec;        /* attention */
    tg_linear out;
} s2s_model;

/* Registers every parameter, initialised from seed. 0, or -1 (no memory). */
int s2s_model_init(s2s_model *m, const s2s_config *c, uint64_t seed);
/* The same on a caller's parameter set, which m does not own (do not call
 * s2s_model_free): on a data-parallel replica this builds the worker's view
 * of the master's values. */
int s2s_model_init_on(s2s_model *m, const s2s_config *c, tg_params *params, uint64_t seed);
/* Frees the parameters made by s2s_model_init. */
void s2s_model_free(s2s_model *m);

/* A padded, time-major batch; the arrays live on a tape's arena. */
typedef struct s2s_batch {
    int B, Ts, Tt;
    int *src;     /* Ts*B ids (reversed within each row's length if reverse_source), <pad> after */
    int *src_len; /* B */
    int *dec_in;  /* Tt*B: <bos> y_1 .. y_n, then <pad> */
    int *dec_out; /* Tt*B: y_1 .. y_n <eos>, then <pad> (ignored by the loss) */
    int n_tgt;    /* target tokens counted by the loss (sum of n + 1) */
} s2s_batch;

/* Builds a batch of B pairs from id sequences on t's arena. tgt may be NULL
 * (decoding: no dec_in/dec_out). min_ts / min_tt (0: none) pad further, for
 * tests of padding invariance. Lengths must be >= 1. */
void s2s_batch_make(s2s_batch *b, tg_tape *t, const s2s_config *c, int B, const int *const *src,
                    const int *src_len, const int *const *tgt, const int *tgt_len, int min_ts,
                    int min_tt);

/* Encoder final states, one per layer (final[layers]); dropout_rng NULL in
 * evaluation. */
void s2s_encode(tg_tape *t, const s2s_model *m, const s2s_batch *b, tg_state *final,
                tg_rng *dropout_rng);

/* The teacher-forced logits (Tt*B x tgt_vocab, time-major: step t of row b
 * at t*B + b) that s2s_loss scores; enc_final as there. */
tg_tensor *s2s_logits(tg_tape *t, const s2s_model *m, const s2s_batch *b, tg_rng *dropout_rng,
                      tg_state *enc_final);

/* Mean cross-entropy per target token (1 x 1) under teacher forcing.
 * enc_final (may be NULL) receives the encoder's final states. */
tg_tensor *s2s_loss(tg_tape *t, const s2s_model *m, const s2s_batch *b, tg_rng *dropout_rng,
                    tg_state *enc_final);
/* The same with label smoothing in [0, 1) (tg_softmax_xent_smoothed): the
 * training loss of --label-smoothing; 0 is s2s_loss. */
tg_tensor *s2s_loss_smoothed(tg_tape *t, const s2s_model *m, const s2s_batch *b, double smoothing,
                             tg_rng *dropout_rng, tg_state *enc_final);

/* Attention models: the encoder's memory (S*B x M, time-major) as the
 * decoder reads it, with the decoder's start states in init[layers]. */
tg_tensor *s2s_encode_memory(tg_tape *t, const s2s_model *m, const s2s_batch *b, tg_state *init,
                             tg_rng *dropout_rng);
/* Width M of that memory (hidden either way: hidden/2 per direction). */
int s2s_memory_width(const s2s_config *c);

/* One attention decoder step for B rows: previous tokens y, state *s (in
 * and out; s->feed is the input feed) over memory mem -> logits. weights
 * (NULL, or receives the step's B x S attention weights, memory order). */
tg_tensor *s2s_attn_decode_step(tg_tape *t, const s2s_model *m, const int *y, int B,
                                const tg_attn_memory *mem, tg_attn_dec_state *s,
                                tg_tensor **weights);

/* One decoder step for B rows: previous tokens y (B ids), state in[layers]
 * -> logits (B x tgt_vocab), state out[layers]. ctx: B x hidden encoder
 * context (feed_context), else NULL. */
tg_tensor *s2s_decode_step(tg_tape *t, const s2s_model *m, const int *y, int B,
                           const tg_state *in, tg_tensor *ctx, tg_state *out);

/* Bytes of arena a training step of this shape needs (a generous bound). */
size_t s2s_arena_bytes(const s2s_config *c, int B, int Ts, int Tt);

#endif
