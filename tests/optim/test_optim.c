/* Optimizers, clipping and schedules against hand-computed numbers.
 *
 * The reference values come from a plain-Python transcription of PyTorch's
 * documented update rules (double precision), for the toy loss
 * L(p) = sum 0.5*a_i*p_i^2 + 0.1*p_i, a = (1, 2, 0.5), p0 = (1, -2, 0.5),
 * three steps. Float builds compare to 1e-5 relative, double to 1e-12. */
#include <criterion/criterion.h>
#include <float.h>
#include <math.h>
#include <signal.h>
#include <string.h>

#include "tapegrad.h"
#include "tg_optim.h"

#ifdef TG_REAL_DOUBLE
#define TOL 1e-12
#else
#define TOL 1e-5
#endif

static const double A[3] = {1.0, 2.0, 0.5};
static const double P0[3] = {1.0, -2.0, 0.5};

static void toy_grad(const tg_real *p, tg_real *g)
{
    for (int i = 0; i < 3; i++) g[i] = (tg_real)(A[i] * (double)p[i] + 0.1);
}

static void run_steps(tg_optim_config cfg, int steps, tg_real p[3])
{
    char err[200];
    tg_optim *o = tg_optim_new(&cfg, 3, err, sizeof err);
    cr_assert_not_null(o, "%s", err);
    tg_real g[3];
    for (int i = 0; i < 3; i++) p[i] = (tg_real)P0[i];
    for (int s = 0; s < steps; s++) {
        toy_grad(p, g);
        tg_optim_step_flat(o, p, g, 3);
    }
    cr_assert_eq(tg_optim_steps(o), (uint64_t)steps);
    tg_optim_free(o);
}

static void expect_close(const tg_real p[3], const double want[3], const char *what)
{
    for (int i = 0; i < 3; i++)
        cr_expect(fabs((double)p[i] - want[i]) <= TOL * fmax(1.0, fabs(want[i])),
                  "%s: p[%d] = %.17g, expected %.17g", what, i, (double)p[i], want[i]);
}

/* Settings beyond lr 0.1; 0 keeps the kind's default. */
typedef struct optim_settings {
    double momentum, weight_decay;
    int nesterov;
} optim_settings;

/* steps steps from P0 with kind and set, against the reference values. */
static void expect_steps(const char *what, tg_optim_kind kind, optim_settings set, int steps,
                         const double want[3])
{
    tg_optim_config c = tg_optim_defaults(kind);
    c.lr = 0.1;
    if (set.momentum) c.momentum = set.momentum;
    if (set.weight_decay) c.weight_decay = set.weight_decay;
    if (set.nesterov) c.nesterov = set.nesterov;
    tg_real p[3];
    run_steps(c, steps, p);
    expect_close(p, want, what);
}

static const optim_settings DEFAULTS = {0, 0, 0};

Test(optim, sgd_plain_first_step_by_hand)
{
    /* g = a*p0 + 0.1 = (1.1, -3.9, 0.35); p = p0 - 0.1*g */
    expect_steps("sgd 1 step", TG_OPTIM_SGD, DEFAULTS, 1, (const double[]){0.89, -1.61, 0.465});
}

Test(optim, sgd_plain_three_steps)
{
    expect_steps("sgd", TG_OPTIM_SGD, DEFAULTS, 3,
                 (const double[]){0.70189999999999997, -1.0483999999999998, 0.40016250000000003});
}

Test(optim, sgd_momentum_with_l2)
{
    expect_steps("momentum", TG_OPTIM_SGD, (optim_settings){.momentum = 0.9, .weight_decay = 0.01},
                 3,
                 (const double[]){0.42997048900000001, -0.16324440799999984, 0.30944306449999998});
}

Test(optim, sgd_nesterov)
{
    expect_steps("nesterov", TG_OPTIM_SGD, (optim_settings){.momentum = 0.9, .nesterov = 1}, 3,
                 (const double[]){0.26005309999999987, 0.16128640000000005, 0.24202383749999995});
}

