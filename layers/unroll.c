/* Unroll a cell over time, and stack cells into layers: tg_rnn_forward.
 *
 * Layer 0's input projection x W_ih^T + b_ih of all T steps is one matmul
 * over the (T*B x in) input; each step takes its B rows as a zero-copy row
 * slice. For a cell whose b_hh only adds to the projection (folds_b_hh: LSTM,
 * RNN) the projection carries b_hh too, one bias add for all steps instead of
 * one per step. Fed by token ids through an embedding, layer 0 projects each
 * distinct id's table row once, when ids repeat, and each step gathers its B
 * rows of the result (step_inputs below); a per-row context's columns are
 * projected once per row and added by every step's recurrent product, in
 * b_hh's place, for a kind that folds b_hh (else to every step's rows).
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

/* X (N x cell->in) -> X W_ih^T + b_ih (+ b_hh for a kind that folds it),
 * through W_ih's first cell->in columns: all of them, or a decoder's layer 0
 * seen from its x (or embedding) columns, the context's following. */
static tg_tensor *project(tg_tape *t, const tg_cell *cell, tg_tensor *X)
{
    TG_CHECK(X->cols == cell->in, TG_HERE, "rnn_forward", "input has %d columns, the %s cell %d",
             X->cols, cell->kind->name, cell->in);
    TG_CHECK(cell->in_rest >= 0 && cell->w_ih->cols == cell->in + cell->in_rest, TG_HERE,
             "rnn_forward", "the %s cell's W_ih is %dx%d, its inputs %d (+ %d read apart)",
             cell->kind->name, cell->w_ih->rows, cell->w_ih->cols, cell->in, cell->in_rest);
    tg_tensor *b = cell->kind->folds_b_hh ? tg_add(t, cell->b_ih, cell->b_hh) : cell->b_ih;
    return tg_affine_cols(t, X, cell->w_ih, 0, b);
}

/* A layer's projected input as its steps read it: rows step*B .. of XP
 * (T*B x gates*H), or, fed by ids, rows pos[step*B ..] of P (the projection
 * of each distinct id's embedding row, or of the whole table). Why the
 * second: gathering all T*B rows of P up front wrote a T*B x gates*H matrix
 * that each step read back from memory, and backward zeroed its gradient,
 * added the steps' gradients into it and read it again to scatter it into
 * P's; a step's own gather is read at once by its gates, whose VJP writes
 * the gathered rows' gradient (claimed), scattered into P's while in cache.
 * A cell with step_rows (the LSTM) reads P's rows in place: no gather. */
typedef struct step_inputs {
    tg_tensor *XP;   /* all steps' rows, or NULL */
    tg_tensor *P;    /* rows to gather from, with pos (T*B indices) */
    const int *pos;
    tg_tensor *ctx;  /* B x gates*H added to every step's rows, or NULL: the
                      * context's projection, which a kind that folds b_hh
                      * adds in its recurrent product (unroll_projected) */
} step_inputs;

static tg_tensor *step_input(tg_tape *t, const step_inputs *in, int step, int B)
{
    return in->P ? tg_embedding(t, in->P, in->pos + (size_t)step * B, B)
                 : tg_row_slice(t, in->XP, step * B, B);
}

/* One step of stepper from s on its rows of in: read from P in place when
 * the cell can (step_rows), else gathered or sliced (step_input). */
static tg_state step_on(tg_tape *t, const tg_cell *stepper, const step_inputs *in, int step,
                        int B, tg_state s)
{
    const tg_cell_kind *k = stepper->kind;
    if (in->P && k->step_rows)
        return k->step_rows(t, stepper, in->P, in->pos + (size_t)step * B, s);
    return k->step(t, stepper, step_input(t, in, step, B), s);
}

/* All n rows of in as one matrix. */
static tg_tensor *all_rows(tg_tape *t, const step_inputs *in, int n)
{
    return in->P ? tg_embedding(t, in->P, in->pos, n) : in->XP;
}

