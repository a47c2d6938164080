/* Minimal gated unit (Zhou et al. 2016) — the example of a user-defined cell.
 * It uses only the public API: no backward code, the tape differentiates it.
 *   f  = sigmoid(x W_if^T + b_f + h W_hf^T)
 *   c~ = tanh(x W_ic^T + b_c + (f * h) W_hc^T)
 *   h' = (1 - f) * h + f * c~
 * Two gates (f, c~): w_ih is 2H x I and b_ih 1 x 2H, so the unroll's hoisted
 * projection xp = x W_ih^T + b_ih holds [xp_f | xp_c]; w_hh is 2H x H with
 * W_hf in rows 0..H-1 and W_hc in rows H..2H-1 (row slices are views). */
#include <math.h>
#include <stdio.h>

#include "tg_layers.h"

static int mgu_init(tg_cell *c, tg_params *p, const char *prefix, int in, int hidden, tg_rng *r)
{
    char nm[TG_NAME_MAX + 16];
    double bound = 1.0 / sqrt((double)hidden);
    c->in = in;
    c->hidden = hidden;
    snprintf(nm, sizeof nm, "%s.weight_ih", prefix);
    c->w_ih = tg_param_uniform(p, nm, 2 * hidden, in, r, bound);
    snprintf(nm, sizeof nm, "%s.weight_hh", prefix);
    c->w_hh = tg_param_uniform(p, nm, 2 * hidden, hidden, r, bound);
    snprintf(nm, sizeof nm, "%s.bias_ih", prefix);
    c->b_ih = tg_param_uniform(p, nm, 1, 2 * hidden, r, bound);
    return c->w_ih && c->w_hh && c->b_ih ? 0 : -1;
}

static tg_state mgu_step(tg_tape *t, const tg_cell *c, tg_tensor *xp, tg_state s)
{
    int H = c->hidden;
    tg_tensor *w_hf = tg_row_slice(t, c->w_hh, 0, H), *w_hc = tg_row_slice(t, c->w_hh, H, H);
    tg_tensor *f = tg_sigmoid(t, tg_add(t, tg_col_slice(t, xp, 0, H), tg_matmul(t, s.h, w_hf, 0, 1)));
    tg_tensor *cand = tg_tanh(
        t, tg_add(t, tg_col_slice(t, xp, H, H), tg_matmul(t, tg_mul(t, f, s.h), w_hc, 0, 1)));
    tg_state out = {tg_add(t, tg_mul(t, tg_one_minus(t, f), s.h), tg_mul(t, f, cand)), NULL};
    return out;
}

const tg_cell_kind tg_cell_mgu = {.name = "mgu", .gates = 2, .init = mgu_init, .step = mgu_step};
