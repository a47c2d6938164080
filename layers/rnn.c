/* Elman RNN cell (PyTorch RNNCell, tanh):
 *   h' = tanh(x W_ih^T + b_ih + h W_hh^T + b_hh)
 * xp = x W_ih^T + b_ih arrives precomputed from the unroll. */
#include "tg_layers.h"

static tg_state rnn_step(tg_tape *t, const tg_cell *p, tg_tensor *xp, tg_state s)
{
    tg_tensor *hp = tg_add(t, tg_matmul(t, s.h, p->w_hh, 0, 1), p->b_hh);
    tg_state out = {tg_tanh(t, tg_add(t, xp, hp)), NULL};
    return out;
}

const tg_cell_kind tg_cell_rnn = {"rnn", 1, 0, tg_cell_init_standard, rnn_step};
