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
 * cell may use any of the slots, extra[] included. w_ih has in + in_rest
 * columns: in_rest is 0 for a cell as built (tg_cell_init zeroes it); a copy
 * of a decoder's layer 0 seen from its embedding (or x) columns alone sets
 * in to their count and in_rest to the context's or input feed's columns
 * that follow (the unroll projects them apart, tg_affine_cols reading each
 * range in place). */
typedef struct tg_cell {
    const tg_cell_kind *kind;
    int in, hidden;
    int in_rest;
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
     * all T steps, and the unroll steps a copy of the cell with b_hh = NULL
     * (or, with a per-row context, its B x G*H projection, to be added as
     * b_hh is). Such a step must treat b_hh == NULL as "no bias" and a B-row
     * b_hh as one bias row per batch row (tg_cell_recurrent does both).
     * 0 (the default of a positional initializer) for any other cell. */
    int folds_b_hh;
    /* Optional: step with xp's row b read from row pos[b] of xs (layer 0 fed
     * by ids: rows of the distinct ids' projection), the same results as step
     * over those rows gathered, without gathering them (tg_lstm_gates_rows).
     * NULL: the unroll gathers the rows (tg_embedding) and calls step. */
    tg_state (*step_rows)(tg_tape *t, const tg_cell *cell, tg_tensor *xs, const int *pos,
                          tg_state s);
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
 * without the bias when cell->b_hh is NULL (see folds_b_hh). b_hh is 1 x
 * G*H, or B x G*H where the unroll of a kind that folds b_hh puts a per-row
 * context's projection in its place. */
tg_tensor *tg_cell_recurrent(tg_tape *t, const tg_cell *cell, tg_tensor *h);
/* One step from the raw input x_t (projects, then steps). */
tg_state tg_cell_forward(tg_tape *t, const tg_cell *cell, tg_tensor *x_t, tg_state s);

/* A zero state of batch B (constants, no grad). */
tg_state tg_state_zeros(tg_tape *t, const tg_cell_kind *kind, int batch, int hidden);

/* ------------------------------------------------------------------ stack */

typedef struct tg_rnn_stack {
    const tg_cell_kind *kind;
    int layers, in, hidden;
    double dropout; /* between layers (and on the input with dropout_input), training only */
    tg_cell cell[TG_MAX_LAYERS];
} tg_rnn_stack;

/* Layer l registers under "<prefix>.l<l>". 0 ok, -1 out of memory. */
int tg_rnn_stack_init(tg_rnn_stack *s, tg_params *p, const char *prefix, const tg_cell_kind *kind,
                      int in, int hidden, int layers, double dropout, tg_rng *r);

/* A one-layer stack over an existing cell (registers nothing, copies the
 * cell's tensor pointers): to run a lone cell through tg_rnn_forward. */
tg_rnn_stack tg_rnn_stack_of_cell(const tg_cell *cell);

/* One run of a stack over T steps of B rows. Layer 0's input is exactly one
 * of:
 *   x        T*B x in (time-major);
 *   emb+ids  T*B token ids through the embedding (emb->dim columns);
 *   xp       T*B x gates*hidden, layer 0's input already projected (as
 *            tg_rnn_project gives, or anything equal to it);
 * and, with x or ids, optionally a context ctx (B x C): the same row for
 * every step, its columns the last C of layer 0's input (the cell's in is
 * then the x or embedding width + C). Zero-initialise and set what you use:
 *     tg_rnn_run run = {.T = T, .B = B, .emb = &emb, .ids = ids, .final = fin};
 *     tg_tensor *h = tg_rnn_forward(t, &stack, &run);   // T*B x hidden */
typedef struct tg_rnn_run {
    int T, B;
    tg_tensor *x;
    const tg_embed *emb;
    const int *ids;
    tg_tensor *xp;
    tg_tensor *ctx;
    const tg_state *init;    /* init[l]: layer l's initial state; NULL (or .h NULL): zeros */
    const int *lengths;      /* B entries, or NULL = all T: rows past their length carry
                              * their state unchanged, so padding never changes it */
    tg_state *final;         /* final[l] receives layer l's final state; NULL: not wanted */
    tg_rng *dropout_rng;     /* NULL: no dropout (evaluation) */
    int dropout_input;       /* also drop layer 0's x / embedded rows (not ctx) */
} tg_rnn_run;

/* Runs every layer; returns the top layer's per-step outputs h_1..h_T
 * (T*B x hidden; a padded position holds the carried state). Layer 0's
 * projection x W_ih^T + b_ih, for all T steps at once, takes the cheapest
 * form with the same values (up to rounding):
 *   - b_hh joins b_ih there for a cell kind that folds it (folds_b_hh);
 *   - through ids, each distinct id's table row is projected once (the whole
 *     table when every id occurs) and the projected rows gathered: at most
 *     min(vocab, T*B) rows of projection, forward and backward;
 *   - ctx's columns of W_ih are applied once per row, not once per step
 *     (with one step, [x | ctx] goes through the whole W_ih in one product:
 *     applying ctx apart saves nothing there).
 * Dropout on the input (dropout_input with a dropout_rng) needs the embedded
 * rows themselves: the ids shortcut is then off. */
tg_tensor *tg_rnn_forward(tg_tape *t, const tg_rnn_stack *s, const tg_rnn_run *run);

/* Layer 0's projection as tg_rnn_forward computes it (T*B x gates*hidden,
 * b_hh included for a kind that folds it): for callers that reuse it, and
 * for tests. run->xp must be NULL; states, lengths and final are ignored.
 * With a context and a kind that folds b_hh, tg_rnn_forward adds the
 * context's projection in each step's recurrent product instead of to these
 * rows: the same values to rounding.
 * Fed by ids, tg_rnn_forward takes each step's rows of the distinct ids'
 * projection instead of this gathered matrix: the same values forward; the
 * projection's gradient adds the steps' rows last step first, where a
 * forward given xp = these rows adds them in row order (last bits). */
tg_tensor *tg_rnn_project(tg_tape *t, const tg_rnn_stack *s, const tg_rnn_run *run);

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
/* The same, row r of the buffer from row rows[r] of final's tensors (which
 * may have any number of rows): to repeat or reorder rows (beam search). */
void tg_state_buf_store_rows(tg_state_buf *b, const tg_state *final, const int *rows);
/* Keeps rows rows[0..n-1] (ascending) of the buffer as its rows 0..n-1, and
 * n (1 <= n <= b->batch) as its batch: rows that are done dropped (decoding). */
void tg_state_buf_keep_rows(tg_state_buf *b, const int *rows, int n);
/* Make constant initial states on tape t from the stored values. */
void tg_state_buf_load(const tg_state_buf *b, tg_tape *t, tg_state *init);

#ifdef __cplusplus
}
#endif
/* attention, the attention decoder and the bidirectional encoder */
#include "tg_attention.h"

#endif
