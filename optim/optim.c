/* SGD (momentum, Nesterov), Adam and AdamW over flat parameter arrays.
 *
 * The state (moment arrays, step count) is allocated once in tg_optim_new;
 * a step only reads and writes those arrays. SGD updates each element in
 * double and rounds once to tg_real; Adam runs in tg_real, each operation
 * rounded, as PyTorch's (adam_loop says why). Either way the result is the
 * same on every CPU and whatever the compiler does with float expressions
 * (this file builds with -ffp-contract=off), which keeps resume bitwise
 * exact. */
#include <float.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <omp.h>

#include "tg_clones.h"
#include "tg_optim.h"

#define MAX_STATE 2

struct tg_optim {
    tg_optim_config cfg;
    size_t numel;
    uint64_t steps;
    size_t n_state;
    tg_real *state[MAX_STATE];
    const char *state_name[MAX_STATE];
    int state_nonneg[MAX_STATE]; /* never negative: Adam's v, a running mean of squares */
    int threads; /* tg_optim_set_threads; 0 or 1: the caller's thread */
    int values_finite; /* the last update wrote only finite values (0 before any) */
};

tg_optim_config tg_optim_defaults(tg_optim_kind kind)
{
    tg_optim_config c = {0};
    c.kind = kind;
    c.lr = kind == TG_OPTIM_SGD ? 0.1 : 1e-3;
    c.weight_decay = kind == TG_OPTIM_ADAMW ? 0.01 : 0.0;
    c.beta1 = 0.9;
    c.beta2 = 0.999;
    c.eps = 1e-8;
    return c;
}

static const char *const kind_names[] = {"sgd", "adam", "adamw"};

const char *tg_optim_kind_name(tg_optim_kind kind)
{
    return (unsigned)kind < 3 ? kind_names[kind] : "unknown";
}

int tg_optim_kind_parse(const char *name, tg_optim_kind *out)
{
    for (unsigned k = 0; k < 3; k++)
        if (name && strcmp(name, kind_names[k]) == 0) {
            *out = (tg_optim_kind)k;
            return 0;
        }
    return -1;
}

#define FAIL(...)                                                                      \
    do {                                                                               \
        if (err && errlen) snprintf(err, errlen, __VA_ARGS__);                         \
        return -1;                                                                     \
    } while (0)

int tg_optim_config_check(const tg_optim_config *c, char *err, size_t errlen)
{
    if ((unsigned)c->kind > TG_OPTIM_ADAMW) FAIL("optimizer kind %d is unknown", (int)c->kind);
    if (!(c->lr >= 0 && isfinite(c->lr))) FAIL("lr %g must be finite and >= 0", c->lr);
    if (!(c->weight_decay >= 0 && isfinite(c->weight_decay)))
        FAIL("weight_decay %g must be finite and >= 0", c->weight_decay);
    if (c->kind == TG_OPTIM_SGD) {
        if (!(c->momentum >= 0 && c->momentum < 1))
            FAIL("momentum %g must be in [0, 1)", c->momentum);
        if (c->nesterov && c->momentum == 0) FAIL("nesterov needs momentum > 0");
        return 0;
    }
    if (!(c->beta1 >= 0 && c->beta1 < 1)) FAIL("beta1 %g must be in [0, 1)", c->beta1);
    if (!(c->beta2 >= 0 && c->beta2 < 1)) FAIL("beta2 %g must be in [0, 1)", c->beta2);
    if (!(c->eps > 0 && isfinite(c->eps))) FAIL("eps %g must be finite and > 0", c->eps);
    /* The update runs in tg_real (adam_loop): in float a beta that rounds to
     * 1 never lets its moment decay, and an eps that rounds to 0 makes 0/0
     * of every zero gradient (or to infinity, no update at all). Any value
     * above passes in double. */
    if (!((tg_real)c->beta1 < 1) || !((tg_real)c->beta2 < 1))
        FAIL("beta1 %.9g and beta2 %.9g must stay below 1 in float, the update's precision (at "
             "most 1 - 2^-24)", c->beta1, c->beta2);
    if (!((tg_real)c->eps > 0 && isfinite((tg_real)c->eps)))
        FAIL("eps %g rounds to %s in float, the update's precision (from %g to %g)", c->eps,
             (tg_real)c->eps > 0 ? "infinity" : "0", (double)FLT_TRUE_MIN, (double)FLT_MAX);
    return 0;
}

static int add_state(tg_optim *o, const char *name, int nonneg)
{
    /* calloc(0) may return NULL: keep at least one element. */
    tg_real *a = calloc(o->numel ? o->numel : 1, sizeof *a);
    if (!a) return -1;
    o->state[o->n_state] = a;
    o->state_name[o->n_state] = name;
    o->state_nonneg[o->n_state] = nonneg;
    o->n_state++;
    return 0;
}

