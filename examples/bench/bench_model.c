/* Benchmark models over data-parallel shards (see bench_model.h). */
#include "bench_model.h"

#include <stdlib.h>
#include <string.h>

#define BOS 0

/* ------------------------------------------------------------------ sizes */

static int input_width(const bench_config *c)
{
    if (c->task == BENCH_SEQ2SEQ) return c->embed;
    return c->embed > 0 ? c->embed : c->vocab;
}

static int steps_in(const bench_config *c)
{
    return c->task == BENCH_SEQ2SEQ ? c->src_len : c->seq;
}

static int steps_out(const bench_config *c)
{
    return c->task == BENCH_SEQ2SEQ ? c->tgt_len : c->seq;
}

static int out_vocab(const bench_config *c)
{
    return c->task == BENCH_SEQ2SEQ ? c->tgt_vocab : c->vocab;
}

double bench_step_tokens(const bench_config *c)
{
    return (double)c->batch * (c->task == BENCH_SEQ2SEQ ? c->src_len + c->tgt_len : c->seq);
}

/* Forward matmul FLOPs of one stack over T steps of B rows. */
static double stack_flops(const bench_config *c, int in, int T)
{
    double gh = (double)c->cell->gates * c->hidden, f = 0;
    for (int l = 0; l < c->layers; l++)
        f += 2.0 * c->batch * T * ((l ? c->hidden : in) + c->hidden) * gh;
    return f;
}

/* Forward matmul FLOPs of attention as layers/attention.c performs them:
 * the keys once per batch (general: S*B rows times W_in; mlp: times U),
 * then per decoder step the scores and the context (B x S x H each), the
 * output [c; h] W_c^T and, for mlp, the query's linear. The decoder's layer
 * 0 reads [embedding; feed]: the feed's columns are in stack_flops. */
static double attention_flops(const bench_config *c)
{
    double B = c->batch, S = c->src_len, T = c->tgt_len, H = c->hidden, f = 0;
    if (c->attention == TG_ATTN_GENERAL || c->attention == TG_ATTN_MLP) f += 2 * B * S * H * H;
    if (c->attention == TG_ATTN_MLP) f += 2 * B * T * H * H;
    f += 2 * B * T * S * H * 2;       /* scores, context */
    f += 2 * B * T * (H + H) * H;     /* linear_out */
    return f;
}

double bench_step_flops(const bench_config *c)
{
    double f = stack_flops(c, input_width(c), steps_in(c));
    if (c->task == BENCH_SEQ2SEQ) {
        int feed = c->attention != TG_ATTN_NONE ? c->hidden : 0;
        f += stack_flops(c, c->embed + feed, c->tgt_len);
        if (feed) f += attention_flops(c);
    }
    f += 2.0 * c->batch * steps_out(c) * c->hidden * out_vocab(c);
    return 3 * f;
}

/* A generous first guess of one shard's arena (bytes); the real need is
 * measured with a probe step (bench_model_init) before the workers exist. */
static size_t arena_guess(const bench_config *c, int rows)
{
    double gh = (double)c->cell->gates * c->hidden, h = c->hidden;
    double per_step = c->layers * rows * (16 * gh + 40 * h);
    double steps = steps_in(c) + (c->task == BENCH_SEQ2SEQ ? c->tgt_len : 0);
    double once = (double)rows * steps * (4 * input_width(c) + 4 * c->vocab) +
                  (double)rows * steps_out(c) * 6 * out_vocab(c);
    double nodes = steps * c->layers * 64 * 256.0;
    return (size_t)((per_step * steps + once) * sizeof(tg_real) + nodes + (1u << 20));
}

/* seq2seq: the program's own bound where it is larger (attention adds per
 * decoder step scores over the source the guess above does not count). */
static size_t first_guess(const bench_config *c, int rows)
{
    size_t g = arena_guess(c, rows);
    if (c->task != BENCH_SEQ2SEQ) return g;
    s2s_config sc = {.cell = c->cell, .embed = c->embed, .hidden = c->hidden, .layers = c->layers,
                     .src_vocab = c->src_vocab, .tgt_vocab = c->tgt_vocab,
                     .attention = c->attention};
    size_t s = s2s_arena_bytes(&sc, rows, c->src_len, c->tgt_len);
    return s > g ? s : g;
}

size_t bench_arena_bytes(const bench_config *c) { return first_guess(c, c->batch); }

/* ------------------------------------------------------------------ model */

static int net_init(bench_net *n, tg_params *p, const bench_config *c, tg_rng *r)
{
    memset(n, 0, sizeof *n);
    if (c->task == BENCH_SEQ2SEQ) {
        s2s_config sc = {.cell = c->cell, .embed = c->embed, .hidden = c->hidden,
                         .layers = c->layers, .src_vocab = c->src_vocab,
                         .tgt_vocab = c->tgt_vocab, .attention = c->attention};
        /* the same seed for the master and every replica: one set of values */
        return s2s_model_init_on(&n->s2s, &sc, p, c->seed);
    }
    if (c->embed > 0 && tg_embed_init(&n->emb, p, "emb", c->vocab, c->embed, r)) return -1;
    return tg_rnn_stack_init(&n->enc, p, "rnn", c->cell, input_width(c), c->hidden, c->layers, 0,
                             r) ||
           tg_linear_init(&n->out, p, "out", c->hidden, c->vocab, r);
}

