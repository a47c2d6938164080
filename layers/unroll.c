/* Unroll a cell over time, and stack cells into layers.
 *
 * The input projection x W_ih^T + b_ih of all T steps is one matmul over the
 * (T*B x in) input; each step takes its B rows as a zero-copy row slice. For
 * a cell whose b_hh only adds to the projection (folds_b_hh: LSTM, RNN) the
 * projection carries b_hh too, one bias add for all steps instead of one per
 * step. Fed by token ids through an embedding (tg_rnn_stack_forward_ids),
 * layer 0 projects each distinct id's table row once and gathers rows of the
 * result, when ids repeat.
 * Rows past their length carry their state with a constant 0/1 mask m:
 *     s = m * s_new + (1 - m) * s_old
 * which is exact in both directions: a carried row keeps s_old bit for bit
 * and sends its gradient to s_old alone; a live row gets s_new bit for bit. */
#include <stdio.h>
#include <string.h>

#include "tg_layers.h"

int tg_cell_init(tg_cell *cell, const tg_cell_kind *kind, tg_params *p, const char *prefix,
                 int in, int hidden, tg_rng *r)
{
    memset(cell, 0, sizeof *cell);
    cell->kind = kind;
    return kind->init(cell, p, prefix, in, hidden, r);
}

/* Rows of step `step` still inside their sequence; 1 x B flags in live. */
static int live_rows(const int *lengths, int B, int step, char *live)
{
    int n = 0;
    for (int b = 0; b < B; b++) {
        live[b] = lengths == NULL || step < lengths[b];
        n += live[b];
    }
    return n;
}

/* Constant B x H masks: m = 1 on live rows, and 1 - m. */
static void row_masks(tg_tape *t, const char *live, int B, int H, tg_tensor **m, tg_tensor **m1)
{
    *m = tg_tensor_new(t, B, H, 0);
    *m1 = tg_tensor_new(t, B, H, 0);
    for (int b = 0; b < B; b++)
        for (int j = 0; j < H; j++) {
            (*m)->data[(size_t)b * H + j] = live[b] ? 1 : 0;
            (*m1)->data[(size_t)b * H + j] = live[b] ? 0 : 1;
        }
}

static tg_tensor *blend(tg_tape *t, tg_tensor *m, tg_tensor *m1, tg_tensor *new_, tg_tensor *old)
{
    return tg_add(t, tg_mul(t, m, new_), tg_mul(t, m1, old));
}

tg_tensor *tg_unroll_project(tg_tape *t, const tg_cell *cell, tg_tensor *X)
{
    TG_CHECK(X->cols == cell->in, TG_HERE, "unroll_project", "input has %d columns, the %s cell %d",
             X->cols, cell->kind->name, cell->in);
    tg_tensor *b = cell->kind->folds_b_hh ? tg_add(t, cell->b_ih, cell->b_hh) : cell->b_ih;
    return tg_add(t, tg_matmul(t, X, cell->w_ih, 0, 1), b);
}

tg_tensor *tg_unroll(tg_tape *t, const tg_cell *cell, tg_tensor *X, int T, int B, tg_state s0,
                     const int *lengths, tg_state *final)
{
    TG_CHECK(T > 0 && B > 0 && X->rows == T * B && X->cols == cell->in, TG_HERE, "unroll",
             "input is %dx%d, expected T*B x in = %dx%d (T=%d, B=%d)", X->rows, X->cols, T * B,
             cell->in, T, B);
    return tg_unroll_projected(t, cell, tg_unroll_project(t, cell, X), T, B, s0, lengths, final);
}

tg_tensor *tg_unroll_projected(tg_tape *t, const tg_cell *cell, tg_tensor *XP, int T, int B,
                               tg_state s0, const int *lengths, tg_state *final)
{
    const tg_cell_kind *k = cell->kind;
    int H = cell->hidden;
    TG_CHECK(T > 0 && B > 0 && XP->rows == T * B && XP->cols == k->gates * H, TG_HERE, "unroll",
             "projected input is %dx%d, expected T*B x gates*hidden = %dx%d (T=%d, B=%d)",
             XP->rows, XP->cols, T * B, k->gates * H, T, B);
    TG_CHECK(s0.h && s0.h->rows == B && s0.h->cols == H && (!k->has_c || (s0.c && s0.c->rows == B
             && s0.c->cols == H)), TG_HERE, "unroll", "initial state must be %dx%d (%s)", B, H,
             k->name);
    for (int b = 0; lengths && b < B; b++)
        TG_CHECK(lengths[b] >= 0 && lengths[b] <= T, TG_HERE, "unroll",
                 "lengths[%d] = %d outside 0..%d", b, lengths[b], T);
    tg_cell stepper = *cell; /* b_hh is already in XP for a kind that folds it */
    if (k->folds_b_hh) stepper.b_hh = NULL;
    tg_tensor **outs = tg_tape_alloc(t, (size_t)T * sizeof *outs);
    char *live = tg_tape_alloc(t, (size_t)B);
    tg_state s = s0;
    for (int step = 0; step < T; step++) {
        int n_live = live_rows(lengths, B, step, live);
        if (n_live > 0) {
            tg_state nx = k->step(t, &stepper, tg_row_slice(t, XP, step * B, B), s);
            if (n_live < B) {
                tg_tensor *m, *m1;
                row_masks(t, live, B, H, &m, &m1);
                nx.h = blend(t, m, m1, nx.h, s.h);
                if (k->has_c) nx.c = blend(t, m, m1, nx.c, s.c);
            }
            s = nx;
        }
        outs[step] = s.h;
    }
    if (final) *final = s;
    return tg_stack_rows(t, outs, T);
}