Test(optim, adam_first_step_moves_lr_against_sign)
{
    /* With bias correction the first Adam step is lr * g/(|g| + eps): about lr. */
    expect_steps("adam 1 step", TG_OPTIM_ADAM, DEFAULTS, 1,
                 (const double[]){0.90000000090909094, -1.9000000002564104, 0.40000000285714277});
}

Test(optim, adam_three_steps)
{
    expect_steps("adam", TG_OPTIM_ADAM, DEFAULTS, 3,
                 (const double[]){0.70138244621908996, -1.7006435196895033, 0.20274348869826719});
}

Test(optim, adam_l2_weight_decay)
{
    expect_steps("adam l2", TG_OPTIM_ADAM, (optim_settings){.weight_decay = 0.1}, 3,
                 (const double[]){0.70139891396860055, -1.7006425326355765, 0.20297050038164571});
}

Test(optim, adamw_decoupled_weight_decay)
{
    expect_steps("adamw", TG_OPTIM_ADAMW, (optim_settings){.weight_decay = 0.1}, 3,
                 (const double[]){0.67486297187816824, -1.6443947959749945, 0.19108526458522485});
}

Test(optim, state_arrays_and_step_count)
{
    char err[200];
    tg_optim_config c = tg_optim_defaults(TG_OPTIM_SGD);
    tg_optim *o = tg_optim_new(&c, 5, err, sizeof err);
    cr_assert_eq(tg_optim_state_count(o), 0, "plain SGD keeps no state");
    tg_optim_free(o);

    c.momentum = 0.5;
    o = tg_optim_new(&c, 5, err, sizeof err);
    cr_assert_eq(tg_optim_state_count(o), 1);
    cr_assert_str_eq(tg_optim_state_name(o, 0), "optim.momentum");
    tg_optim_free(o);

    c = tg_optim_defaults(TG_OPTIM_ADAMW);
    o = tg_optim_new(&c, 5, err, sizeof err);
    cr_assert_eq(tg_optim_state_count(o), 2);
    cr_assert_str_eq(tg_optim_state_name(o, 0), "optim.m");
    cr_assert_str_eq(tg_optim_state_name(o, 1), "optim.v");
    cr_assert_eq(tg_optim_numel(o), 5);
    for (int i = 0; i < 5; i++) cr_assert_eq(tg_optim_state_data(o, 1)[i], 0);
    cr_assert_null(tg_optim_state_data(o, 2));
    tg_real p[5] = {1, 2, 3, 4, 5}, g[5] = {1, -1, 1, -1, 1};
    tg_optim_step_flat(o, p, g, 5);
    cr_assert_eq(tg_optim_steps(o), 1);
    cr_assert_float_eq((double)tg_optim_state_data(o, 0)[1], -0.1, 1e-7);
    tg_optim_set_steps(o, 41);
    cr_assert_eq(tg_optim_steps(o), 41);
    tg_optim_free(o);
}

Test(optim, step_over_params_uses_flat_blocks)
{
    tg_params *ps = tg_params_new();
    tg_tensor *w = tg_param(ps, "w", 2, 2), *b = tg_param(ps, "b", 1, 2);
    for (int i = 0; i < 4; i++) w->grad[i] = 1;
    for (int i = 0; i < 2; i++) b->grad[i] = -2;
    tg_optim_config c = tg_optim_defaults(TG_OPTIM_SGD);
    c.lr = 0.5;
    tg_optim *o = tg_optim_new(&c, tg_params_numel(ps), NULL, 0);
    tg_optim_step(o, ps);
    cr_assert_eq(w->data[3], (tg_real)-0.5);
    cr_assert_eq(b->data[1], (tg_real)1.0);
    tg_optim_free(o);
    tg_params_free(ps);
}

