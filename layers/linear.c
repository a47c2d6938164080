/* Linear and embedding layers, PyTorch layouts and initialisation.
 *   linear:    y = x W^T + b,  W (out x in), b (1 x out), both U(+-1/sqrt(in))
 *              (nn.Linear's kaiming_uniform(a=sqrt(5)) reduces to that bound).
 *   embedding: y[i,:] = table[ids[i],:], table (vocab x dim) ~ N(0, 1). */
#include <math.h>
#include <stdio.h>

#include "tg_layers.h"

int tg_linear_init(tg_linear *l, tg_params *p, const char *name, int in, int out, tg_rng *r)
{
    char nm[TG_NAME_MAX + 16];
    double bound = 1.0 / sqrt((double)in);
    l->in = in;
    l->out = out;
    snprintf(nm, sizeof nm, "%s.weight", name);
    l->w = tg_param_uniform(p, nm, out, in, r, bound);
    snprintf(nm, sizeof nm, "%s.bias", name);
    l->b = l->w ? tg_param_uniform(p, nm, 1, out, r, bound) : NULL;
    return l->w && l->b ? 0 : -1;
}

tg_tensor *tg_linear_forward(tg_tape *t, const tg_linear *l, tg_tensor *x)
{
    return tg_affine(t, x, l->w, l->b);
}

int tg_embed_init(tg_embed *e, tg_params *p, const char *name, int vocab, int dim, tg_rng *r)
{
    char nm[TG_NAME_MAX + 16];
    e->vocab = vocab;
    e->dim = dim;
    snprintf(nm, sizeof nm, "%s.weight", name);
    e->table = tg_param_normal(p, nm, vocab, dim, r, 1.0);
    return e->table ? 0 : -1;
}

tg_tensor *tg_embed_forward(tg_tape *t, const tg_embed *e, const int *ids, int n)
{
    return tg_embedding(t, e->table, ids, n);
}
