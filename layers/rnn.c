/* Elman RNN cell (PyTorch RNNCell, tanh):
 *   h' = tanh(x W_ih^T + b_ih + h W_hh^T + b_hh)
 * xp = x W_ih^T + b_ih arrives precomputed from the unroll, which also folds
 * b_hh into it (folds_b_hh) and then steps with b_hh = NULL (or with a
 * per-row context's projection in its place: tg_cell_recurrent adds either). */
#include "tg_layers.h"

static tg_state rnn_step(tg_tape *t, const tg_cell *p, tg_tensor *xp, tg_state s)
{
    tg_state out = {tg_tanh(t, tg_add(t, xp, tg_cell_recurrent(t, p, s.h))), NULL};
    return out;
}

const tg_cell_kind tg_cell_rnn = {.name = "rnn", .gates = 1, .init = tg_cell_init_standard,
                                  .step = rnn_step, .folds_b_hh = 1};