Test(optim, step_with_wrong_size_is_misuse, .signal = SIGABRT)
{
    tg_optim_config c = tg_optim_defaults(TG_OPTIM_SGD);
    tg_optim *o = tg_optim_new(&c, 4, NULL, 0);
    tg_real p[3] = {0}, g[3] = {0};
    tg_optim_step_flat(o, p, g, 3);
}

Test(optim, config_check_names_the_field)
{
    char err[200];
    struct {
        tg_optim_kind kind;
        const char *field;
    } cases[] = {
        {TG_OPTIM_SGD, "lr"},     {TG_OPTIM_SGD, "momentum"}, {TG_OPTIM_SGD, "nesterov"},
        {TG_OPTIM_ADAM, "beta1"}, {TG_OPTIM_ADAM, "beta2"},   {TG_OPTIM_ADAM, "eps"},
        {TG_OPTIM_ADAMW, "weight_decay"},
    };
    for (size_t k = 0; k < sizeof cases / sizeof cases[0]; k++) {
        tg_optim_config c = tg_optim_defaults(cases[k].kind);
        const char *f = cases[k].field;
        if (!strcmp(f, "lr")) c.lr = -1;
        if (!strcmp(f, "momentum")) c.momentum = 1.0;
        if (!strcmp(f, "nesterov")) c.nesterov = 1;
        if (!strcmp(f, "beta1")) c.beta1 = 1.0;
        if (!strcmp(f, "beta2")) c.beta2 = -0.1;
        if (!strcmp(f, "eps")) c.eps = 0;
        if (!strcmp(f, "weight_decay")) c.weight_decay = NAN;
        err[0] = 0;
        cr_expect_eq(tg_optim_config_check(&c, err, sizeof err), -1, "%s accepted", f);
        cr_expect(strstr(err, f) != NULL, "message '%s' does not name %s", err, f);
        cr_expect_null(tg_optim_new(&c, 3, err, sizeof err));
    }
    tg_optim_config ok = tg_optim_defaults(TG_OPTIM_ADAM);
    cr_expect_eq(tg_optim_config_check(&ok, err, sizeof err), 0);
}

/* Adam's update divides in tg_real: an eps that rounds to 0 there would
 * make 0/0 of every zero gradient, so the float build refuses it; the
 * smallest one that does not round to 0 steps a zero gradient to nothing. */
Test(optim, adam_eps_must_survive_the_update_precision)
{
    char err[200] = "";
    tg_optim_config c = tg_optim_defaults(TG_OPTIM_ADAM);
    c.eps = 1e-46;
    int rc = tg_optim_config_check(&c, err, sizeof err);
    if (sizeof(tg_real) == 4) {
        cr_expect_eq(rc, -1, "eps 1e-46 accepted in float");
        cr_expect(strstr(err, "eps") && strstr(err, "rounds to 0"), "%s", err);
        c.eps = 1.5e-45;
    } else {
        cr_expect_eq(rc, 0, "%s", err);
    }
    tg_optim *o = tg_optim_new(&c, 2, err, sizeof err);
    cr_assert_not_null(o, "%s", err);
    tg_real p[2] = {1, 2}, g[2] = {0, 0};
    tg_optim_step_flat(o, p, g, 2);
    cr_expect(p[0] == 1 && p[1] == 2, "a zero gradient moved p to %g, %g", (double)p[0],
              (double)p[1]);
    cr_expect(tg_optim_values_finite(o));
    tg_optim_free(o);
}

/* The same for the rest of Adam's constants in float: an eps that becomes
 * infinity (no update at all) and a beta that rounds to 1 (a moment that
 * never decays) are refused, naming them; double takes them. */
