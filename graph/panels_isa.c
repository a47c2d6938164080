/* Which weight-panel kernel runs (tg_panels.h): chosen once per process
 * from the CPU's features, never from its name, or from TG_ISA.
 *
 * The choice is a function-static resolved at the first call: every product
 * of the process then runs the same kernel, and the kernels give the same
 * bits anyway, so a race of two first calls stores the same value. */
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "tg_panels.h"

int tg_panels_isa_runs(tg_panel_isa isa)
{
#if TG_PANELS_X86
    switch (isa) {
    case TG_PANEL_AVX512:
        return __builtin_cpu_supports("avx512f");
    case TG_PANEL_AVX2:
        return __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma");
    case TG_PANEL_NONE:
        return 1;
    }
    return 0;
#else
    return isa == TG_PANEL_NONE;
#endif
}

const char *tg_panels_isa_name(tg_panel_isa isa)
{
    return isa == TG_PANEL_AVX512 ? "avx512" : isa == TG_PANEL_AVX2 ? "avx2" : "none";
}

/* The widest kernel this build and CPU run. */
static tg_panel_isa widest(void)
{
    if (tg_panels_isa_runs(TG_PANEL_AVX512)) return TG_PANEL_AVX512;
    if (tg_panels_isa_runs(TG_PANEL_AVX2)) return TG_PANEL_AVX2;
    return TG_PANEL_NONE;
}

/* TG_ISA's choice: 0 with *isa, or -1 with the reason in err (an unknown
 * name; a kernel this machine cannot run is refused, not replaced: a
 * measurement labelled avx512 must have run it). */
static int isa_of_environment(tg_panel_isa *isa, char *err, size_t errlen)
{
    const char *v = getenv("TG_ISA");
    if (!v || !*v || !strcmp(v, "auto")) {
        *isa = widest();
        return 0;
    }
    if (!strcmp(v, "blas")) {
        *isa = TG_PANEL_NONE;
        return 0;
    }
    if (strcmp(v, "avx512") && strcmp(v, "avx2")) {
        snprintf(err, errlen, "'%.40s' is not one of auto, avx512, avx2, blas", v);
        return -1;
    }
    *isa = !strcmp(v, "avx512") ? TG_PANEL_AVX512 : TG_PANEL_AVX2;
    if (!tg_panels_isa_runs(*isa)) {
        snprintf(err, errlen, "this %s cannot run the %s panel kernel",
                 TG_PANELS_X86 ? "CPU" : "build", v);
        return -1;
    }
    return 0;
}

static tg_panel_isa from_environment(void)
{
    tg_panel_isa isa;
    char err[128];
    int bad = isa_of_environment(&isa, err, sizeof err);
    TG_CHECK(!bad, TG_HERE, "TG_ISA", "%s", err);
    return isa;
}

int tg_panel_kernel_check(char *err, size_t errlen)
{
    tg_panel_isa isa;
    return isa_of_environment(&isa, err, errlen);
}

tg_panel_isa tg_panels_isa(void)
{
    static atomic_int chosen = -1; /* -1: not read yet */
    int isa = atomic_load_explicit(&chosen, memory_order_relaxed);
    if (isa < 0) {
        isa = (int)from_environment();
        atomic_store_explicit(&chosen, isa, memory_order_relaxed);
    }
    return (tg_panel_isa)isa;
}

const char *tg_panel_kernel(void) { return tg_panels_isa_name(tg_panels_isa()); }
