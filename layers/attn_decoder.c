/* The attention decoder with input feeding (OpenNMT's default RNN recipe),
 * composed of cells, attention and ops:
 *   x0_t   = [emb(y_t); out_{t-1}]                 (out_0 = 0)
 *   layer 0: xp = x0_t W_ih^T + b_ih, stepped by the cell; layers l > 0 as a stack
 *   out_t  = dropout(attention(h_top_t))          (the output and the next feed)
 * Training (tg_attn_decoder_forward) splits layer 0's W_ih by columns into
 * W_e (embedding part) and W_f (feed part): x0_t W_ih^T = emb W_e^T + out W_f^T.
 * The embedding part of every step is one projection of the distinct ids
 * (tg_unroll_project_ids, with b_hh folded in for kinds that allow it); each
 * step adds only out_{t-1} W_f^T (B x H times H x G*H). */
#include <stdio.h>
#include <string.h>

#include "tg_layers.h"

int tg_attn_decoder_init(tg_attn_decoder *d, tg_params *p, const char *prefix,
                         const tg_cell_kind *cell, tg_attn_kind kind, int embed, int hidden,
                         int layers, int mem, double dropout, tg_rng *r)
{
    char nm[TG_NAME_MAX + 16];
    memset(d, 0, sizeof *d);
    d->embed = embed;
    d->hidden = hidden;
    d->dropout = dropout;
    if (tg_rnn_stack_init(&d->rnn, p, prefix, cell, embed + hidden, hidden, layers, dropout, r))
        return -1;
    snprintf(nm, sizeof nm, "%s.attn", prefix);
    return tg_attention_init(&d->attn, p, nm, kind, hidden, mem, r);
}

tg_attn_dec_state tg_attn_decoder_start(tg_tape *t, const tg_attn_decoder *d, int B,
                                        const tg_state *init)
{
    tg_attn_dec_state s;
    memset(&s, 0, sizeof s);
    for (int l = 0; l < d->rnn.layers; l++)
        s.layer[l] = init && init[l].h ? init[l] : tg_state_zeros(t, d->rnn.kind, B, d->hidden);
    s.feed = tg_tensor_new(t, B, d->hidden, 0);
    return s;
}

/* Layer 0 stepped from its projected input xp0 by cell0, then the layers
 * above and attention; updates *s and returns the step's output. */
static tg_tensor *step_from_projected(tg_tape *t, const tg_attn_decoder *d, const tg_cell *cell0,
                                      const tg_attn_memory *m, tg_tensor *xp0,
                                      tg_attn_dec_state *s, tg_tensor **weights, tg_rng *rng)
{
    const tg_rnn_stack *st = &d->rnn;
    s->layer[0] = st->kind->step(t, cell0, xp0, s->layer[0]);
    tg_tensor *x = s->layer[0].h;
    for (int l = 1; l < st->layers; l++) {
        if (rng && st->dropout > 0) x = tg_dropout(t, x, st->dropout, rng);
        s->layer[l] = tg_cell_forward(t, &st->cell[l], x, s->layer[l]);
        x = s->layer[l].h;
    }
    tg_tensor *out = tg_attention_forward(t, &d->attn, m, x, weights);
    if (rng && d->dropout > 0) out = tg_dropout(t, out, d->dropout, rng);
    s->feed = out;
    return out;
}

tg_tensor *tg_attn_decoder_step(tg_tape *t, const tg_attn_decoder *d, const tg_attn_memory *m,
                                tg_tensor *x, tg_attn_dec_state *s, tg_tensor **weights,
                                tg_rng *dropout_rng)
{
    TG_CHECK(x->cols == d->embed && x->rows == s->feed->rows, TG_HERE, "attn_decoder_step",
             "input is %dx%d, expected %dx%d", x->rows, x->cols, s->feed->rows, d->embed);
    const tg_cell *c0 = &d->rnn.cell[0];
    tg_tensor *xp0 = tg_cell_project(t, c0, tg_concat(t, x, s->feed));
    return step_from_projected(t, d, c0, m, xp0, s, weights, dropout_rng);
}

tg_tensor *tg_attn_decoder_forward(tg_tape *t, const tg_attn_decoder *d, const tg_embed *emb,
                                   const int *ids, int T, int B, const tg_attn_memory *m,
                                   const tg_state *init, tg_tensor **weights,
                                   tg_rng *dropout_rng)
{
    TG_CHECK(T > 0 && B > 0 && B == m->B && emb->dim == d->embed, TG_HERE, "attn_decoder",
             "T=%d, B=%d (memory B=%d), embedding width %d (decoder %d)", T, B, m->B, emb->dim,
             d->embed);
    const tg_cell *c0 = &d->rnn.cell[0];
    int E = d->embed;
    /* layer 0 seen from its embedding's columns of W_ih (the feed's follow) */
    tg_cell emb_part = *c0;
    emb_part.in = E;
    emb_part.in_rest = c0->in - E;
    tg_rnn_stack emb_stack = tg_rnn_stack_of_cell(&emb_part);
    tg_rnn_run proj = {.T = T, .B = B, .emb = emb, .ids = ids};
    tg_tensor *XE = tg_rnn_project(t, &emb_stack, &proj);
    tg_cell stepper = *c0; /* b_hh is in XE for a kind that folds it */
    if (d->rnn.kind->folds_b_hh) stepper.b_hh = NULL;
    tg_attn_dec_state s = tg_attn_decoder_start(t, d, B, init);
    tg_tensor **outs = tg_tape_alloc(t, (size_t)T * sizeof *outs);
    for (int step = 0; step < T; step++) {
        tg_tensor *xp0 = tg_row_slice(t, XE, step * B, B);
        if (step > 0) /* the first feed is zeros */
            xp0 = tg_affine_cols(t, s.feed, c0->w_ih, E, xp0);
        outs[step] = step_from_projected(t, d, &stepper, m, xp0, &s,
                                         weights ? &weights[step] : NULL, dropout_rng);
    }
    return tg_stack_rows(t, outs, T);
}