Test(optim, adam_constants_must_survive_the_update_precision)
{
    char err[200];
    tg_optim_config c = tg_optim_defaults(TG_OPTIM_ADAM);
    c.eps = 1e300;
    int want = sizeof(tg_real) == 4 ? -1 : 0;
    cr_expect_eq(tg_optim_config_check(&c, err, sizeof err), want, "eps 1e300");
    if (want) cr_expect(strstr(err, "eps") && strstr(err, "infinity"), "%s", err);
    for (int k = 0; k < 2; k++) {
        c = tg_optim_defaults(TG_OPTIM_ADAMW);
        *(k ? &c.beta2 : &c.beta1) = 1 - 1e-9;
        err[0] = 0;
        cr_expect_eq(tg_optim_config_check(&c, err, sizeof err), want, "beta%d 1 - 1e-9", k + 1);
        if (want)
            cr_expect(strstr(err, k ? "beta2" : "beta1") && strstr(err, "below 1"), "%s", err);
    }
    c = tg_optim_defaults(TG_OPTIM_ADAM);
    c.beta2 = 0.9999999; /* rounds to 0.99999988 in float: below 1 */
    cr_expect_eq(tg_optim_config_check(&c, err, sizeof err), 0, "%s", err);
}

Test(optim, kind_names_round_trip)
{
    tg_optim_kind k = TG_OPTIM_SGD;
    cr_assert_eq(tg_optim_kind_parse("adamw", &k), 0);
    cr_assert_eq(k, TG_OPTIM_ADAMW);
    cr_assert_str_eq(tg_optim_kind_name(TG_OPTIM_ADAM), "adam");
    cr_assert_eq(tg_optim_kind_parse("rmsprop", &k), -1);
    cr_assert_eq(k, TG_OPTIM_ADAMW, "a failed parse leaves the output alone");
    tg_lr_kind l;
    cr_assert_eq(tg_lr_kind_parse("cosine", &l), 0);
    cr_assert_eq(l, TG_LR_COSINE);
    cr_assert_eq(tg_lr_kind_parse("linear", &l), -1);
}

/* ------------------------------------------------------------------ clipping */

static double norm_of(const tg_real *g, size_t n)
{
    double s = 0;
    for (size_t i = 0; i < n; i++) s += (double)g[i] * g[i];
    return sqrt(s);
}

Test(clip, clipped_norm_equals_threshold)
{
    enum { N = 1000 };
    static tg_real g[N];
    tg_rng r;
    tg_rng_seed(&r, 7);
    for (int i = 0; i < N; i++) g[i] = (tg_real)(10 * tg_rng_normal(&r));
    double before = norm_of(g, N);
    cr_assert_gt(before, 5.0);
    double ret = tg_clip_grad_norm_flat(g, N, 5.0);
    cr_assert_float_eq(ret, before, 1e-12 * before, "returns the norm before clipping");
    double after = norm_of(g, N);
    cr_assert(fabs(after - 5.0) <= 5.0 * TOL, "norm after clipping %.17g, want 5", after);
}

Test(clip, small_gradients_are_untouched)
{
    tg_real g[3] = {0.3f, -0.4f, 0}, copy[3];
    memcpy(copy, g, sizeof g);
    double n = tg_clip_grad_norm_flat(g, 3, 1.0);
    cr_assert_float_eq(n, 0.5, 1e-6);
    cr_assert(memcmp(g, copy, sizeof g) == 0);
    /* max_norm <= 0 only measures. */
    tg_real h[2] = {30, 40};
    cr_assert_float_eq(tg_clip_grad_norm_flat(h, 2, 0), 50.0, 1e-9);
    cr_assert_eq(h[0], 30);
}

Test(clip, nonfinite_norm_leaves_gradients_and_is_reported)
{
    tg_params *ps = tg_params_new();
    tg_tensor *a = tg_param(ps, "a", 2, 3), *b = tg_param(ps, "b", 1, 4);
    for (int i = 0; i < 6; i++) a->grad[i] = 100;
    cr_assert_null(tg_params_nonfinite_grad(ps, NULL));
    b->grad[2] = NAN;
    double n = tg_clip_grad_norm(ps, 1.0);
    cr_assert(isnan(n));
    cr_assert_eq(a->grad[0], 100, "non-finite norm must not scale");
    size_t idx = 99;
    cr_assert_str_eq(tg_params_nonfinite_grad(ps, &idx), "b");
    cr_assert_eq(idx, 2);
    b->grad[2] = INFINITY;
    cr_assert(isinf(tg_grad_norm(ps)));
    cr_assert_eq(tg_first_nonfinite(b->grad, 4), 2);
    cr_assert_eq(tg_first_nonfinite(a->grad, 6), 6);
    tg_params_free(ps);
}

