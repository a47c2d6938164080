/* The bidirectional encoder: a forward and a backward stack over the padded
 * batch, composed of the stacks and ops.
 * The backward stack reads example b's positions len_b-1 .. 0 followed by
 * its padding: row s*B + b of its input is row perm(s*B + b) of the input,
 *     perm(s*B + b) = (len_b - 1 - s)*B + b   for s < len_b,   s*B + b otherwise,
 * a row gather (tg_embedding over the input rows; for ids, the ids permuted).
 * perm is its own inverse, so the same gather puts the backward outputs back
 * in source order. Padding stays at the end, where the stack's length mask
 * carries the state, and the final states are each direction's own.
 * Memory row s*B + b = [h_fwd(s); h_bwd(s)]; bridges in tg_attention.h. */
#include <stdio.h>
#include <string.h>

#include "tg_layers.h"

int tg_bienc_init(tg_bienc *e, tg_params *p, const char *prefix, const tg_cell_kind *cell, int in,
                  int hidden_dir, int layers, double dropout, int dec_hidden, tg_rng *r)
{
    char nm[TG_NAME_MAX + 32];
    memset(e, 0, sizeof *e);
    e->layers = layers;
    e->hidden_dir = hidden_dir;
    e->dec_hidden = dec_hidden;
    snprintf(nm, sizeof nm, "%s.fwd", prefix);
    if (tg_rnn_stack_init(&e->fwd, p, nm, cell, in, hidden_dir, layers, dropout, r)) return -1;
    snprintf(nm, sizeof nm, "%s.bwd", prefix);
    if (tg_rnn_stack_init(&e->bwd, p, nm, cell, in, hidden_dir, layers, dropout, r)) return -1;
    for (int l = 0; l < layers; l++) {
        snprintf(nm, sizeof nm, "%s.bridge.l%d.h", prefix, l);
        if (tg_linear_init(&e->bridge_h[l], p, nm, 2 * hidden_dir, dec_hidden, r)) return -1;
        if (!cell->has_c) continue;
        snprintf(nm, sizeof nm, "%s.bridge.l%d.c", prefix, l);
        if (tg_linear_init(&e->bridge_c[l], p, nm, 2 * hidden_dir, dec_hidden, r)) return -1;
    }
    return 0;
}

/* perm (S*B ints on the tape): each example reversed within its length. */
static int *reversal(tg_tape *t, int S, int B, const int *lengths)
{
    int *perm = tg_tape_ints(t, (size_t)S * B);
    for (int b = 0; b < B; b++) {
        int len = lengths ? lengths[b] : S;
        TG_CHECK(len >= 0 && len <= S, TG_HERE, "bienc", "lengths[%d] = %d outside 0..%d", b, len,
                 S);
        for (int s = 0; s < S; s++) perm[(size_t)s * B + b] = (s < len ? len - 1 - s : s) * B + b;
    }
    return perm;
}

/* Concatenates the directions' outputs (bwd_rev in reversed order) and
 * bridges their final states. */
static tg_tensor *join(tg_tape *t, const tg_bienc *e, tg_tensor *fwd, tg_tensor *bwd_rev,
                       const int *perm, int n, const tg_state *ff, const tg_state *fb,
                       tg_state *dec_init)
{
    tg_tensor *mem = tg_concat(t, fwd, tg_embedding(t, bwd_rev, perm, n));
    for (int l = 0; dec_init && l < e->layers; l++) {
        dec_init[l].h = tg_tanh(t, tg_linear_forward(t, &e->bridge_h[l], tg_concat(t, ff[l].h, fb[l].h)));
        dec_init[l].c = e->fwd.kind->has_c
                            ? tg_linear_forward(t, &e->bridge_c[l], tg_concat(t, ff[l].c, fb[l].c))
                            : NULL;
    }
    return mem;
}

tg_tensor *tg_bienc_forward(tg_tape *t, const tg_bienc *e, tg_tensor *X, int S, int B,
                            const int *lengths, tg_state *dec_init, tg_rng *dropout_rng)
{
    TG_CHECK(S > 0 && B > 0 && X->rows == S * B, TG_HERE, "bienc",
             "input is %dx%d, expected S*B = %d rows (S=%d, B=%d)", X->rows, X->cols, S * B, S, B);
    int *perm = reversal(t, S, B, lengths);
    tg_state ff[TG_MAX_LAYERS], fb[TG_MAX_LAYERS];
    tg_rnn_run rf = {.T = S, .B = B, .x = X, .lengths = lengths, .final = ff,
                     .dropout_rng = dropout_rng};
    tg_rnn_run rb = rf;
    rb.x = tg_embedding(t, X, perm, S * B);
    rb.final = fb;
    tg_tensor *fwd = tg_rnn_forward(t, &e->fwd, &rf);
    tg_tensor *bwd = tg_rnn_forward(t, &e->bwd, &rb);
    return join(t, e, fwd, bwd, perm, S * B, ff, fb, dec_init);
}

tg_tensor *tg_bienc_forward_ids(tg_tape *t, const tg_bienc *e, const tg_embed *emb,
                                const int *ids, int S, int B, const int *lengths,
                                tg_state *dec_init, tg_rng *dropout_rng)
{
    int n = S * B;
    int *perm = reversal(t, S, B, lengths);
    int *rev_ids = tg_tape_ints(t, (size_t)n);
    for (int i = 0; i < n; i++) rev_ids[i] = ids[perm[i]];
    tg_state ff[TG_MAX_LAYERS], fb[TG_MAX_LAYERS];
    tg_rnn_run rf = {.T = S, .B = B, .emb = emb, .ids = ids, .lengths = lengths, .final = ff,
                     .dropout_rng = dropout_rng};
    tg_rnn_run rb = rf;
    rb.ids = rev_ids;
    rb.final = fb;
    tg_tensor *fwd = tg_rnn_forward(t, &e->fwd, &rf);
    tg_tensor *bwd = tg_rnn_forward(t, &e->bwd, &rb);
    return join(t, e, fwd, bwd, perm, n, ff, fb, dec_init);
}