/* A constant (n x vocab) one-hot matrix of ids. */
static tg_tensor *one_hot(tg_tape *t, const int *ids, int n, int vocab)
{
    tg_tensor *x = tg_tensor_new(t, n, vocab, 0);
    for (int i = 0; i < n; i++) x->data[(size_t)i * vocab + ids[i]] = 1;
    return x;
}

/* ------------------------------------------------------------------ forward */

/* A stack over token ids through emb, as every program runs it: the
 * library's ids path (layer 0 projects the embedding table when it has fewer
 * rows than the sequence); with fold_embed = 0, embedded rows, the "before"
 * of that lever. */
static tg_tensor *stack_over_ids(const bench_config *c, tg_tape *t, const tg_rnn_stack *st,
                                 const tg_embed *emb, const int *ids, int T, int B,
                                 const tg_state *init, tg_state *final)
{
    tg_rnn_run run = {.T = T, .B = B, .init = init, .final = final};
    if (c->fold_embed)
        run.emb = emb, run.ids = ids;
    else
        run.x = tg_embed_forward(t, emb, ids, T * B);
    return tg_rnn_forward(t, st, &run);
}

/* The top layer's outputs (T*rows x hidden) for pool batch k of shard d. */
static tg_tensor *top_outputs(const bench_config *c, const bench_net *net,
                              const bench_shard_data *d, int k, tg_tape *t)
{
    int rows = d->rows, T = steps_out(c);
    if (c->embed > 0) return stack_over_ids(c, t, &net->enc, &net->emb, d->in[k], T, rows, NULL, NULL);
    tg_rnn_run run = {.T = T, .B = rows, .x = one_hot(t, d->in[k], T * rows, c->vocab)};
    return tg_rnn_forward(t, &net->enc, &run);
}

/* The seq2seq program's loss over pool batch k of shard d: every source
 * has src_len tokens, every target tgt_len steps (ids from 1: the loss's
 * ignore index 0, <pad>, never occurs). */
static tg_tensor *seq2seq_loss(const bench_config *c, const bench_net *net,
                               const bench_shard_data *d, int k, tg_tape *t)
{
    s2s_batch b = {.B = d->rows, .Ts = c->src_len, .Tt = c->tgt_len, .src = d->in[k],
                   .dec_in = d->dec[k], .dec_out = d->tgt[k], .n_tgt = c->tgt_len * d->rows};
    b.src_len = tg_tape_ints(t, (size_t)d->rows);
    for (int i = 0; i < d->rows; i++) b.src_len[i] = c->src_len;
    return s2s_loss(t, &net->s2s, &b, NULL, NULL);
}

tg_tensor *bench_shard_loss(const bench_model *m, const bench_net *net, const bench_shard_data *d,
                            int k, tg_tape *t)
{
    const bench_config *c = &m->cfg;
    tg_tensor *loss;
    if (c->task == BENCH_SEQ2SEQ) {
        loss = seq2seq_loss(c, net, d, k, t);
    } else { /* the output layer over all T steps: one matmul */
        tg_tensor *logits = tg_linear_forward(t, &net->out, top_outputs(c, net, d, k, t));
        loss = tg_softmax_xent(t, logits, d->tgt[k], -1);
    }
    /* shard means weighted by their share of the batch sum to the batch mean */
    return d->rows == c->batch ? loss : tg_scale(t, loss, (double)d->rows / c->batch);
}

/* ------------------------------------------------------------------ data */

static void shard_data_free(bench_shard_data *d)
{
    for (int k = 0; k < BENCH_POOL; k++) {
        free(d->in[k]);
        free(d->dec[k]);
        free(d->tgt[k]);
    }
    memset(d, 0, sizeof *d);
}

static int shard_data_alloc(bench_shard_data *d, const bench_config *c, int rows)
{
    memset(d, 0, sizeof *d);
    d->rows = rows;
    for (int k = 0; k < BENCH_POOL; k++) {
        d->in[k] = malloc((size_t)steps_in(c) * rows * sizeof(int));
        d->dec[k] = malloc((size_t)steps_out(c) * rows * sizeof(int));
        d->tgt[k] = malloc((size_t)steps_out(c) * rows * sizeof(int));
        if (!d->in[k] || !d->dec[k] || !d->tgt[k]) return -1;
    }
    return 0;
}

/* Synthetic whole-batch data: uniform ids (seq2seq ids from 1, 0 is BOS). */
static void fill_whole(bench_shard_data *d, const bench_config *c, tg_rng *r)
{
    int B = c->batch, lo = c->task == BENCH_SEQ2SEQ;
    int vin = c->task == BENCH_SEQ2SEQ ? c->src_vocab : c->vocab, vout = out_vocab(c);
    for (int k = 0; k < BENCH_POOL; k++) {
        for (int i = 0; i < steps_in(c) * B; i++)
            d->in[k][i] = lo + (int)tg_rng_below(r, (uint32_t)(vin - lo));
        for (int i = 0; i < steps_out(c) * B; i++)
            d->tgt[k][i] = lo + (int)tg_rng_below(r, (uint32_t)(vout - lo));
        for (int i = 0; i < steps_out(c) * B; i++) /* teacher forcing: BOS, y_0 .. */
            d->dec[k][i] = i < B ? BOS : d->tgt[k][i - B];
    }
}

