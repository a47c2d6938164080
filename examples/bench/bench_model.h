/* The models the benchmark trains, on synthetic data, sharded for the
 * data-parallel workers.
 *
 *   char:    ids (T x B) -> embedding E (or one-hot, E = 0) -> stack of
 *            `layers` cells -> linear(hidden, vocab) on all T*B rows at once
 *            -> softmax cross-entropy (mean over T*B).
 *   seq2seq: the seq2seq program's model (examples/seq2seq/model.c) without
 *            the context feed: src ids (S x B) -> embedding -> encoder
 *            stack; target inputs (T x B, BOS first) -> embedding -> decoder
 *            stack started from the encoder's final states ->
 *            linear(hidden, tgt_vocab) -> mean cross-entropy over the T*B
 *            decoder steps. With attention (config g), the program's
 *            attention decoder (layers/tg_attention.h: input feeding, the
 *            attentional output goes to the linear) over the encoder's
 *            per-step outputs.
 *
 * Same shapes as ../shared/anchors/torch_rnn_bench.py: there the embedding
 * width equals hidden, here it is --embed. */
#ifndef BENCH_MODEL_H
#define BENCH_MODEL_H

#include "tapegrad.h"
#include "tg_layers.h"

#include "model.h" /* examples/seq2seq */

#define BENCH_POOL 8 /* distinct synthetic batches, cycled like the anchor script */

typedef enum bench_task { BENCH_CHAR, BENCH_SEQ2SEQ } bench_task;

typedef struct bench_config {
    bench_task task;
    const tg_cell_kind *cell;
    int vocab, embed, hidden, layers, seq, batch, shards;
    int src_vocab, tgt_vocab, src_len, tgt_len; /* seq2seq */
    tg_attn_kind attention;                     /* seq2seq: TG_ATTN_NONE (f) or a kind (g) */
    uint64_t seed;
    /* fold_embed: embedding inputs go to tg_rnn_forward as ids (the library
     * projects the table instead of the embedded rows when vocab < T*rows);
     * 0 = tg_embed_forward, then the rows, the "before". The char task only:
     * seq2seq runs the program's model as it is. */
    int fold_embed;
} bench_config;

/* One worker's view of the model: layers built over its parameter replica. */
typedef struct bench_net {
    tg_embed emb;     /* char input (embed > 0) */
    tg_rnn_stack enc; /* char: the only stack */
    tg_linear out;    /* char */
    s2s_model s2s;    /* seq2seq: the program's model over this view's parameters */
} bench_net;

/* Token ids of one pool batch for one shard, time-major (step t: rows t*rows..). */
typedef struct bench_shard_data {
    int rows;             /* batch rows of this shard */
    int *in[BENCH_POOL];  /* char: T*rows inputs; seq2seq: S*rows source ids */
    int *dec[BENCH_POOL]; /* seq2seq: T*rows decoder inputs (BOS, y_0 .. y_{T-2}) */
    int *tgt[BENCH_POOL]; /* T*rows targets */
} bench_shard_data;

typedef struct bench_model {
    bench_config cfg;
    tg_params *params;      /* master */
    bench_net master_net;   /* built over the master parameters (registers them) */
    bench_shard_data whole; /* the whole batch, for single-tape checks */
    tg_workers *workers;
    bench_net *nets;        /* one per shard, over the shard's replica */
    bench_shard_data *data; /* one per shard */
    int batch_index;        /* pool entry of the next step */
} bench_model;

/* Arena bytes one shard's training step needs (with margin). */
size_t bench_arena_bytes(const bench_config *c);
/* Builds master parameters, workers and synthetic data. 0 ok; -1 out of memory. */
int bench_model_init(bench_model *m, const bench_config *c);
void bench_model_free(bench_model *m);
/* One training step over the whole batch (every shard, on up to `threads`
 * threads): zero grads, forward, backward, gradients reduced into the
 * master's in shard order. Returns the mean loss. The caller updates. */
double bench_forward_backward(bench_model *m, int threads);
/* Multiply-add FLOPs of the forward matmuls of one step, times 3 (forward +
 * two backward products), as the anchor script counts them. */
double bench_step_flops(const bench_config *c);
/* Tokens of one step: batch * seq (seq2seq: batch * (src_len + tgt_len)). */
double bench_step_tokens(const bench_config *c);
/* The mean loss of the whole batch of pool entry `pool_index` built on tape t
 * over the master parameters, without shards (for checks: call tg_backward
 * on it to get the single-tape gradient). */
tg_tensor *bench_whole_batch_loss(bench_model *m, tg_tape *t, int pool_index);
/* The loss of one shard's rows (scaled by rows/batch) on tape t over net. */
tg_tensor *bench_shard_loss(const bench_model *m, const bench_net *net, const bench_shard_data *d,
                            int pool_index, tg_tape *t);

#endif
