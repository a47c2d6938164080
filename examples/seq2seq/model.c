/* The seq2seq encoder-decoder (see model.h). Composed of layers only. */
#include "model.h"
#include "pairs.h"

#include <string.h>

#include "trainrun.h"

size_t s2s_config_numel_bound(const s2s_config *c)
{
    size_t E = (size_t)c->embed, H = (size_t)c->hidden, Vt = (size_t)c->tgt_vocab;
    size_t enc = c->bidirectional ? 2 * tgx_stack_numel(c->cell, c->embed, c->hidden / 2, c->layers)
                                  : tgx_stack_numel(c->cell, c->embed, c->hidden, c->layers);
    /* the bidirectional encoder's bridges to the decoder (h, and c where the
     * cell has one) and mlp attention, the largest */
    size_t bridges = c->bidirectional ? 2 * (size_t)c->layers * (H * H + H) : 0;
    return ((size_t)c->src_vocab + Vt) * E + enc + bridges +
           tgx_stack_numel(c->cell, c->embed + c->hidden, c->hidden, c->layers) +
           (c->attention != TG_ATTN_NONE ? 4 * H * H + 3 * H : 0) + H * Vt + Vt;
}

size_t s2s_config_numel_floor(const s2s_config *c)
{
    size_t E = (size_t)c->embed, H = (size_t)c->hidden, Vt = (size_t)c->tgt_vocab;
    size_t enc = c->bidirectional
                     ? 2 * tgx_stack_weights(c->cell, c->embed, c->hidden / 2, c->layers)
                     : tgx_stack_weights(c->cell, c->embed, c->hidden, c->layers);
    return ((size_t)c->src_vocab + Vt) * E + enc +
           tgx_stack_weights(c->cell, c->embed, c->hidden, c->layers) + H * Vt;
}

int s2s_model_init(s2s_model *m, const s2s_config *c, uint64_t seed)
{
    tg_params *p = tg_params_new();
    if (!p) return -1;
    if (s2s_model_init_on(m, c, p, seed) != 0) {
        tg_params_free(p);
        m->params = NULL;
        return -1;
    }
    return 0;
}

int s2s_model_init_on(s2s_model *m, const s2s_config *c, tg_params *params, uint64_t seed)
{
    tg_rng r;
    memset(m, 0, sizeof *m);
    m->cfg = *c;
    m->params = params;
    tg_rng_seed(&r, seed);
    int dec_in = c->embed + (c->feed_context ? c->hidden : 0);
    if (tg_embed_init(&m->src_emb, m->params, "src_embed", c->src_vocab, c->embed, &r) != 0 ||
        tg_embed_init(&m->tgt_emb, m->params, "tgt_embed", c->tgt_vocab, c->embed, &r) != 0)
        return -1;
    int rc = c->bidirectional
                 ? tg_bienc_init(&m->bienc, m->params, "encoder", c->cell, c->embed,
                                 c->hidden / 2, c->layers, c->dropout, c->hidden, &r)
                 : tg_rnn_stack_init(&m->enc, m->params, "encoder", c->cell, c->embed, c->hidden,
                                     c->layers, c->dropout, &r);
    if (rc != 0) return -1;
    rc = c->attention != TG_ATTN_NONE
             ? tg_attn_decoder_init(&m->adec, m->params, "decoder", c->cell, c->attention,
                                    c->embed, c->hidden, c->layers, s2s_memory_width(c),
                                    c->dropout, &r)
             : tg_rnn_stack_init(&m->dec, m->params, "decoder", c->cell, dec_in, c->hidden,
                                 c->layers, c->dropout, &r);
    if (rc != 0 || tg_linear_init(&m->out, m->params, "out", c->hidden, c->tgt_vocab, &r) != 0)
        return -1;
    return 0;
}

int s2s_memory_width(const s2s_config *c)
{
    return c->bidirectional ? 2 * (c->hidden / 2) : c->hidden;
}

void s2s_model_free(s2s_model *m)
{
    tg_params_free(m->params);
    m->params = NULL;
}

static int max_of(const int *x, int n, int floor)
{
    int m = floor;
    for (int i = 0; i < n; i++)
        if (x[i] > m) m = x[i];
    return m;
}