/* Columns b0 .. b0+rows-1 of a time-major (T x B) id array. */
static void take_rows(int *dst, const int *src, int T, int B, int b0, int rows)
{
    for (int t = 0; t < T; t++)
        memcpy(dst + (size_t)t * rows, src + (size_t)t * B + b0, rows * sizeof(int));
}

static void split_shard(bench_shard_data *d, const bench_shard_data *w, const bench_config *c,
                        int b0)
{
    for (int k = 0; k < BENCH_POOL; k++) {
        take_rows(d->in[k], w->in[k], steps_in(c), c->batch, b0, d->rows);
        take_rows(d->dec[k], w->dec[k], steps_out(c), c->batch, b0, d->rows);
        take_rows(d->tgt[k], w->tgt[k], steps_out(c), c->batch, b0, d->rows);
    }
}

/* ------------------------------------------------------------------ set-up */

/* Shard s holds batch rows [s*B/S, (s+1)*B/S). */
static int shard_begin(const bench_config *c, int s)
{
    return (int)((long)s * c->batch / c->shards);
}

/* Arena one shard needs: run one step of the largest shard on a roomy probe
 * tape and keep its high-water mark plus a margin. */
static size_t measure_arena(bench_model *m)
{
    int rows = 0;
    for (int s = 0; s < m->cfg.shards; s++)
        if (m->data[s].rows > rows) rows = m->data[s].rows;
    int big = 0;
    for (int s = 0; s < m->cfg.shards; s++)
        if (m->data[s].rows == rows) big = s;
    tg_tape *t = tg_tape_new(first_guess(&m->cfg, rows) * 2);
    if (!t) return 0;
    tg_tensor *loss = bench_shard_loss(m, &m->master_net, &m->data[big], 0, t);
    tg_backward(t, loss);
    tg_params_zero_grad(m->params);
    size_t need = tg_tape_arena_high_water(t);
    tg_tape_free(t);
    return need + need / 8 + 4096;
}

int bench_model_init(bench_model *m, const bench_config *c)
{
    memset(m, 0, sizeof *m);
    m->cfg = *c;
    tg_rng r;
    tg_rng_seed(&r, c->seed);
    m->params = tg_params_new();
    m->data = calloc((size_t)c->shards, sizeof *m->data);
    m->nets = calloc((size_t)c->shards, sizeof *m->nets);
    if (!m->params || !m->data || !m->nets) return -1;
    if (net_init(&m->master_net, m->params, c, &r)) return -1;
    if (shard_data_alloc(&m->whole, c, c->batch)) return -1;
    fill_whole(&m->whole, c, &r);
    for (int s = 0; s < c->shards; s++) {
        int b0 = shard_begin(c, s);
        if (shard_data_alloc(&m->data[s], c, shard_begin(c, s + 1) - b0)) return -1;
        split_shard(&m->data[s], &m->whole, c, b0);
    }
    size_t arena = measure_arena(m);
    if (!arena) return -1;
    m->workers = tg_workers_new(m->params, c->shards, arena);
    if (!m->workers) return -1;
    for (int s = 0; s < c->shards; s++) /* replicas: same names, shared values */
        if (net_init(&m->nets[s], tg_workers_params(m->workers, s), c, &r)) return -1;
    return 0;
}

void bench_model_free(bench_model *m)
{
    tg_workers_free(m->workers);
    for (int s = 0; m->data && s < m->cfg.shards; s++) shard_data_free(&m->data[s]);
    shard_data_free(&m->whole);
    free(m->data);
    free(m->nets);
    tg_params_free(m->params);
    memset(m, 0, sizeof *m);
}

/* ------------------------------------------------------------------ step */

static double run_shard(int shard, tg_tape *t, tg_params *params, void *ctx)
{
    bench_model *m = ctx;
    (void)params; /* m->nets[shard] was built over it */
    tg_tensor *loss = bench_shard_loss(m, &m->nets[shard], &m->data[shard], m->batch_index, t);
    tg_backward(t, loss);
    return loss->data[0];
}

double bench_forward_backward(bench_model *m, int threads)
{
    /* one shard: the kernels may use every thread; several: one per shard */
    int kernel_threads = m->cfg.shards == 1 ? threads : 1;
    for (int s = 0; s < m->cfg.shards; s++)
        tg_tape_set_threads(tg_workers_tape(m->workers, s), kernel_threads);
    double loss = tg_workers_run(m->workers, threads, run_shard, m);
    m->batch_index = (m->batch_index + 1) % BENCH_POOL;
    return loss;
}

tg_tensor *bench_whole_batch_loss(bench_model *m, tg_tape *t, int pool_index)
{
    return bench_shard_loss(m, &m->master_net, &m->whole, pool_index, t);
}
