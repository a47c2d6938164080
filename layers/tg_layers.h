/* tapegrad layers: linear, embedding, recurrent cells, unroll and stacking.
 *
 * Every layer is plain C that calls the public op constructors of
 * tapegrad.h; none has backward code (the build gives layers/ no access to
 * ops/ internals). Weight layouts follow PyTorch so weights can be exchanged:
 * a linear weight is (out x in) and y = x W^T + b; recurrent weights are
 * W_ih (G*H x I), W_hh (G*H x H), b_ih and b_hh (1 x G*H), gates stacked in
 * PyTorch's order (LSTM i,f,g,o; GRU r,z,n).
 *
 * Sequences are time-major: a (T*B x F) tensor holds step t in rows
 * t*B .. t*B+B-1, so a step is a zero-copy tg_row_slice. */
#ifndef TG_LAYERS_H
#define TG_LAYERS_H

#include "tapegrad.h"

#ifdef __cplusplus
extern "C" {
#endif

#define TG_MAX_LAYERS 8
#define TG_NAME_MAX 64

/* ------------------------------------------------------------------ linear */

typedef struct tg_linear {
    int in, out;
    tg_tensor *w; /* out x in */
    tg_tensor *b; /* 1 x out */
} tg_linear;

/* Registers "<name>.weight" and "<name>.bias", PyTorch's init
 * (uniform in +-1/sqrt(in)). Returns 0 on success, -1 out of memory. */
int tg_linear_init(tg_linear *l, tg_params *p, const char *name, int in, int out, tg_rng *r);
tg_tensor *tg_linear_forward(tg_tape *t, const tg_linear *l, tg_tensor *x); /* x: N x in */

/* ------------------------------------------------------------------ embedding */

typedef struct tg_embed {
    int vocab, dim;
    tg_tensor *table; /* vocab x dim, "<name>.weight", N(0,1) init as PyTorch */
} tg_embed;

int tg_embed_init(tg_embed *e, tg_params *p, const char *name, int vocab, int dim, tg_rng *r);
tg_tensor *tg_embed_forward(tg_tape *t, const tg_embed *e, const int *ids, int n);

/* ------------------------------------------------------------------ cells */

/* Recurrent state: h always, c for cells that have a cell state (LSTM). */
typedef struct tg_state {
    tg_tensor *h, *c;
} tg_state;

typedef struct tg_cell_kind tg_cell_kind;

/* One cell's parameters. Built-in cells use w_ih, w_hh, b_ih, b_hh; a user
 * cell may use any of the slots, extra[] included. */
typedef struct tg_cell {
    const tg_cell_kind *kind;
    int in, hidden;
    tg_tensor *w_ih, *w_hh, *b_ih, *b_hh;
    tg_tensor *extra[4];
} tg_cell;

/* What a cell is. The input projection of every step, x W_ih^T + b_ih
 * (width gates*hidden), is computed for all T steps in one matmul by the
 * unroll; step() receives its rows for step t as xp. */
struct tg_cell_kind {
    const char *name;
    int gates;     /* input projection width = gates * hidden */
    int has_c;     /* state carries c (LSTM) */
    /* Registers the parameters under prefix (e.g. "enc.l0"); w_ih and b_ih
     * must be (gates*hidden x in) and (1 x gates*hidden). Called with
     * cell->kind already set (tg_cell_init does it). 0 ok, -1 no memory. */
    int (*init)(tg_cell *cell, tg_params *p, const char *prefix, int in, int hidden, tg_rng *r);
    /* (params, projected x_t, state_{t-1}) -> state_t, composed of ops only. */
    tg_state (*step)(tg_tape *t, const tg_cell *cell, tg_tensor *xp, tg_state s);
    /* 1 when step adds b_hh only to h W_hh^T (tg_cell_recurrent) and that sum
     * only to xp: then b_hh can join b_ih in the hoisted projection, once for
     * all T steps, and the unroll steps a copy of the cell with b_hh = NULL.
     * Such a step must treat b_hh == NULL as "no bias" (tg_cell_recurrent
     * does). 0 (the default of a positional initializer) for any other cell. */
    int folds_b_hh;
};

extern const tg_cell_kind tg_cell_rnn;  /* h' = tanh(W_ih x + b_ih + W_hh h + b_hh) */
extern const tg_cell_kind tg_cell_lstm; /* gates i,f,g,o */
extern const tg_cell_kind tg_cell_gru;  /* gates r,z,n; n = tanh(.. + r*(W_hn h + b_hn)) */
extern const tg_cell_kind tg_cell_mgu;  /* minimal gated unit: the example user cell */
/* peephole LSTM (layers/peephole.c): a second user-written cell, gates
 * looking at c through 1 x H weights (tg_mul's row broadcast) */
extern const tg_cell_kind tg_cell_peephole;
/* The LSTM and GRU above run their gate math as one fused op; these are the
 * same cells in primitive ops only, the reference they are tested against. */
extern const tg_cell_kind tg_cell_lstm_composed;
extern const tg_cell_kind tg_cell_gru_composed;

/* Sets cell->kind (other fields cleared) and runs kind->init: the way to make
 * one cell of any kind. 0 ok, -1 out of memory. */
int tg_cell_init(tg_cell *cell, const tg_cell_kind *kind, tg_params *p, const char *prefix,
                 int in, int hidden, tg_rng *r);

/* "rnn", "lstm", "gru", "mgu", "peephole"; NULL for an unknown name. */
const tg_cell_kind *tg_cell_kind_by_name(const char *name);
/* Comma-separated list of the names above, for --help texts. */
const char *tg_cell_kind_names(void);

/* Registers "<prefix>.weight_ih", ".weight_hh", ".bias_ih", ".bias_hh" with
 * uniform(+-1/sqrt(hidden)) init: the helper built-in cells' init uses. */
int tg_cell_init_standard(tg_cell *cell, tg_params *p, const char *prefix, int in, int hidden,
                          tg_rng *r);

/* x (N x in) -> x W_ih^T + b_ih, the input projection of one step. */
tg_tensor *tg_cell_project(tg_tape *t, const tg_cell *cell, tg_tensor *x);
/* h (B x hidden) -> h W_hh^T + b_hh, the recurrent product of one step;
 * without the bias when cell->b_hh is NULL (see folds_b_hh). */
tg_tensor *tg_cell_recurrent(tg_tape *t, const tg_cell *cell, tg_tensor *h);
/* One step from the raw input x_t (projects, then steps). */
tg_state tg_cell_forward(tg_tape *t, const tg_cell *cell, tg_tensor *x_t, tg_state s);

/* A zero state of batch B (constants, no grad). */
tg_state tg_state_zeros(tg_tape *t, const tg_cell_kind *kind, int batch, int hidden);

/* ------------------------------------------------------------------ unroll */

/* Runs cell over T steps of X (T*B x in, time-major) from s0.
 * lengths (B entries, or NULL = all T): for step t >= lengths[b] the state of
 * row b is carried through unchanged, so padding never changes the final
 * state. Returns the per-step outputs h_1..h_T as one (T*B x hidden) tensor
 * (padded positions hold the carried state) and the final state in *final
 * (may be NULL). */
tg_tensor *tg_unroll(tg_tape *t, const tg_cell *cell, tg_tensor *X, int T, int B, tg_state s0,
                     const int *lengths, tg_state *final);

/* tg_unroll in two halves, for callers that can compute the projection more
 * cheaply than from X (tg_rnn_stack_forward_ids projects an embedding table).
 * tg_unroll_project: X (N x in) -> X W_ih^T + b_ih, plus b_hh for a kind with
 * folds_b_hh: the rows the steps take (N x gates*hidden); X may be any rows
 * in the cell's input space, an embedding table included.
 * tg_unroll_projected: tg_unroll given XP = tg_unroll_project(X) (T*B rows),
 * or rows gathered from a tg_unroll_project of other rows. */
tg_tensor *tg_unroll_project(tg_tape *t, const tg_cell *cell, tg_tensor *X);
/* tg_unroll_project of emb's rows for ids[0..n-1] (n x gates*hidden),
 * projecting each distinct id's row once: the whole table when every id
 * occurs, the distinct rows when some repeat, the n rows when none does.
 * The same values as projecting tg_embed_forward(emb, ids, n), up to rounding. */
tg_tensor *tg_unroll_project_ids(tg_tape *t, const tg_cell *cell, const tg_embed *emb,
                                 const int *ids, int n);
tg_tensor *tg_unroll_projected(tg_tape *t, const tg_cell *cell, tg_tensor *XP, int T, int B,
                               tg_state s0, const int *lengths, tg_state *final);

/* ------------------------------------------------------------------ stack */

typedef struct tg_rnn_stack {
    const tg_cell_kind *kind;
    int layers, in, hidden;
    double dropout; /* between layers, training only */
    tg_cell cell[TG_MAX_LAYERS];
} tg_rnn_stack;

/* Layer l registers under "<prefix>.l<l>". 0 ok, -1 out of memory. */
int tg_rnn_stack_init(tg_rnn_stack *s, tg_params *p, const char *prefix, const tg_cell_kind *kind,
                      int in, int hidden, int layers, double dropout, tg_rng *r);

/* Runs every layer over T steps. init[l] is layer l's initial state (NULL:
 * zeros); final[l] receives layer l's final state (NULL: not wanted).
 * dropout_rng == NULL disables dropout (evaluation). Returns the top layer's
 * outputs (T*B x hidden). */
tg_tensor *tg_rnn_stack_forward(tg_tape *t, const tg_rnn_stack *s, tg_tensor *X, int T, int B,
                                const tg_state *init, const int *lengths, tg_state *final,
                                tg_rng *dropout_rng);

/* The same stack given layer 0's input already projected: XP (T*B x
 * gates*hidden) as tg_unroll_project(&s->cell[0], X) gives, or anything
 * equal to it (built from parts of W_ih, or gathered from a projected table). */
tg_tensor *tg_rnn_stack_forward_projected(tg_tape *t, const tg_rnn_stack *s, tg_tensor *XP, int T,
                                          int B, const tg_state *init, const int *lengths,
                                          tg_state *final, tg_rng *dropout_rng);

/* The same stack fed by token ids through embedding emb (emb->dim must be
 * s->in): the function tg_embed_forward + tg_rnn_stack_forward computes,
 * cheaper when ids repeat. Layer 0 projects each distinct id's table row once
 * (the whole table when every id occurs) and gathers the projected rows,
 * instead of projecting T*B embedded rows: at most min(vocab, T*B) rows of
 * projection, forward and backward. The same values up to rounding. */
tg_tensor *tg_rnn_stack_forward_ids(tg_tape *t, const tg_rnn_stack *s, const tg_embed *emb,
                                    const int *ids, int T, int B, const tg_state *init,
                                    const int *lengths, tg_state *final, tg_rng *dropout_rng);

/* ------------------------------------------------------------------ truncated BPTT */

/* A state kept across tapes (heap values, no history): carry the final state
 * of one window into the next one without its graph. */
typedef struct tg_state_buf {
    int layers, batch, hidden, has_c;
    tg_real *h; /* layers * batch * hidden */
    tg_real *c; /* same, or NULL */
} tg_state_buf;

int tg_state_buf_init(tg_state_buf *b, const tg_cell_kind *kind, int layers, int batch,
                      int hidden);
void tg_state_buf_free(tg_state_buf *b);
void tg_state_buf_zero(tg_state_buf *b);
/* Copy final states' values out (detach). */
void tg_state_buf_store(tg_state_buf *b, const tg_state *final);
/* Make constant initial states on tape t from the stored values. */
void tg_state_buf_load(const tg_state_buf *b, tg_tape *t, tg_state *init);

#ifdef __cplusplus
}
#endif
/* attention, the attention decoder and the bidirectional encoder */
#include "tg_attention.h"

#endif
