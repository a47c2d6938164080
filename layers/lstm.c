/* LSTM cell (PyTorch LSTMCell), gates i, f, g, o stacked in that order:
 *   [i f g o] = x W_ih^T + b_ih + h W_hh^T + b_hh      (B x 4H)
 *   c' = sigmoid(f) * c + sigmoid(i) * tanh(g)
 *   h' = sigmoid(o) * tanh(c')
 * The element-wise half is the fused op tg_lstm_gates (one pass instead of
 * 15 ops; tests/engine checks it against the composed form, which
 * lstm_step_composed below spells out and tests/layers compares with). */
#include "tg_layers.h"

static tg_state lstm_step(tg_tape *t, const tg_cell *p, tg_tensor *xp, tg_state s)
{
    int B = s.h->rows;
    tg_tensor *y = tg_lstm_gates(t, xp, tg_cell_recurrent(t, p, s.h), s.c); /* rows 0..B-1: h', rows B..2B-1: c' */
    tg_state out = {tg_row_slice(t, y, 0, B), tg_row_slice(t, y, B, B)};
    return out;
}

static tg_state lstm_step_rows(tg_tape *t, const tg_cell *p, tg_tensor *xs, const int *pos,
                               tg_state s)
{
    int B = s.h->rows;
    tg_tensor *y = tg_lstm_gates_rows(t, xs, pos, tg_cell_recurrent(t, p, s.h), s.c);
    tg_state out = {tg_row_slice(t, y, 0, B), tg_row_slice(t, y, B, B)};
    return out;
}

static tg_state lstm_step_composed(tg_tape *t, const tg_cell *p, tg_tensor *xp, tg_state s)
{
    int H = p->hidden;
    tg_tensor *pre = tg_add(t, xp, tg_cell_recurrent(t, p, s.h));
    tg_tensor *i = tg_sigmoid(t, tg_col_slice(t, pre, 0 * H, H));
    tg_tensor *f = tg_sigmoid(t, tg_col_slice(t, pre, 1 * H, H));
    tg_tensor *g = tg_tanh(t, tg_col_slice(t, pre, 2 * H, H));
    tg_tensor *o = tg_sigmoid(t, tg_col_slice(t, pre, 3 * H, H));
    tg_state out;
    out.c = tg_add(t, tg_mul(t, f, s.c), tg_mul(t, i, g));
    out.h = tg_mul(t, o, tg_tanh(t, out.c));
    return out;
}

/* b_hh meets only h W_hh^T and then xp: the unroll may fold it (folds_b_hh). */
const tg_cell_kind tg_cell_lstm = {.name = "lstm", .gates = 4, .has_c = 1,
                                   .init = tg_cell_init_standard, .step = lstm_step,
                                   .folds_b_hh = 1, .step_rows = lstm_step_rows};
const tg_cell_kind tg_cell_lstm_composed = {.name = "lstm-composed", .gates = 4, .has_c = 1,
                                            .init = tg_cell_init_standard,
                                            .step = lstm_step_composed, .folds_b_hh = 1};