tg_optim *tg_optim_new(const tg_optim_config *cfg, size_t numel, char *err, size_t errlen)
{
    if (tg_optim_config_check(cfg, err, errlen) != 0) return NULL;
    tg_optim *o = calloc(1, sizeof *o);
    int rc = o ? 0 : -1;
    if (o) {
        o->cfg = *cfg;
        o->numel = numel;
        if (cfg->kind != TG_OPTIM_SGD)
            rc = add_state(o, "optim.m", 0) || add_state(o, "optim.v", 1) ? -1 : 0;
        else if (cfg->momentum > 0)
            rc = add_state(o, "optim.momentum", 0);
    }
    if (rc == 0) return o;
    tg_optim_free(o);
    if (err && errlen)
        snprintf(err, errlen, "out of memory for the optimizer state (%zu values)", numel);
    return NULL;
}

void tg_optim_free(tg_optim *o)
{
    if (!o) return;
    for (size_t i = 0; i < o->n_state; i++) free(o->state[i]);
    free(o);
}

/* The update loops below are clones (TG_SIMD_CLONES, graph/tg_clones.h).
 * Baseline x86-64 code updates 2 doubles (SGD) or 4 floats (Adam) per
 * instruction; AVX-512 does 8 or 16. +, *, / and sqrt are correctly rounded and nothing is
 * contracted, so every clone gives the same bits: tests/optim checks them
 * against the scalar formulas. */

/* Each loop returns 1 when a value it wrote is not finite: x - x is 0 for
 * a finite x and NaN for an infinity or a NaN, and an OR of ints keeps the
 * loop vectorized. The end of a training step then needs no pass of its own
 * over the values (tg_optim_values_finite). */
#define NOT_FINITE(x) (!((x) - (x) == 0))

#ifdef TG_REAL_DOUBLE
#define SQRT sqrt
#else
#define SQRT sqrtf
#endif

/* p -= lr (g + wd p) */
TG_SIMD_CLONES static int sgd_plain_loop(tg_real *p, const tg_real *grad, size_t n, double lr,
                                         double wd)
{
    int bad = 0;
    for (size_t i = 0; i < n; i++) {
        tg_real v = (tg_real)((double)p[i] - lr * ((double)grad[i] + wd * (double)p[i]));
        p[i] = v;
        bad |= NOT_FINITE(v);
    }
    return bad;
}

/* g = grad + wd p;  b = mu b + g;  p -= lr (nesterov ? g + mu b : b).
 * b starts at 0, so the first step gives b = g as in PyTorch. The Nesterov
 * test sits outside the loops, which keeps each one straight-line code. */
TG_SIMD_CLONES static int sgd_momentum_loop(tg_real *p, const tg_real *grad, tg_real *buf,
                                            size_t n, double lr, double wd, double mu)
{
    int bad = 0;
    for (size_t i = 0; i < n; i++) {
        double g = (double)grad[i] + wd * (double)p[i];
        double b = mu * (double)buf[i] + g;
        buf[i] = (tg_real)b;
        tg_real v = (tg_real)((double)p[i] - lr * b);
        p[i] = v;
        bad |= NOT_FINITE(v);
    }
    return bad;
}

TG_SIMD_CLONES static int sgd_nesterov_loop(tg_real *p, const tg_real *grad, tg_real *buf,
                                            size_t n, double lr, double wd, double mu)
{
    int bad = 0;
    for (size_t i = 0; i < n; i++) {
        double g = (double)grad[i] + wd * (double)p[i];
        double b = mu * (double)buf[i] + g;
        buf[i] = (tg_real)b;
        tg_real v = (tg_real)((double)p[i] - lr * (g + mu * b));
        p[i] = v;
        bad |= NOT_FINITE(v);
    }
    return bad;
}

/* Elements [lo, hi) of p, grad and the state; 1 when a new value is not
 * finite. */
static int sgd_range(const tg_optim *o, tg_real *p, const tg_real *grad, size_t lo, size_t hi)
{
    const double lr = o->cfg.lr, wd = o->cfg.weight_decay, mu = o->cfg.momentum;
    size_t n = hi - lo;
    if (!o->n_state) return sgd_plain_loop(p + lo, grad + lo, n, lr, wd);
    if (o->cfg.nesterov)
        return sgd_nesterov_loop(p + lo, grad + lo, o->state[0] + lo, n, lr, wd, mu);
    return sgd_momentum_loop(p + lo, grad + lo, o->state[0] + lo, n, lr, wd, mu);
}

/* The Adam constants of one step (t >= 1), each computed in double and
 * rounded once to tg_real: the loop's operands. */
typedef struct adam_coef {
    tg_real b1, one_b1, b2, one_b2, eps, step_size, sqrt_bc2, l2, decay;
} adam_coef;

/* Adam's update in tg_real, each operation rounded to tg_real, in PyTorch's
 * formula (torch.optim.Adam's single-tensor step: denom = sqrt(v) / sqrt(bc2)
 * + eps, p -= step_size * (m / denom)), with two differences: m = b1 m +
 * (1-b1) g where PyTorch lerps (m + (1-b1)(g - m)), and AdamW's decay as p -
 * (lr wd) p, not p (1 - lr wd), whose factor in float rounds lr wd to a
 * multiple of 2^-24 (the same bias on every step). In double its sqrt and
 * two divisions were the loop's cost: 2.37 ns an element against 0.76 here
 * (AVX-512, 1.8M values, Xeon model 207), about 9% of the seq2seq program's
 * step. Every operation is IEEE (+, *, /, sqrt) and this file builds with
 * -ffp-contract=off, so every clone gives the same bits. sqrt vectorizes
 * only because the file builds with -fno-math-errno (optim/meson.build). */
