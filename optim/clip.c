/* Global gradient norm, clipping and non-finite checks over flat arrays.
 *
 * The norm is summed in double, in index order, by one thread: the same
 * gradients always give the same norm and the same clipped values. */
#include <math.h>

#include "tg_optim.h"

double tg_grad_norm_flat(const tg_real *g, size_t n)
{
    double s = 0.0;
    for (size_t i = 0; i < n; i++) s += (double)g[i] * (double)g[i];
    return sqrt(s);
}

double tg_grad_norm(tg_params *p) { return tg_grad_norm_flat(tg_params_grad(p), tg_params_numel(p)); }

double tg_clip_grad_norm_flat(tg_real *g, size_t n, double max_norm)
{
    double norm = tg_grad_norm_flat(g, n);
    /* No eps in the divisor (PyTorch adds 1e-6): the clipped norm is the
     * threshold up to rounding, which is what a user asking for 5 expects. */
    if (!(max_norm > 0) || !isfinite(norm) || norm <= max_norm) return norm;
    double scale = max_norm / norm;
    for (size_t i = 0; i < n; i++) g[i] = (tg_real)((double)g[i] * scale);
    return norm;
}

double tg_clip_grad_norm(tg_params *p, double max_norm)
{
    return tg_clip_grad_norm_flat(tg_params_grad(p), tg_params_numel(p), max_norm);
}

size_t tg_first_nonfinite(const tg_real *x, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (!isfinite(x[i])) return i;
    return n;
}

const char *tg_params_nonfinite_grad(tg_params *p, size_t *index)
{
    for (size_t i = 0; i < tg_params_count(p); i++) {
        tg_tensor *t = tg_params_at(p, i);
        size_t n = tg_numel(t), k = tg_first_nonfinite(t->grad, n);
        if (k < n) {
            if (index) *index = k;
            return tg_params_name(p, i);
        }
    }
    return NULL;
}
