/* What every cell shares: standard parameter registration, the input
 * projection and recurrent product, one step, zero states and the registry of cells by name. */
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "tg_layers.h"

int tg_cell_init_standard(tg_cell *cell, tg_params *p, const char *prefix, int in, int hidden,
                          tg_rng *r)
{
    static const char *const names[4] = {"weight_ih", "weight_hh", "bias_ih", "bias_hh"};
    int g = cell->kind->gates * hidden;
    int rows[4] = {g, g, 1, 1}, cols[4] = {in, hidden, g, g};
    tg_tensor **slot[4] = {&cell->w_ih, &cell->w_hh, &cell->b_ih, &cell->b_hh};
    double bound = 1.0 / sqrt((double)hidden);
    char nm[TG_NAME_MAX + 16];
    cell->in = in;
    cell->hidden = hidden;
    for (int k = 0; k < 4; k++) { /* PyTorch's registration order */
        snprintf(nm, sizeof nm, "%s.%s", prefix, names[k]);
        *slot[k] = tg_param_uniform(p, nm, rows[k], cols[k], r, bound);
        if (!*slot[k]) return -1;
    }
    return 0;
}

tg_tensor *tg_cell_project(tg_tape *t, const tg_cell *cell, tg_tensor *x)
{
    return tg_affine(t, x, cell->w_ih, cell->b_ih);
}

/* One op with the bias: the product adds it (tg_affine's bias may be a row
 * or one per row: the unroll's context), without the product's own output
 * and gradient. The same sum as a matmul then an add: bit for bit on the
 * weight panels (the chain, then the bias), to rounding where BLAS starts
 * from the bias. */
tg_tensor *tg_cell_recurrent(tg_tape *t, const tg_cell *cell, tg_tensor *h)
{
    return cell->b_hh ? tg_affine(t, h, cell->w_hh, cell->b_hh) : tg_matmul(t, h, cell->w_hh, 0, 1);
}

tg_state tg_cell_forward(tg_tape *t, const tg_cell *cell, tg_tensor *x_t, tg_state s)
{
    return cell->kind->step(t, cell, tg_cell_project(t, cell, x_t), s);
}

tg_state tg_state_zeros(tg_tape *t, const tg_cell_kind *kind, int batch, int hidden)
{
    tg_state s;
    s.h = tg_tensor_new(t, batch, hidden, 0);
    s.c = kind->has_c ? tg_tensor_new(t, batch, hidden, 0) : NULL;
    return s;
}

static const tg_cell_kind *const all_kinds[] = {&tg_cell_rnn, &tg_cell_lstm, &tg_cell_gru,
                                                &tg_cell_mgu, &tg_cell_peephole};

const tg_cell_kind *tg_cell_kind_by_name(const char *name)
{
    for (size_t i = 0; i < sizeof all_kinds / sizeof all_kinds[0]; i++)
        if (name && strcmp(all_kinds[i]->name, name) == 0) return all_kinds[i];
    return NULL;
}

const char *tg_cell_kind_names(void) { return "rnn,lstm,gru,mgu,peephole"; }