/* cell over T steps of its projected input, from s0. */
static tg_tensor *unroll_projected(tg_tape *t, const tg_cell *cell, const step_inputs *in, int T,
                                   int B, tg_state s0, const int *lengths, tg_state *final)
{
    const tg_cell_kind *k = cell->kind;
    int H = cell->hidden;
    const tg_tensor *X = in->P ? in->P : in->XP;
    TG_CHECK(T > 0 && B > 0 && (in->P || X->rows == T * B) && X->cols == k->gates * H, TG_HERE,
             "rnn_forward",
             "projected input is %dx%d, expected T*B x gates*hidden = %dx%d (T=%d, B=%d)",
             X->rows, X->cols, T * B, k->gates * H, T, B);
    TG_CHECK(s0.h && s0.h->rows == B && s0.h->cols == H && (!k->has_c || (s0.c && s0.c->rows == B
             && s0.c->cols == H)), TG_HERE, "rnn_forward", "initial state must be %dx%d (%s)", B, H,
             k->name);
    for (int b = 0; lengths && b < B; b++)
        TG_CHECK(lengths[b] >= 0 && lengths[b] <= T, TG_HERE, "rnn_forward",
                 "lengths[%d] = %d outside 0..%d", b, lengths[b], T);
    /* b_hh is already in XP for a kind that folds it; the context's B rows
     * take its place, added by each step's recurrent product */
    tg_cell stepper = *cell;
    if (k->folds_b_hh) stepper.b_hh = in->ctx;
    tg_tensor **outs = tg_tape_alloc(t, (size_t)T * sizeof *outs);
    char *live = tg_tape_alloc(t, (size_t)B);
    tg_state s = s0;
    for (int step = 0; step < T; step++) {
        int n_live = live_rows(lengths, B, step, live);
        if (n_live > 0) {
            tg_state nx = step_on(t, &stepper, in, step, B, s);
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
 * ids' rows when some repeat (gathered, projected, then gathered by position
 * a step at a time), else the n embedded rows. Gradients follow the same ops
 * back to the table. ids must outlive the unroll (the caller's run->ids). */
static step_inputs project_ids(tg_tape *t, const tg_cell *c0, const tg_embed *emb,
                               const int *ids, int n)
{
    int *uniq, *pos;
    int u = distinct_ids(t, ids, n, emb->vocab, &uniq, &pos);
    step_inputs in = {NULL, NULL, NULL, NULL};
    if (u == emb->vocab) {
        in.P = project(t, c0, emb->table);
        in.pos = ids;
    } else if (u > 0 && u < n) {
        in.P = project(t, c0, tg_embed_forward(t, emb, uniq, u));
        in.pos = pos;
    } else {
        in.XP = project(t, c0, tg_embed_forward(t, emb, ids, n));
    }
    return in;
}

/* x (B rows) repeated for each of T steps: (T*B rows), time-major. */
static tg_tensor *repeat_steps(tg_tape *t, tg_tensor *x, int T)
{
    if (T == 1) return x;
    tg_tensor **rep = tg_tape_alloc(t, (size_t)T * sizeof *rep);
    for (int s = 0; s < T; s++) rep[s] = x;
    return tg_stack_rows(t, rep, T);
}

static int input_dropped(const tg_rnn_stack *s, const tg_rnn_run *run)
{
    return run->dropout_input && run->dropout_rng && s->dropout > 0;
}

/* Layer 0's input rows as given (x, or the embedded ids), dropped when
 * dropout_input asks. */
static tg_tensor *layer0_rows(tg_tape *t, const tg_rnn_stack *s, const tg_rnn_run *run)
{
    int T = run->T, B = run->B;
    tg_tensor *x = run->x ? run->x : tg_embed_forward(t, run->emb, run->ids, T * B);
    TG_CHECK(x->rows == T * B, TG_HERE, "rnn_forward",
             "input is %dx%d, expected T*B = %d rows (T=%d, B=%d)", x->rows, x->cols, T * B, T, B);
    return input_dropped(s, run) ? tg_dropout(t, x, s->dropout, run->dropout_rng) : x;
}

/* Layer 0's projected input (tg_rnn_project's rows, kept per step where it
 * can be: step_inputs). ctx_apart: the context's projection may stay apart
 * (step_inputs.ctx) for a kind that folds b_hh, rather than be added to
 * every step's rows: those T*B x gates*H sums, the gather of P's rows and
 * the context's T copies they need, and all their gradients were about a
 * tenth of the built-in corpus's training step (the decoder fed the
 * context, 64-wide embeddings). */
static step_inputs layer0_inputs(tg_tape *t, const tg_rnn_stack *s, const tg_rnn_run *run,
                                 int ctx_apart)
{
    int T = run->T, B = run->B, C = run->ctx ? run->ctx->cols : 0;
    const tg_cell *c0 = &s->cell[0];
    TG_CHECK(T > 0 && B > 0, TG_HERE, "rnn_forward", "T = %d and B = %d must be positive", T, B);
    TG_CHECK(!run->xp && (!run->x != !run->ids) && (!run->ids || run->emb), TG_HERE,
             "rnn_forward", "give layer 0's input as exactly one of x, emb+ids, xp");
    TG_CHECK(!run->ctx || (run->ctx->rows == B && C < c0->in), TG_HERE, "rnn_forward",
             "context is %dx%d, expected %d rows and fewer than %d columns", run->ctx->rows, C, B,
             c0->in);
    /* One step: [x | ctx] through the whole W_ih in one product, rather
     * than two over its column ranges: applying ctx once per row saves
     * nothing at T = 1. (Before the ranges were read in place they were
     * column slices, op outputs whose products a decoding tape could not
     * hold on the panels: BLAS ran them, and a sentence decoded alone and
     * in a batch could differ by a word.) */
    if (C && T == 1) {
        tg_tensor *x = layer0_rows(t, s, run);
        TG_CHECK(x->cols == c0->in - C, TG_HERE, "rnn_forward",
                 "input width %d, layer 0 takes %d besides the context", x->cols, c0->in - C);
        return (step_inputs){project(t, c0, tg_concat(t, x, run->ctx)), NULL, NULL, NULL};
    }
    tg_cell xcell = *c0; /* the cell as seen from its x (or embedding) columns */
    xcell.in = c0->in - C;
    xcell.in_rest = c0->in_rest + C;
    step_inputs in = {NULL, NULL, NULL, NULL};
    if (run->ids && !input_dropped(s, run)) {
        TG_CHECK(run->emb->dim == xcell.in, TG_HERE, "rnn_forward",
                 "embedding width %d, layer 0 takes %d besides the context", run->emb->dim,
                 xcell.in);
        in = project_ids(t, &xcell, run->emb, run->ids, T * B);
    } else {
        in.XP = project(t, &xcell, layer0_rows(t, s, run));
    }
    if (!C) return in;
    tg_tensor *cp = tg_affine_cols(t, run->ctx, c0->w_ih, c0->in - C, NULL);
    if (ctx_apart && c0->kind->folds_b_hh) {
        in.ctx = cp;
        return in;
    }
    step_inputs sum = {tg_add(t, all_rows(t, &in, T * B), repeat_steps(t, cp, T)), NULL, NULL,
                       NULL};
    return sum;
}

tg_tensor *tg_rnn_project(tg_tape *t, const tg_rnn_stack *s, const tg_rnn_run *run)
{
    step_inputs in = layer0_inputs(t, s, run, 0);
    return all_rows(t, &in, run->T * run->B);
}

tg_tensor *tg_rnn_forward(tg_tape *t, const tg_rnn_stack *s, const tg_rnn_run *run)
{
    int T = run->T, B = run->B;
    step_inputs in = {run->xp, NULL, NULL, NULL};
    if (!run->xp) in = layer0_inputs(t, s, run, 1);
    tg_tensor *x = NULL;
    for (int l = 0; l < s->layers; l++) {
        if (l > 0 && run->dropout_rng && s->dropout > 0)
            x = tg_dropout(t, x, s->dropout, run->dropout_rng);
        if (l > 0) in = (step_inputs){project(t, &s->cell[l], x), NULL, NULL, NULL};
        const tg_state *init = run->init && run->init[l].h ? &run->init[l] : NULL;
        tg_state s0 = init ? *init : tg_state_zeros(t, s->kind, B, s->hidden);
        x = unroll_projected(t, &s->cell[l], &in, T, B, s0, run->lengths,
                             run->final ? &run->final[l] : NULL);
    }
    return x;
}

tg_rnn_stack tg_rnn_stack_of_cell(const tg_cell *cell)
{
    tg_rnn_stack s;
    memset(&s, 0, sizeof s);
    s.kind = cell->kind;
    s.layers = 1;
    s.in = cell->in;
    s.hidden = cell->hidden;
    s.cell[0] = *cell;
    return s;
}