Test(clip, params_form_clips_across_tensors)
{
    tg_params *ps = tg_params_new();
    tg_tensor *a = tg_param(ps, "a", 1, 1), *b = tg_param(ps, "b", 1, 1);
    a->grad[0] = 3;
    b->grad[0] = 4;
    cr_assert_float_eq(tg_clip_grad_norm(ps, 1.0), 5.0, 1e-9);
    cr_assert_float_eq((double)a->grad[0], 0.6, 1e-6);
    cr_assert_float_eq((double)b->grad[0], 0.8, 1e-6);
    tg_params_free(ps);
}

/* tg_clip_grad_to with the measured norm scales exactly as tg_clip_grad_norm
 * does; a norm under the threshold, a non-finite one or max_norm 0 leave the
 * gradients; a finite norm of float gradients means they all are finite
 * (what the programs' end of step relies on to skip the scan), even at
 * FLT_MAX, whose square a double holds. */
Test(clip, clip_to_a_measured_norm_is_clip_grad_norm)
{
    tg_params *ps = tg_params_new(), *qs = tg_params_new();
    tg_tensor *a = tg_param(ps, "a", 3, 5), *b = tg_param(qs, "a", 3, 5);
    for (int i = 0; i < 15; i++) a->grad[i] = b->grad[i] = (tg_real)(0.7 * i - 4.1);
    double n = tg_grad_norm(ps);
    tg_clip_grad_to(ps, n, 2.0);
    cr_assert_eq(tg_clip_grad_norm(qs, 2.0), n);
    cr_assert_eq(memcmp(a->grad, b->grad, 15 * sizeof(tg_real)), 0);
    for (int i = 0; i < 15; i++) b->grad[i] = a->grad[i];
    tg_clip_grad_to(ps, tg_grad_norm(ps), 100.0); /* under: untouched */
    tg_clip_grad_to(ps, NAN, 1.0);
    tg_clip_grad_to(ps, 50.0, 0.0);
    cr_assert_eq(memcmp(a->grad, b->grad, 15 * sizeof(tg_real)), 0);
#ifndef TG_REAL_DOUBLE
    for (int i = 0; i < 15; i++) a->grad[i] = i % 2 ? FLT_MAX : -FLT_MAX;
    cr_assert(isfinite(tg_grad_norm(ps)));
    a->grad[7] = INFINITY;
    cr_assert(!isfinite(tg_grad_norm(ps)));
#endif
    tg_params_free(ps);
    tg_params_free(qs);
}

/* ------------------------------------------------------------------ schedules */

Test(schedule, constant_and_warmup)
{
    tg_lr_schedule s = {.kind = TG_LR_CONSTANT, .base_lr = 0.5};
    cr_assert_eq(tg_lr_at(&s, 0), 0.5);
    cr_assert_eq(tg_lr_at(&s, 123456), 0.5);
    s.warmup_steps = 4;
    cr_assert_float_eq(tg_lr_at(&s, 0), 0.125, 1e-15);
    cr_assert_float_eq(tg_lr_at(&s, 2), 0.375, 1e-15);
    cr_assert_float_eq(tg_lr_at(&s, 3), 0.5, 1e-15);
    cr_assert_float_eq(tg_lr_at(&s, 4), 0.5, 1e-15);
}

