/* Peephole LSTM (Gers & Schmidhuber 2000) — the second example of a
 * user-written cell: public ops only, no backward code. The gates also see
 * the cell state through per-unit ("diagonal") peephole weights, a 1 x H row
 * broadcast over the batch by tg_mul:
 *   [i f g o]~ = x W_ih^T + b_ih + h W_hh^T + b_hh        (B x 4H, PyTorch's order)
 *   i  = sigmoid(i~ + w_ci * c)       f = sigmoid(f~ + w_cf * c)
 *   g  = tanh(g~)
 *   c' = f * c + i * g
 *   o  = sigmoid(o~ + w_co * c')      (the output gate looks at the new state)
 *   h' = o * tanh(c')
 * Parameters: "<prefix>.weight_ih" (4H x I), ".weight_hh" (4H x H),
 * ".bias_ih", ".bias_hh" (1 x 4H) as the LSTM, then ".weight_ci",
 * ".weight_cf", ".weight_co" (1 x H each, in extra[0..2]), all uniform in
 * +-1/sqrt(H). b_hh only meets h W_hh^T and then the projection, so the
 * unroll may fold it (folds_b_hh). */
#include <math.h>
#include <stdio.h>

#include "tg_layers.h"

static int peephole_init(tg_cell *c, tg_params *p, const char *prefix, int in, int hidden,
                         tg_rng *r)
{
    static const char *const names[3] = {"weight_ci", "weight_cf", "weight_co"};
    if (tg_cell_init_standard(c, p, prefix, in, hidden, r) != 0) return -1;
    char nm[TG_NAME_MAX + 16];
    for (int k = 0; k < 3; k++) {
        snprintf(nm, sizeof nm, "%s.%s", prefix, names[k]);
        c->extra[k] = tg_param_uniform(p, nm, 1, hidden, r, 1.0 / sqrt((double)hidden));
        if (!c->extra[k]) return -1;
    }
    return 0;
}

static tg_tensor *gate(tg_tape *t, tg_tensor *pre, int k, int H)
{
    return tg_col_slice(t, pre, k * H, H);
}

static tg_state peephole_step(tg_tape *t, const tg_cell *p, tg_tensor *xp, tg_state s)
{
    int H = p->hidden;
    tg_tensor *pre = tg_add(t, xp, tg_cell_recurrent(t, p, s.h));
    tg_tensor *i = tg_sigmoid(t, tg_add(t, gate(t, pre, 0, H), tg_mul(t, s.c, p->extra[0])));
    tg_tensor *f = tg_sigmoid(t, tg_add(t, gate(t, pre, 1, H), tg_mul(t, s.c, p->extra[1])));
    tg_tensor *g = tg_tanh(t, gate(t, pre, 2, H));
    tg_state out;
    out.c = tg_add(t, tg_mul(t, f, s.c), tg_mul(t, i, g));
    tg_tensor *o = tg_sigmoid(t, tg_add(t, gate(t, pre, 3, H), tg_mul(t, out.c, p->extra[2])));
    out.h = tg_mul(t, o, tg_tanh(t, out.c));
    return out;
}

const tg_cell_kind tg_cell_peephole = {.name = "peephole", .gates = 4, .has_c = 1,
                                       .init = peephole_init, .step = peephole_step,
                                       .folds_b_hh = 1};
