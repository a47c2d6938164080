/* The optimizer's update loops run as AVX-512, AVX2 or baseline code picked
 * at load time (optim/optim.c). Whichever runs, the bits must be those of the
 * documented per-element formulas (SGD's evaluated in double and rounded
 * once; Adam's in tg_real, each operation rounded, in PyTorch's order):
 * resume is bitwise exact only if the update does not depend on the CPU.
 * Each case runs three steps over an odd-sized, unaligned block (vector
 * bodies and tails) of values that include signed zeros, huge values and
 * infinities, and compares parameters and state with memcmp against the
 * scalar formulas written out here. */
#include <criterion/criterion.h>
#include <math.h>
#include <string.h>

#include "tapegrad.h"
#include "tg_optim.h"

#ifdef TG_REAL_DOUBLE
#define SQRT sqrt
#else
#define SQRT sqrtf
#endif

#define N 1037
#define STEPS 3

static double uniform(uint64_t *s)
{
    *s = *s * 6364136223846793005ull + 1442695040888963407ull;
    return (double)(*s >> 11) / 9007199254740992.0 * 2.0 - 1.0;
}

static void fill(tg_real *p, tg_real *g, int step)
{
    uint64_t s = 12345u + (uint64_t)step * 977u;
    for (int i = 0; i < N; i++) {
        p[i] = step == 0 ? (tg_real)uniform(&s) : p[i];
        g[i] = (tg_real)(uniform(&s) * 3.0);
    }
    if (step == 0) {
        p[5] = (tg_real)-0.0;
        p[6] = 0;
        p[7] = (tg_real)1e30;
        p[8] = (tg_real)-INFINITY;
    }
    g[9] = (tg_real)-0.0;
    g[10] = (tg_real)INFINITY;
    g[11] = (tg_real)1e30;
}

/* The update rules of tg_optim.h, one element at a time. */
static void reference_step(const tg_optim_config *c, uint64_t t, tg_real *p, const tg_real *grad,
                           tg_real *s0, tg_real *s1)
{
    for (int i = 0; i < N; i++) {
        double pi = (double)p[i];
        if (c->kind == TG_OPTIM_SGD) {
            double g = (double)grad[i] + c->weight_decay * pi;
            if (c->momentum > 0) {
                double b = c->momentum * (double)s0[i] + g;
                s0[i] = (tg_real)b;
                g = c->nesterov ? g + c->momentum * b : b;
            }
            p[i] = (tg_real)(pi - c->lr * g);
            continue;
        }
        /* Adam: its constants rounded once to tg_real, then every
         * operation in tg_real, one per statement (no contraction) */
        int decoupled = c->kind == TG_OPTIM_ADAMW;
        tg_real l2 = (tg_real)(decoupled ? 0.0 : c->weight_decay);
        tg_real b1 = (tg_real)c->beta1, one_b1 = (tg_real)(1.0 - c->beta1);
        tg_real b2 = (tg_real)c->beta2, one_b2 = (tg_real)(1.0 - c->beta2);
        tg_real step_size = (tg_real)(c->lr / (1.0 - pow(c->beta1, (double)t)));
        tg_real sqrt_bc2 = (tg_real)sqrt(1.0 - pow(c->beta2, (double)t));
        tg_real decay = (tg_real)(decoupled ? c->lr * c->weight_decay : 0.0);
        tg_real pr = p[i], wd_p = l2 * pr, g = grad[i] + wd_p;
        tg_real m_old = b1 * s0[i], m_new = one_b1 * g, m = m_old + m_new;
        tg_real v_old = b2 * s1[i], v_g = one_b2 * g, v_gg = v_g * g, v = v_old + v_gg;
        s0[i] = m;
        s1[i] = v;
        tg_real root = SQRT(v), scaled = root / sqrt_bc2, denom = scaled + (tg_real)c->eps;
        tg_real ratio = m / denom, step = step_size * ratio;
        tg_real shrunk = decay * pr, kept = pr - shrunk;
        p[i] = kept - step;
    }
}