Test(schedule, step_decay)
{
    tg_lr_schedule s = {.kind = TG_LR_STEP, .base_lr = 1.0, .step_size = 10, .gamma = 0.5};
    cr_assert_eq(tg_lr_check(&s, NULL, 0), 0);
    cr_assert_float_eq(tg_lr_at(&s, 0), 1.0, 1e-15);
    cr_assert_float_eq(tg_lr_at(&s, 9), 1.0, 1e-15);
    cr_assert_float_eq(tg_lr_at(&s, 10), 0.5, 1e-15);
    cr_assert_float_eq(tg_lr_at(&s, 25), 0.25, 1e-15);
    s.warmup_steps = 5; /* decay counts from the end of warm-up */
    cr_assert_float_eq(tg_lr_at(&s, 0), 0.2, 1e-15);
    cr_assert_float_eq(tg_lr_at(&s, 14), 1.0, 1e-15);
    cr_assert_float_eq(tg_lr_at(&s, 15), 0.5, 1e-15);
}

Test(schedule, cosine_decay)
{
    tg_lr_schedule s = {.kind = TG_LR_COSINE, .base_lr = 1.0, .decay_steps = 100, .min_lr = 0.1};
    cr_assert_eq(tg_lr_check(&s, NULL, 0), 0);
    cr_assert_float_eq(tg_lr_at(&s, 0), 1.0, 1e-15);
    /* 0.1 + 0.9 * (1 + cos(pi/4)) / 2 */
    cr_assert_float_eq(tg_lr_at(&s, 25), 0.86819805153394639, 1e-14);
    cr_assert_float_eq(tg_lr_at(&s, 50), 0.55, 1e-14);
    cr_assert_float_eq(tg_lr_at(&s, 100), 0.1, 1e-15);
    cr_assert_float_eq(tg_lr_at(&s, 5000), 0.1, 1e-15);
    s.warmup_steps = 10;
    cr_assert_float_eq(tg_lr_at(&s, 4), 0.5, 1e-15);
    cr_assert_float_eq(tg_lr_at(&s, 10), 1.0, 1e-15);
    cr_assert_float_eq(tg_lr_at(&s, 60), 0.55, 1e-14);
}

Test(schedule, check_names_the_field)
{
    char err[200];
    tg_lr_schedule s = {.kind = TG_LR_STEP, .base_lr = 1.0, .gamma = 0.5};
    cr_assert_eq(tg_lr_check(&s, err, sizeof err), -1);
    cr_assert(strstr(err, "step_size"), "%s", err);
    s = (tg_lr_schedule){.kind = TG_LR_COSINE, .base_lr = 1.0, .decay_steps = 10, .min_lr = 2};
    cr_assert_eq(tg_lr_check(&s, err, sizeof err), -1);
    cr_assert(strstr(err, "min_lr"), "%s", err);
    s = (tg_lr_schedule){.kind = TG_LR_CONSTANT, .base_lr = -1};
    cr_assert_eq(tg_lr_check(&s, err, sizeof err), -1);
    cr_assert(strstr(err, "base_lr"), "%s", err);
}

/* The vectorized scan: blocks of 4096 with lanes of 16; a non-finite value at
 * a lane, block or tail boundary, or two of them, is found at its first index. */
Test(clip, first_nonfinite_across_blocks_and_tails)
{
    enum { N = 3 * 4096 + 37 };
    static tg_real x[N];
    for (int i = 0; i < N; i++) x[i] = (tg_real)(i % 7) - 3;
    cr_assert_eq(tg_first_nonfinite(x, N), N);
    const size_t at[] = {0, 15, 16, 4095, 4096, 8191, 3 * 4096, N - 1};
    const tg_real bad[] = {NAN, INFINITY, -INFINITY};
    for (size_t k = 0; k < sizeof at / sizeof at[0]; k++)
        for (int b = 0; b < 3; b++) {
            tg_real keep = x[at[k]];
            x[at[k]] = bad[b];
            cr_assert_eq(tg_first_nonfinite(x, N), at[k], "value %d at %zu", b, at[k]);
            cr_assert_eq(tg_first_nonfinite(x, at[k]), at[k], "stops before it");
            if (at[k] < N - 1) { /* a later one does not hide it */
                x[N - 1] = NAN;
                cr_assert_eq(tg_first_nonfinite(x, N), at[k]);
                x[N - 1] = 0;
            }
            x[at[k]] = keep;
        }
    /* the largest finite values are finite (x * 0 is 0 for them) */
#ifdef TG_REAL_DOUBLE
    x[5] = DBL_MAX;
#else
    x[5] = FLT_MAX;
#endif
    x[6] = -x[5];
    cr_assert_eq(tg_first_nonfinite(x, N), N);
}