int tg_rnn_stack_init(tg_rnn_stack *s, tg_params *p, const char *prefix, const tg_cell_kind *kind,
                      int in, int hidden, int layers, double dropout, tg_rng *r)
{
    TG_CHECK(layers >= 1 && layers <= TG_MAX_LAYERS, TG_HERE, "rnn_stack",
             "layers = %d outside 1..%d", layers, TG_MAX_LAYERS);
    TG_CHECK(dropout >= 0 && dropout < 1, TG_HERE, "rnn_stack", "dropout = %g outside [0, 1)",
             dropout);
    char nm[TG_NAME_MAX + 16];
    memset(s, 0, sizeof *s);
    s->kind = kind;
    s->layers = layers;
    s->in = in;
    s->hidden = hidden;
    s->dropout = dropout;
    for (int l = 0; l < layers; l++) {
        snprintf(nm, sizeof nm, "%s.l%d", prefix, l);
        if (tg_cell_init(&s->cell[l], kind, p, nm, l == 0 ? in : hidden, hidden, r) != 0)
            return -1;
    }
    return 0;
}

/* Every layer of s over x (T*B rows); layer 0 takes XP, its input already
 * projected, instead when XP is not NULL. */
static tg_tensor *stack_layers(tg_tape *t, const tg_rnn_stack *s, tg_tensor *XP,
                               tg_tensor *x, int T, int B, const tg_state *init,
                               const int *lengths, tg_state *final, tg_rng *dropout_rng)
{
    for (int l = 0; l < s->layers; l++) {
        if (l > 0 && dropout_rng && s->dropout > 0) x = tg_dropout(t, x, s->dropout, dropout_rng);
        tg_state s0 = init && init[l].h ? init[l] : tg_state_zeros(t, s->kind, B, s->hidden);
        tg_state *fin = final ? &final[l] : NULL;
        x = l == 0 && XP ? tg_unroll_projected(t, &s->cell[l], XP, T, B, s0, lengths, fin)
                            : tg_unroll(t, &s->cell[l], x, T, B, s0, lengths, fin);
    }
    return x;
}

tg_tensor *tg_rnn_stack_forward(tg_tape *t, const tg_rnn_stack *s, tg_tensor *X, int T, int B,
                                const tg_state *init, const int *lengths, tg_state *final,
                                tg_rng *dropout_rng)
{
    return stack_layers(t, s, NULL, X, T, B, init, lengths, final, dropout_rng);
}

tg_tensor *tg_rnn_stack_forward_projected(tg_tape *t, const tg_rnn_stack *s, tg_tensor *XP, int T,
                                          int B, const tg_state *init, const int *lengths,
                                          tg_state *final, tg_rng *dropout_rng)
{
    return stack_layers(t, s, XP, NULL, T, B, init, lengths, final, dropout_rng);
}

/* The distinct ids of ids[0..n-1], in order of first appearance, into uniq,
 * and for each position the index of its id in uniq into pos (arrays of n
 * on the tape). Returns how many are distinct, or -1 when an id is outside
 * 0..vocab-1 (the caller's tg_embedding then reports it). */
static int distinct_ids(tg_tape *t, const int *ids, int n, int vocab, int **uniq, int **pos)
{
    int *slot = tg_tape_alloc(t, (size_t)vocab * sizeof *slot);
    *uniq = tg_tape_alloc(t, (size_t)n * sizeof **uniq);
    *pos = tg_tape_alloc(t, (size_t)n * sizeof **pos);
    memset(slot, 0xff, (size_t)vocab * sizeof *slot); /* -1: not seen yet */
    int u = 0;
    for (int i = 0; i < n; i++) {
        if (ids[i] < 0 || ids[i] >= vocab) return -1;
        if (slot[ids[i]] < 0) (*uniq)[slot[ids[i]] = u++] = ids[i];
        (*pos)[i] = slot[ids[i]];
    }
    return u;
}

/* On as few rows as it can: the table when every row is used, the distinct
 * ids' rows when some repeat (gathered, projected, gathered again by
 * position), else the n embedded rows. Gradients follow the same ops back to
 * the table. */
tg_tensor *tg_unroll_project_ids(tg_tape *t, const tg_cell *c0, const tg_embed *emb,
                                 const int *ids, int n)
{
    int *uniq, *pos;
    int u = distinct_ids(t, ids, n, emb->vocab, &uniq, &pos);
    if (u == emb->vocab) return tg_embedding(t, tg_unroll_project(t, c0, emb->table), ids, n);
    if (u > 0 && u < n)
        return tg_embedding(t, tg_unroll_project(t, c0, tg_embed_forward(t, emb, uniq, u)), pos, n);
    return tg_unroll_project(t, c0, tg_embed_forward(t, emb, ids, n));
}

tg_tensor *tg_rnn_stack_forward_ids(tg_tape *t, const tg_rnn_stack *s, const tg_embed *emb,
                                    const int *ids, int T, int B, const tg_state *init,
                                    const int *lengths, tg_state *final, tg_rng *dropout_rng)
{
    TG_CHECK(emb->dim == s->in && T > 0 && B > 0, TG_HERE, "rnn_stack_forward_ids",
             "embedding width %d, stack input %d (T=%d, B=%d)", emb->dim, s->in, T, B);
    tg_tensor *XP = tg_unroll_project_ids(t, &s->cell[0], emb, ids, T * B);
    return tg_rnn_stack_forward_projected(t, s, XP, T, B, init, lengths, final, dropout_rng);
}
