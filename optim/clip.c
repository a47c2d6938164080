/* Global gradient norm, clipping and non-finite checks over flat arrays.
 *
 * These loops run over every parameter at the end of every step, after the
 * shards have joined, so they are written to vectorize (TG_SIMD_CLONES,
 * graph/tg_clones.h). The norm is tg_sum_squares's (graph/params.c): a
 * fixed order, so the same gradients always give the same norm and the same
 * clipped values, whatever the thread count or the clone, and
 * tg_workers_run can compute it block by block as it sums the shards. */
#include <math.h>

#include "tg_clones.h"
#include "tg_optim.h"

enum { NORM_LANES = 16 };

double tg_grad_norm_flat(const tg_real *g, size_t n) { return sqrt(tg_sum_squares(g, n)); }

double tg_grad_norm(tg_params *p) { return tg_grad_norm_flat(tg_params_grad(p), tg_params_numel(p)); }

/* g scaled to max_norm when its norm is larger (finite) */
static void clip_to(tg_real *g, size_t n, double norm, double max_norm)
{
    /* No eps in the divisor (PyTorch adds 1e-6): the clipped norm is the
     * threshold up to rounding, which is what a user asking for 5 expects. */
    if (!(max_norm > 0) || !isfinite(norm) || norm <= max_norm) return;
    double scale = max_norm / norm;
    for (size_t i = 0; i < n; i++) g[i] = (tg_real)((double)g[i] * scale);
}

double tg_clip_grad_norm_flat(tg_real *g, size_t n, double max_norm)
{
    double norm = tg_grad_norm_flat(g, n);
    clip_to(g, n, norm, max_norm);
    return norm;
}

double tg_clip_grad_norm(tg_params *p, double max_norm)
{
    return tg_clip_grad_norm_flat(tg_params_grad(p), tg_params_numel(p), max_norm);
}

void tg_clip_grad_to(tg_params *p, double norm, double max_norm)
{
    clip_to(tg_params_grad(p), tg_params_numel(p), norm, max_norm);
}

/* x * 0 is 0 for a finite x and NaN for an infinity or a NaN, and a NaN
 * stays in a sum: lanes of such sums test a block without a branch per
 * element (and so vectorize); only a block that fails is scanned again for
 * the index. */
TG_SIMD_CLONES static int block_finite(const tg_real *x, size_t n)
{
    tg_real s[NORM_LANES] = {0};
    size_t i = 0;
    for (; i + NORM_LANES <= n; i += NORM_LANES)
        for (int j = 0; j < NORM_LANES; j++) s[j] += x[i + j] * (tg_real)0;
    for (int j = 0; i < n; i++, j++) s[j] += x[i] * (tg_real)0;
    tg_real all = 0;
    for (int j = 0; j < NORM_LANES; j++) all += s[j];
    return all == 0;
}

size_t tg_first_nonfinite(const tg_real *x, size_t n)
{
    enum { BLOCK = 4096 };
    for (size_t lo = 0; lo < n; lo += BLOCK) {
        size_t len = n - lo < BLOCK ? n - lo : BLOCK;
        if (block_finite(x + lo, len)) continue;
        for (size_t i = lo; i < lo + len; i++)
            if (!isfinite(x[i])) return i;
    }
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