void s2s_batch_make(s2s_batch *b, tg_tape *t, const s2s_config *c, int B, const int *const *src,
                    const int *src_len, const int *const *tgt, const int *tgt_len, int min_ts,
                    int min_tt)
{
    memset(b, 0, sizeof *b);
    b->B = B;
    b->Ts = max_of(src_len, B, min_ts);
    b->src = tg_tape_ints(t, (size_t)b->Ts * B);
    b->src_len = tg_tape_ints(t, (size_t)B);
    for (int i = 0; i < B; i++) {
        int n = src_len[i];
        TG_CHECK(n >= 1, TG_HERE, "s2s_batch", "source %d is empty", i);
        b->src_len[i] = n;
        for (int s = 0; s < b->Ts; s++)
            b->src[s * B + i] = s >= n ? 0 : src[i][c->reverse_source ? n - 1 - s : s];
    }
    if (!tgt) return;
    /* decoder sequences are one longer than the target: <bos> y / y <eos> */
    b->Tt = max_of(tgt_len, B, min_tt > 0 ? min_tt - 1 : 0) + 1;
    b->dec_in = tg_tape_ints(t, (size_t)b->Tt * B);
    b->dec_out = tg_tape_ints(t, (size_t)b->Tt * B);
    for (int i = 0; i < B; i++) {
        int n = tgt_len[i];
        for (int s = 0; s < b->Tt; s++) {
            b->dec_in[s * B + i] = s == 0 ? 2 /* <bos> */ : s <= n ? tgt[i][s - 1] : 0;
            b->dec_out[s * B + i] = s < n ? tgt[i][s] : s == n ? 3 /* <eos> */ : 0;
        }
        b->n_tgt += n + 1;
    }
}

tg_tensor *s2s_encode_memory(tg_tape *t, const s2s_model *m, const s2s_batch *b, tg_state *init,
                             tg_rng *dropout_rng)
{
    if (m->cfg.bidirectional)
        return tg_bienc_forward_ids(t, &m->bienc, &m->src_emb, b->src, b->Ts, b->B, b->src_len,
                                    init, dropout_rng);
    tg_rnn_run run = {.T = b->Ts, .B = b->B, .emb = &m->src_emb, .ids = b->src,
                      .lengths = b->src_len, .final = init, .dropout_rng = dropout_rng,
                      .dropout_input = 1};
    return tg_rnn_forward(t, &m->enc, &run);
}

void s2s_encode(tg_tape *t, const s2s_model *m, const s2s_batch *b, tg_state *final,
                tg_rng *dropout_rng)
{
    if (m->cfg.bidirectional) {
        s2s_encode_memory(t, m, b, final, dropout_rng);
        return;
    }
    tg_rnn_run run = {.T = b->Ts, .B = b->B, .emb = &m->src_emb, .ids = b->src,
                      .lengths = b->src_len, .final = final, .dropout_rng = dropout_rng,
                      .dropout_input = 1};
    tg_rnn_forward(t, &m->enc, &run);
}

/* The decoder's top-layer outputs for T steps of B rows from tokens ids and
 * the encoder's final states: input [E_tgt[y] | ctx] with ctx the encoder's
 * top final h (feed_context), which the stack projects once per row. */
static tg_tensor *decode_steps(tg_tape *t, const s2s_model *m, const int *ids, int T, int B,
                               const tg_state *init, tg_tensor *ctx, tg_state *final,
                               tg_rng *dropout_rng)
{
    tg_rnn_run run = {.T = T, .B = B, .emb = &m->tgt_emb, .ids = ids,
                      .ctx = m->cfg.feed_context ? ctx : NULL, .init = init, .final = final,
                      .dropout_rng = dropout_rng, .dropout_input = 1};
    return tg_rnn_forward(t, &m->dec, &run);
}

/* The generator's input: the decoder's outputs h, with dropout unless
 * dropout_rng is NULL. */
static tg_tensor *generator_input(tg_tape *t, const s2s_model *m, tg_tensor *h,
                                  tg_rng *dropout_rng)
{
    if (dropout_rng && m->cfg.dropout > 0) h = tg_dropout(t, h, m->cfg.dropout, dropout_rng);
    return h;
}

/* Teacher forcing through the attention decoder (its output already had
 * the decoder's dropout: the generator reads it as it is). */
static tg_tensor *attn_outputs(tg_tape *t, const s2s_model *m, const s2s_batch *b,
                              tg_rng *dropout_rng, tg_state *enc_final)
{
    tg_state init[TG_MAX_LAYERS];
    tg_tensor *values = s2s_encode_memory(t, m, b, init, dropout_rng);
    if (enc_final) memcpy(enc_final, init, (size_t)m->cfg.layers * sizeof *init);
    tg_attn_memory mem = tg_attn_memory_init(t, &m->adec.attn, values, b->Ts, b->B, b->src_len);
    return tg_attn_decoder_forward(t, &m->adec, &m->tgt_emb, b->dec_in, b->Tt, b->B, &mem, init,
                                   NULL, dropout_rng);
}

tg_tensor *s2s_attn_decode_step(tg_tape *t, const s2s_model *m, const int *y, int B,
                                const tg_attn_memory *mem, tg_attn_dec_state *s,
                                tg_tensor **weights)
{
    tg_tensor *x = tg_embed_forward(t, &m->tgt_emb, y, B);
    tg_tensor *h = tg_attn_decoder_step(t, &m->adec, mem, x, s, weights, NULL);
    return tg_linear_forward(t, &m->out, h);
}

