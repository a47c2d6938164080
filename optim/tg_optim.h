/* tapegrad optimizers: SGD (momentum, Nesterov), Adam, AdamW, gradient
 * clipping by global norm, non-finite checks and learning-rate schedules.
 *
 * Everything runs over flat arrays (tg_params_data / tg_params_grad, numel
 * values each); the tg_params forms are thin wrappers. An optimizer owns its
 * state (moments and the step counter), allocated once at creation, so a step
 * never allocates. SGD's per-element arithmetic is done in double and rounded
 * once to tg_real; Adam's in tg_real, each operation rounded, as PyTorch's
 * is (in double its square root and divisions cost 3x). Either way the
 * update's bits do not depend on the CPU or the compiler's contraction.
 *
 * A training step:
 *     double norm = tg_clip_grad_norm(params, 5.0);
 *     if (!isfinite(norm)) -> stop (or skip the step) and say which step
 *     tg_optim_set_lr(opt, tg_lr_at(&sched, tg_optim_steps(opt)));
 *     tg_optim_step(opt, params);
 */
#ifndef TG_OPTIM_H
#define TG_OPTIM_H

#include <stddef.h>
#include <stdint.h>

#include "tapegrad.h"
#include "tg_checkpoint.h"

#ifdef __cplusplus
extern "C" {
#endif

/* ------------------------------------------------------------------ optimizers */

typedef enum tg_optim_kind {
    TG_OPTIM_SGD,   /* plain or momentum (Nesterov optional); L2 weight decay */
    TG_OPTIM_ADAM,  /* bias-corrected Adam; L2 weight decay added to the gradient */
    TG_OPTIM_ADAMW, /* Adam with decoupled weight decay: p -= lr*wd*p before the update */
} tg_optim_kind;

/* Hyper-parameters, PyTorch's meaning and update order:
 *   SGD:   g = grad + wd*p;  b = momentum*b + g;  g = nesterov ? g + momentum*b : b;
 *          p -= lr*g          (momentum == 0: p -= lr*g, no state)
 *   Adam:  g = grad + wd*p;  m = b1*m + (1-b1)*g;  v = b2*v + ((1-b2)*g)*g;
 *          p -= (lr/(1-b1^t)) * (m / (sqrt(v)/sqrt(1-b2^t) + eps))     (t = 1, 2, ...)
 *          in tg_real; the constants in parentheses computed in double
 *   AdamW: p -= (lr*wd)*p, then Adam with g = grad. */
typedef struct tg_optim_config {
    tg_optim_kind kind;
    double lr;
    double weight_decay;
    double momentum; /* SGD */
    int nesterov;    /* SGD; needs momentum > 0 */
    double beta1, beta2, eps; /* Adam, AdamW */
} tg_optim_config;

/* Defaults: lr 1e-3 (Adam/AdamW) or 0.1 (SGD), betas 0.9/0.999, eps 1e-8,
 * weight decay 0 (AdamW: 0.01, as in PyTorch), momentum 0, no Nesterov. */
tg_optim_config tg_optim_defaults(tg_optim_kind kind);

/* "sgd", "adam", "adamw" <-> kind. Parse returns 0 on success, -1 for an
 * unknown name (*out untouched). */
const char *tg_optim_kind_name(tg_optim_kind kind);
int tg_optim_kind_parse(const char *name, tg_optim_kind *out);

/* Checks a configuration (lr >= 0, 0 <= momentum, 0 <= beta < 1, eps > 0,
 * weight_decay >= 0, nesterov only with momentum). Returns 0, or -1 with a
 * message naming the field in err. */
int tg_optim_config_check(const tg_optim_config *cfg, char *err, size_t errlen);

typedef struct tg_optim tg_optim;

/* An optimizer for numel parameters: state zero-filled, step count 0.
 * NULL (and a message in err) on a bad config or out of memory. */
tg_optim *tg_optim_new(const tg_optim_config *cfg, size_t numel, char *err, size_t errlen);
void tg_optim_free(tg_optim *o);

/* One update of data[0..n) from grad[0..n); n must be the optimizer's numel
 * (an always-on misuse check). Increments the step count first, so the first
 * update runs with t = 1. */
void tg_optim_step_flat(tg_optim *o, tg_real *data, const tg_real *grad, size_t n);
void tg_optim_step(tg_optim *o, tg_params *p);
/* 1 when every value the last update wrote is finite (found while writing
 * them, no pass of its own), 0 when one is not or before any update. */
int tg_optim_values_finite(const tg_optim *o);
/* Threads for the update (default 1): elements are updated independently,
 * so the bits do not depend on it; below 65536 values one thread does it.
 * Call it from outside any parallel region (the update opens its own). */
void tg_optim_set_threads(tg_optim *o, int threads);

/* The learning rate of the next step (set it from a schedule each step). */
void tg_optim_set_lr(tg_optim *o, double lr);
double tg_optim_lr(const tg_optim *o);
const tg_optim_config *tg_optim_get_config(const tg_optim *o);

/* State, for checkpoints. Arrays are numel long each: SGD with momentum has
 * one ("optim.momentum"), Adam/AdamW two ("optim.m", "optim.v"), plain SGD
 * none. Writing into them (resume) is allowed. */
size_t tg_optim_numel(const tg_optim *o);
size_t tg_optim_state_count(const tg_optim *o);
const char *tg_optim_state_name(const tg_optim *o, size_t i);
tg_real *tg_optim_state_data(tg_optim *o, size_t i);
/* 1 when state i can never hold a negative value (Adam's "optim.v"). */
int tg_optim_state_nonneg(const tg_optim *o, size_t i);
uint64_t tg_optim_steps(const tg_optim *o); /* updates done so far */
void tg_optim_set_steps(tg_optim *o, uint64_t steps);

/* ------------------------------------------------------------------ checkpoints */

/* tg_checkpoint_save (tg_checkpoint.h) adding the optimizer's state arrays
 * (tg_optim_state_name) as extras and "optim.kind", "optim.steps" to the
 * metadata. opt may be NULL. */
int tg_checkpoint_save_training(const char *path, const tg_params *p, tg_optim *opt,
                                const tg_ckpt_meta *meta, size_t n_meta, char *err,
                                size_t errlen);

/* Restores what tg_checkpoint_save_training stored: state arrays and step
 * count, after checking the optimizer kind, the sizes and the values (none
 * negative where tg_optim_state_nonneg, fewer than 2^53 steps; the loader
 * refuses NaN and infinities): all or nothing for what the file holds. A
 * read that fails half-way (the file written over in place or cut short
 * since the open, an I/O error: tg_checkpoint_load_params) leaves the state
 * partly loaded; the error says so and callers drop the optimizer. */
int tg_checkpoint_load_optim(const tg_checkpoint *c, tg_optim *opt, char *err, size_t errlen);

/* ------------------------------------------------------------------ gradients */

/* sqrt(sum g[i]^2) in double, in tg_sum_squares's fixed order (graph/
 * tapegrad.h): the same bits for the same gradient, on any thread count. */
double tg_grad_norm_flat(const tg_real *g, size_t n);
double tg_grad_norm(tg_params *p);

/* Scales g so that its global norm is max_norm when it is larger, and
 * returns the norm before clipping. A non-finite norm leaves g untouched
 * (the caller must stop or skip the step); max_norm <= 0 only measures. */
double tg_clip_grad_norm_flat(tg_real *g, size_t n, double max_norm);
double tg_clip_grad_norm(tg_params *p, double max_norm);
/* The same with the norm already measured (tg_grad_norm of these
 * gradients): a caller that needs the norm before deciding to clip (a
 * finite norm also says every gradient is finite) passes over them once. */
void tg_clip_grad_to(tg_params *p, double norm, double max_norm);

/* Index of the first NaN or infinity in x[0..n), or n when all are finite. */
size_t tg_first_nonfinite(const tg_real *x, size_t n);
/* The name of the first parameter whose gradient holds a NaN or infinity
 * (and the element's index inside it in *index), or NULL when all are
 * finite: for a message like "step 812: gradient of 'lstm0.w_hh'[37] is nan". */
const char *tg_params_nonfinite_grad(tg_params *p, size_t *index);

/* ------------------------------------------------------------------ schedules */

typedef enum tg_lr_kind {
    TG_LR_CONSTANT, /* base */
    TG_LR_STEP,     /* base * gamma^floor(s / step_size) */
    TG_LR_COSINE,   /* min + (base-min) * (1 + cos(pi * min(s, decay_steps) / decay_steps)) / 2 */
} tg_lr_kind;

/* Every kind may start with a linear warm-up of warmup_steps steps; after it
 * the schedule runs on s = step - warmup_steps. */
typedef struct tg_lr_schedule {
    tg_lr_kind kind;
    double base_lr;
    uint64_t warmup_steps;
    uint64_t step_size; /* STEP: steps between decays (> 0) */
    double gamma;       /* STEP: factor per decay */
    uint64_t decay_steps; /* COSINE: length of the half cosine (> 0); constant min_lr after */
    double min_lr;        /* COSINE: floor */
} tg_lr_schedule;

/* Learning rate for a 0-based step index. Warm-up: base * (step+1) / warmup_steps
 * for step < warmup_steps (so it reaches base on the last warm-up step). */
double tg_lr_at(const tg_lr_schedule *s, uint64_t step);
/* Checks a schedule; 0, or -1 with a message naming the field. */
int tg_lr_check(const tg_lr_schedule *s, char *err, size_t errlen);
/* "constant", "step", "cosine" <-> kind; parse returns 0 or -1. */
const char *tg_lr_kind_name(tg_lr_kind kind);
int tg_lr_kind_parse(const char *name, tg_lr_kind *out);

#ifdef __cplusplus
}
#endif
#endif