TG_SIMD_CLONES static int adam_loop(tg_real *p, const tg_real *grad, tg_real *m, tg_real *v,
                                    size_t n, adam_coef c)
{
    int bad = 0;
    for (size_t i = 0; i < n; i++) {
        tg_real pi = p[i];
        tg_real g = grad[i] + c.l2 * pi;
        tg_real mi = c.b1 * m[i] + c.one_b1 * g;
        tg_real vi = c.b2 * v[i] + c.one_b2 * g * g;
        m[i] = mi;
        v[i] = vi;
        tg_real pn = (pi - c.decay * pi) - c.step_size * (mi / (SQRT(vi) / c.sqrt_bc2 + c.eps));
        p[i] = pn;
        bad |= NOT_FINITE(pn);
    }
    return bad;
}

/* The constants of step t = o->steps. */
static adam_coef adam_coefs(const tg_optim *o)
{
    const double lr = o->cfg.lr, t = (double)o->steps;
    const int decoupled = o->cfg.kind == TG_OPTIM_ADAMW;
    return (adam_coef){
        .b1 = (tg_real)o->cfg.beta1,
        .one_b1 = (tg_real)(1.0 - o->cfg.beta1),
        .b2 = (tg_real)o->cfg.beta2,
        .one_b2 = (tg_real)(1.0 - o->cfg.beta2),
        .eps = (tg_real)o->cfg.eps,
        .step_size = (tg_real)(lr / (1.0 - pow(o->cfg.beta1, t))),
        .sqrt_bc2 = (tg_real)sqrt(1.0 - pow(o->cfg.beta2, t)),
        .l2 = (tg_real)(decoupled ? 0.0 : o->cfg.weight_decay),
        .decay = (tg_real)(decoupled ? lr * o->cfg.weight_decay : 0.0),
    };
}

static int update_range(const tg_optim *o, const adam_coef *c, tg_real *p, const tg_real *grad,
                        size_t lo, size_t hi)
{
    if (o->cfg.kind == TG_OPTIM_SGD) return sgd_range(o, p, grad, lo, hi);
    return adam_loop(p + lo, grad + lo, o->state[0] + lo, o->state[1] + lo, hi - lo, *c);
}

void tg_optim_set_threads(tg_optim *o, int threads) { o->threads = threads < 1 ? 1 : threads; }

/* Below this many values one thread does the update: an OpenMP team costs
 * more than it saves. */
#define PAR_MIN ((size_t)1 << 16)

void tg_optim_step_flat(tg_optim *o, tg_real *data, const tg_real *grad, size_t n)
{
    TG_CHECK(n == o->numel, TG_HERE, "optim_step",
             "%zu values given, the optimizer was made for %zu", n, o->numel);
    o->steps++;
    adam_coef c = o->cfg.kind == TG_OPTIM_SGD ? (adam_coef){0} : adam_coefs(o);
    int bad = 0;
    if (o->threads > 1 && n >= PAR_MIN) {
        /* each element is updated alone: any split gives the same bits */
#pragma omp parallel num_threads(o->threads) reduction(| : bad)
        {
            size_t id = (size_t)omp_get_thread_num(), nth = (size_t)omp_get_num_threads();
            bad |= update_range(o, &c, data, grad, n * id / nth, n * (id + 1) / nth);
        }
    } else {
        bad = update_range(o, &c, data, grad, 0, n);
    }
    o->values_finite = !bad;
}

int tg_optim_values_finite(const tg_optim *o) { return o->values_finite; }

void tg_optim_step(tg_optim *o, tg_params *p)
{
    tg_optim_step_flat(o, tg_params_data(p), tg_params_grad(p), tg_params_numel(p));
}

void tg_optim_set_lr(tg_optim *o, double lr)
{
    TG_CHECK(lr >= 0 && isfinite(lr), TG_HERE, "optim_set_lr", "lr %g must be finite and >= 0", lr);
    o->cfg.lr = lr;
}
double tg_optim_lr(const tg_optim *o) { return o->cfg.lr; }
const tg_optim_config *tg_optim_get_config(const tg_optim *o) { return &o->cfg; }
size_t tg_optim_numel(const tg_optim *o) { return o->numel; }
size_t tg_optim_state_count(const tg_optim *o) { return o->n_state; }
uint64_t tg_optim_steps(const tg_optim *o) { return o->steps; }
void tg_optim_set_steps(tg_optim *o, uint64_t steps) { o->steps = steps; }

int tg_optim_state_nonneg(const tg_optim *o, size_t i)
{
    return i < o->n_state && o->state_nonneg[i];
}

const char *tg_optim_state_name(const tg_optim *o, size_t i)
{
    return i < o->n_state ? o->state_name[i] : NULL;
}

tg_real *tg_optim_state_data(tg_optim *o, size_t i)
{
    return i < o->n_state ? o->state[i] : NULL;
}