/* What the generator reads under teacher forcing: Tt*B x H, time-major. */
static tg_tensor *teacher_forced(tg_tape *t, const s2s_model *m, const s2s_batch *b,
                                 tg_rng *dropout_rng, tg_state *enc_final)
{
    tg_state fin[TG_MAX_LAYERS];
    if (m->cfg.attention != TG_ATTN_NONE) return attn_outputs(t, m, b, dropout_rng, enc_final);
    s2s_encode(t, m, b, fin, dropout_rng);
    if (enc_final) memcpy(enc_final, fin, (size_t)m->cfg.layers * sizeof *fin);
    /* no lengths: a padded decoder step only feeds later padded steps,
     * whose targets the loss ignores */
    tg_tensor *h = decode_steps(t, m, b->dec_in, b->Tt, b->B, fin, fin[m->cfg.layers - 1].h, NULL,
                                dropout_rng);
    return generator_input(t, m, h, dropout_rng);
}

tg_tensor *s2s_logits(tg_tape *t, const s2s_model *m, const s2s_batch *b, tg_rng *dropout_rng,
                      tg_state *enc_final)
{
    return tg_linear_forward(t, &m->out, teacher_forced(t, m, b, dropout_rng, enc_final));
}

/* The generator runs on the rows the loss scores only: a <pad> target's
 * logits and their softmax would be computed, and its zero gradient
 * multiplied back through the output layer's two products, for nothing
 * (about a tenth of the rows of length-bucketed batches of real text, and
 * the output layer is the largest product over a subword vocabulary). The
 * kept rows, gathered in order, give the loss of all rows with the padded
 * ones ignored. */
tg_tensor *s2s_loss(tg_tape *t, const s2s_model *m, const s2s_batch *b, tg_rng *dropout_rng,
                    tg_state *enc_final)
{
    return s2s_loss_smoothed(t, m, b, 0, dropout_rng, enc_final);
}

tg_tensor *s2s_loss_smoothed(tg_tape *t, const s2s_model *m, const s2s_batch *b, double smoothing,
                             tg_rng *dropout_rng, tg_state *enc_final)
{
    tg_tensor *h = teacher_forced(t, m, b, dropout_rng, enc_final);
    int rows = b->Tt * b->B, n = 0;
    int *kept = tg_tape_ints(t, (size_t)rows), *targets = tg_tape_ints(t, (size_t)rows);
    for (int r = 0; r < rows; r++)
        if (b->dec_out[r] != S2S_PAD) {
            kept[n] = r;
            targets[n++] = b->dec_out[r];
        }
    if (n == rows)
        return tg_softmax_xent_smoothed(t, tg_linear_forward(t, &m->out, h), b->dec_out, S2S_PAD,
                                        smoothing);
    if (n == 0) { /* every target <pad> (no batch of s2s_batch_make): one ignored row, loss 0 */
        kept[0] = 0;
        targets[n++] = S2S_PAD;
    }
    tg_tensor *logits = tg_linear_forward(t, &m->out, tg_embedding(t, h, kept, n));
    return tg_softmax_xent_smoothed(t, logits, targets, S2S_PAD, smoothing);
}

/* One step (with feed_context, [E_tgt[y] | ctx] goes through the whole
 * W_ih in one product: tg_rnn_forward's rule for one step). */
tg_tensor *s2s_decode_step(tg_tape *t, const s2s_model *m, const int *y, int B,
                           const tg_state *in, tg_tensor *ctx, tg_state *out)
{
    return tg_linear_forward(t, &m->out, decode_steps(t, m, y, 1, B, in, ctx, out, NULL));
}

size_t s2s_arena_bytes(const s2s_config *c, int B, int Ts, int Tt)
{
    /* per step and layer: about 25 B x H value arrays for an LSTM step, the
     * hoisted projection (4), masks and blends of padded rows (5), as many
     * gradients (~70 measured, 112 allowed); per step: embeddings; the
     * logits with their softmax and gradient; node and alignment overhead */
    size_t H = (size_t)c->hidden, E = (size_t)c->embed + (c->feed_context ? H : 0);
    size_t steps = (size_t)(Ts + Tt), vals = 0;
    vals += steps * (size_t)c->layers * 112 * H * (size_t)B;
    vals += steps * 4 * E * (size_t)B;
    vals += (size_t)Tt * (size_t)B * 4 * (size_t)c->tgt_vocab;
    size_t overhead = steps * (size_t)c->layers * 64 * 512 + ((size_t)1 << 20);
    if (c->attention != TG_ATTN_NONE) {
        /* a second encoder direction; the memory's keys; per decoder step
         * scores, weights and the mask's blends (B x Ts each, with their
         * gradients), the context, [c; h], the output and the feed */
        vals += (size_t)Ts * (size_t)c->layers * 112 * H * (size_t)B;
        vals += 4 * (size_t)Ts * H * (size_t)B;
        vals += (size_t)Tt * (size_t)B * (32 * (size_t)Ts + 40 * H);
    }
    return vals * sizeof(tg_real) + overhead;
}
