/* Learning-rate schedules: constant, step decay and half-cosine decay, each
 * with an optional linear warm-up. A pure function of the step index, so a
 * resumed run gets the same rate from the stored step count. */
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "tg_optim.h"

static const double pi = 3.14159265358979323846;

double tg_lr_at(const tg_lr_schedule *s, uint64_t step)
{
    if (step < s->warmup_steps) return s->base_lr * (double)(step + 1) / (double)s->warmup_steps;
    uint64_t k = step - s->warmup_steps;
    switch (s->kind) {
    case TG_LR_STEP:
        if (s->step_size == 0) return s->base_lr; /* rejected by tg_lr_check */
        return s->base_lr * pow(s->gamma, (double)(k / s->step_size));
    case TG_LR_COSINE: {
        double progress = k >= s->decay_steps ? 1.0 : (double)k / (double)s->decay_steps;
        return s->min_lr + (s->base_lr - s->min_lr) * 0.5 * (1.0 + cos(pi * progress));
    }
    case TG_LR_CONSTANT:
    default:
        return s->base_lr;
    }
}

#define FAIL(...)                                                                      \
    do {                                                                               \
        if (err && errlen) snprintf(err, errlen, __VA_ARGS__);                         \
        return -1;                                                                     \
    } while (0)

int tg_lr_check(const tg_lr_schedule *s, char *err, size_t errlen)
{
    if ((unsigned)s->kind > TG_LR_COSINE) FAIL("schedule kind %d is unknown", (int)s->kind);
    if (!(s->base_lr >= 0 && isfinite(s->base_lr)))
        FAIL("base_lr %g must be finite and >= 0", s->base_lr);
    if (s->kind == TG_LR_STEP) {
        if (s->step_size == 0) FAIL("step_size must be > 0 for the step schedule");
        if (!(s->gamma > 0 && s->gamma <= 1)) FAIL("gamma %g must be in (0, 1]", s->gamma);
    }
    if (s->kind == TG_LR_COSINE) {
        if (s->decay_steps == 0) FAIL("decay_steps must be > 0 for the cosine schedule");
        if (!(s->min_lr >= 0 && s->min_lr <= s->base_lr))
            FAIL("min_lr %g must be in [0, base_lr=%g]", s->min_lr, s->base_lr);
    }
    return 0;
}

static const char *const lr_names[] = {"constant", "step", "cosine"};

const char *tg_lr_kind_name(tg_lr_kind kind)
{
    return (unsigned)kind < 3 ? lr_names[kind] : "unknown";
}

int tg_lr_kind_parse(const char *name, tg_lr_kind *out)
{
    for (unsigned k = 0; k < 3; k++)
        if (name && strcmp(name, lr_names[k]) == 0) {
            *out = (tg_lr_kind)k;
            return 0;
        }
    return -1;
}
