/* Generic gradient checker: VJP against central finite differences.
 *
 * For fixed random weights w, f(inputs) = <build(inputs), w>. The analytic
 * gradient is one backward sweep seeded with w; the numeric one perturbs
 * each element of each input that has a grad by +-eps. Error per element is
 * |a - n| / max(1, |a|, |n|): relative for large values, absolute near 0. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "tapegrad.h"

static double weighted(const tg_tensor *y, const tg_real *w)
{
    double s = 0;
    for (size_t i = 0; i < tg_numel(y); i++) s += (double)y->data[i] * (double)w[i];
    return s;
}

static double eval(tg_tape *t, tg_build_fn build, void *ctx, tg_tensor **in, const tg_real *w)
{
    tg_tape_reset(t);
    int was = tg_tape_grad_enabled(t);
    tg_tape_set_grad(t, 0);
    double f = weighted(build(t, in, ctx), w);
    tg_tape_set_grad(t, was);
    return f;
}

tg_gradcheck_result tg_gradcheck(tg_tape *t, tg_build_fn build, void *ctx, tg_tensor **in,
                                 int n_in, double eps, uint64_t seed)
{
    tg_gradcheck_result res = {0, 0, 0, -1, 0};
    tg_tape_reset(t);
    tg_tensor *y = build(t, in, ctx);
    size_t ny = tg_numel(y);
    tg_real *w = malloc(ny * sizeof *w);
    tg_rng r;
    tg_rng_seed(&r, seed);
    for (size_t i = 0; i < ny; i++) w[i] = (tg_real)(0.5 + tg_rng_uniform(&r));
    for (int k = 0; k < n_in; k++)
        if (in[k]->grad) memset(in[k]->grad, 0, tg_numel(in[k]) * sizeof(tg_real));
    tg_backward_seeded(t, y, w);
    for (int k = 0; k < n_in; k++) {
        if (!in[k]->grad) continue;
        for (size_t i = 0; i < tg_numel(in[k]); i++) {
            tg_real keep = in[k]->data[i];
            in[k]->data[i] = (tg_real)(keep + eps);
            double fp = eval(t, build, ctx, in, w);
            in[k]->data[i] = (tg_real)(keep - eps);
            double fm = eval(t, build, ctx, in, w);
            in[k]->data[i] = keep;
            double num = (fp - fm) / (2 * eps), ana = in[k]->grad[i];
            double abs_err = fabs(num - ana);
            double rel = abs_err / fmax(1.0, fmax(fabs(num), fabs(ana)));
            if (!(rel <= res.max_rel_err)) { /* also catches NaN */
                res.max_rel_err = isnan(rel) ? INFINITY : rel;
                res.worst_input = k;
                res.worst_index = i;
            }
            if (abs_err > res.max_abs_err) res.max_abs_err = abs_err;
            res.checked++;
        }
    }
    free(w);
    return res;
}