static void check_bits(tg_optim_config c, const char *what)
{
    /* one element of slack in front: the block starts off a vector boundary */
    static tg_real p[N + 1], g[N + 1], want_p[N], want_s0[N], want_s1[N];
    tg_optim *o = tg_optim_new(&c, N, NULL, 0);
    cr_assert_not_null(o);
    memset(want_s0, 0, sizeof want_s0);
    memset(want_s1, 0, sizeof want_s1);
    for (int step = 0; step < STEPS; step++) {
        fill(p + 1, g + 1, step);
        if (step == 0) memcpy(want_p, p + 1, sizeof want_p);
        tg_optim_step_flat(o, p + 1, g + 1, N);
        reference_step(&c, (uint64_t)step + 1, want_p, g + 1, want_s0, want_s1);
        cr_assert(memcmp(p + 1, want_p, sizeof want_p) == 0, "%s: parameters differ at step %d",
                  what, step + 1);
        if (tg_optim_state_count(o) > 0)
            cr_assert(memcmp(tg_optim_state_data(o, 0), want_s0, sizeof want_s0) == 0,
                      "%s: first state differs at step %d", what, step + 1);
        if (tg_optim_state_count(o) > 1)
            cr_assert(memcmp(tg_optim_state_data(o, 1), want_s1, sizeof want_s1) == 0,
                      "%s: second state differs at step %d", what, step + 1);
    }
    tg_optim_free(o);
}

Test(optim_bits, sgd_plain_with_weight_decay)
{
    tg_optim_config c = tg_optim_defaults(TG_OPTIM_SGD);
    c.lr = 0.37;
    c.weight_decay = 0.011;
    check_bits(c, "sgd");
    c.weight_decay = 0;
    check_bits(c, "sgd, no weight decay");
}

Test(optim_bits, sgd_momentum_and_nesterov)
{
    tg_optim_config c = tg_optim_defaults(TG_OPTIM_SGD);
    c.lr = 0.05;
    c.momentum = 0.9;
    c.weight_decay = 0.003;
    check_bits(c, "momentum");
    c.nesterov = 1;
    check_bits(c, "nesterov");
}

Test(optim_bits, adam_and_adamw)
{
    tg_optim_config c = tg_optim_defaults(TG_OPTIM_ADAM);
    c.weight_decay = 0.02;
    check_bits(c, "adam");
    c = tg_optim_defaults(TG_OPTIM_ADAMW);
    check_bits(c, "adamw");
}

/* tg_optim_set_threads splits the update into ranges: every optimizer over
 * more values than the parallel threshold (and an odd count, so the ranges
 * do not fall on vector boundaries) gives the same parameters and state on
 * 1, 2 and 3 threads. */
#define BIG 200003

static void run_threads(tg_optim_config c, int threads, tg_real *p, tg_real *g, tg_real *s0,
                        tg_real *s1)
{
    tg_optim *o = tg_optim_new(&c, BIG, NULL, 0);
    cr_assert_not_null(o);
    tg_optim_set_threads(o, threads);
    uint64_t seed = 99;
    for (int i = 0; i < BIG; i++) p[i] = (tg_real)uniform(&seed);
    for (int step = 0; step < STEPS; step++) {
        for (int i = 0; i < BIG; i++) g[i] = (tg_real)(uniform(&seed) * 2.0);
        tg_optim_step_flat(o, p, g, BIG);
    }
    size_t ns = tg_optim_state_count(o);
    memcpy(s0, ns > 0 ? tg_optim_state_data(o, 0) : p, BIG * sizeof *s0);
    memcpy(s1, ns > 1 ? tg_optim_state_data(o, 1) : p, BIG * sizeof *s1);
    tg_optim_free(o);
}

Test(optim_bits, thread_count_changes_no_bit)
{
    static tg_real p[3][BIG], s0[3][BIG], s1[3][BIG], g[BIG];
    tg_optim_config cases[4] = {tg_optim_defaults(TG_OPTIM_SGD), tg_optim_defaults(TG_OPTIM_SGD),
                                tg_optim_defaults(TG_OPTIM_ADAM),
                                tg_optim_defaults(TG_OPTIM_ADAMW)};
    cases[1].momentum = 0.9;
    cases[2].weight_decay = 0.01;
    for (int k = 0; k < 4; k++) {
        for (int t = 0; t < 3; t++) run_threads(cases[k], t + 1, p[t], g, s0[t], s1[t]);
        for (int t = 1; t < 3; t++) {
            cr_assert(memcmp(p[0], p[t], sizeof p[0]) == 0, "case %d: parameters differ on %d "
                      "threads", k, t + 1);
            cr_assert(memcmp(s0[0], s0[t], sizeof s0[0]) == 0 &&
                          memcmp(s1[0], s1[t], sizeof s1[0]) == 0,
                      "case %d: state differs on %d threads", k, t + 1);
        }
    }
}