/* Interleaved partial sums: within rounding of one running double sum, for
 * every length around the lane count. */
Test(clip, norm_matches_running_sum_for_every_tail)
{
    static tg_real g[200];
    tg_rng r;
    tg_rng_seed(&r, 11);
    for (int i = 0; i < 200; i++) g[i] = (tg_real)tg_rng_normal(&r);
    for (size_t n = 0; n <= 200; n++) {
        double want = norm_of(g, n), got = tg_grad_norm_flat(g, n);
        cr_assert(fabs(got - want) <= 1e-14 * (want + 1e-300), "n=%zu: %.17g vs %.17g", n, got,
                  want);
    }
}

/* tg_optim_values_finite: found while the update writes (no pass of its
 * own), for every update loop, on one thread and split over two (the
 * non-finite value in the second half): a NaN from a NaN gradient, and an
 * infinity from an update that overflows (no NaN anywhere). */
#ifdef TG_REAL_DOUBLE
#define BIG DBL_MAX
#else
#define BIG FLT_MAX
#endif

static void expect_values_verdict(tg_optim_config c, int threads, int overflow)
{
    enum { N = 70000 }; /* over the update's parallel threshold */
    static tg_real p[N], g[N];
    char err[200];
    tg_optim *o = tg_optim_new(&c, N, err, sizeof err);
    cr_assert_not_null(o, "%s", err);
    tg_optim_set_threads(o, threads);
    cr_expect_eq(tg_optim_values_finite(o), 0, "before any update");
    for (int i = 0; i < N; i++) p[i] = (tg_real)1, g[i] = (tg_real)0.5;
    tg_optim_step_flat(o, p, g, N);
    cr_expect_eq(tg_optim_values_finite(o), 1, "%s, %d thread(s): finite values",
                 tg_optim_kind_name(c.kind), threads);
    if (overflow) { /* from -BIG, a step of lr = BIG 1e-6 (over BIG's ulp) overflows */
        p[N - 3] = (tg_real)-BIG;
        tg_optim_set_lr(o, (double)BIG * 1e-6);
    } else {
        g[N - 3] = (tg_real)NAN;
    }
    tg_optim_step_flat(o, p, g, N);
    cr_expect(overflow ? isinf(p[N - 3]) : isnan(p[N - 3]), "the case is not set up: %g",
              (double)p[N - 3]);
    cr_expect_eq(tg_optim_values_finite(o), 0, "%s, %d thread(s): %s missed",
                 tg_optim_kind_name(c.kind), threads, overflow ? "an infinity" : "a NaN");
    tg_optim_free(o);
}

Test(optim, values_finite_is_found_by_every_update)
{
    for (int threads = 1; threads <= 2; threads++)
        for (int overflow = 0; overflow <= 1; overflow++) {
            tg_optim_config c = tg_optim_defaults(TG_OPTIM_SGD);
            expect_values_verdict(c, threads, overflow);
            c.momentum = 0.9;
            expect_values_verdict(c, threads, overflow);
            c.nesterov = 1;
            expect_values_verdict(c, threads, overflow);
            expect_values_verdict(tg_optim_defaults(TG_OPTIM_ADAM), threads, overflow);
            expect_values_verdict(tg_optim_defaults(TG_OPTIM_ADAMW), threads, overflow);
        }
}
