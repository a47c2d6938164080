/* GRU cell (PyTorch GRUCell), gates r, z, n stacked in that order:
 *   xp = x W_ih^T + b_ih,  hp = h W_hh^T + b_hh          (B x 3H each)
 *   r = sigmoid(xp_r + hp_r),  z = sigmoid(xp_z + hp_z)
 *   n = tanh(xp_n + r * hp_n)        r gates W_hn h + b_hn, bias included
 *   h' = (1 - z) * n + z * h         z weights the old state
 * The element-wise half is the fused op tg_gru_gates; gru_step_composed is
 * the same math in primitive ops, kept as the reference the tests compare.
 * b_hh cannot join the hoisted projection (folds_b_hh = 0): b_hn is inside
 * r * (W_hn h + b_hn). */
#include "tg_layers.h"

static tg_state gru_step(tg_tape *t, const tg_cell *p, tg_tensor *xp, tg_state s)
{
    tg_tensor *hp = tg_cell_recurrent(t, p, s.h);
    tg_state out = {tg_gru_gates(t, xp, hp, s.h), NULL};
    return out;
}

static tg_state gru_step_composed(tg_tape *t, const tg_cell *p, tg_tensor *xp, tg_state s)
{
    int H = p->hidden;
    tg_tensor *hp = tg_cell_recurrent(t, p, s.h);
    /* r and z share one sigmoid over their 2H adjacent columns */
    tg_tensor *rz = tg_sigmoid(
        t, tg_add(t, tg_col_slice(t, xp, 0, 2 * H), tg_col_slice(t, hp, 0, 2 * H)));
    tg_tensor *r = tg_col_slice(t, rz, 0, H), *z = tg_col_slice(t, rz, H, H);
    tg_tensor *n = tg_tanh(
        t, tg_add(t, tg_col_slice(t, xp, 2 * H, H), tg_mul(t, r, tg_col_slice(t, hp, 2 * H, H))));
    tg_state out = {tg_add(t, tg_mul(t, tg_one_minus(t, z), n), tg_mul(t, z, s.h)), NULL};
    return out;
}

const tg_cell_kind tg_cell_gru = {.name = "gru", .gates = 3, .init = tg_cell_init_standard,
                                  .step = gru_step};
const tg_cell_kind tg_cell_gru_composed = {.name = "gru-composed", .gates = 3,
                                           .init = tg_cell_init_standard,
                                           .step = gru_step_composed};
