/* An optimizer's state in a checkpoint, through the checkpoint's generic
 * extras and metadata (graph/tg_checkpoint.h): arrays under their state
 * names ("optim.m", ...), "optim.kind" and "optim.steps" in the metadata.
 * The format is the one graph/checkpoint*.c wrote before this file existed,
 * so older training checkpoints load unchanged. */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "tg_optim.h"

#define NAME_FMT "'%.80s'"

int tg_checkpoint_save_training(const char *path, const tg_params *p, tg_optim *opt,
                                const tg_ckpt_meta *meta, size_t n_meta, char *err,
                                size_t errlen)
{
    size_t ns = opt ? tg_optim_state_count(opt) : 0;
    tg_ckpt_meta *m = malloc((n_meta + 2) * sizeof *m);
    tg_ckpt_array *ex = malloc((ns ? ns : 1) * sizeof *ex);
    int rc = 0;
    if (!m || !ex) {
        rc = tg_ckpt_fail(err, errlen, "cannot save %s: out of memory", path);
    } else {
        char steps[24];
        size_t nm = n_meta;
        if (n_meta) memcpy(m, meta, n_meta * sizeof *m);
        if (opt) {
            snprintf(steps, sizeof steps, "%" PRIu64, tg_optim_steps(opt));
            m[nm++] = (tg_ckpt_meta){"optim.kind", tg_optim_kind_name(tg_optim_get_config(opt)->kind)};
            m[nm++] = (tg_ckpt_meta){"optim.steps", steps};
        }
        for (size_t i = 0; i < ns; i++)
            ex[i] = (tg_ckpt_array){tg_optim_state_name(opt, i), tg_optim_state_data(opt, i),
                                    tg_optim_numel(opt)};
        rc = tg_checkpoint_save(path, p, ex, ns, m, nm, err, errlen);
    }
    free(m);
    free(ex);
    return rc;
}

static int has_state(const tg_optim *opt, const char *name)
{
    for (size_t i = 0; i < tg_optim_state_count(opt); i++)
        if (strcmp(tg_optim_state_name(opt, i), name) == 0) return 1;
    return 0;
}

/* Values in the file under name (rows x cols, a 1-D [n] reading as 1 x n),
 * or 0 when absent. */
static size_t numel_in_file(const tg_checkpoint *c, const char *name, int *present)
{
    int rows = 0, cols = 0;
    *present = tg_checkpoint_tensor_shape(c, name, &rows, &cols) == 0;
    return *present ? (size_t)rows * (size_t)cols : 0;
}

static int check_optim(const tg_checkpoint *c, tg_optim *opt, uint64_t *steps, char *err,
                       size_t errlen)
{
    const char *label = tg_checkpoint_label(c);
    const char *kind = tg_checkpoint_meta(c, "optim.kind");
    const char *want = tg_optim_kind_name(tg_optim_get_config(opt)->kind);
    if (!kind)
        return tg_ckpt_fail(err, errlen, "%s: metadata 'optim.kind' is missing: the file "
                            "holds no optimizer state", label);
    if (strcmp(kind, want) != 0)
        return tg_ckpt_fail(err, errlen, "%s: metadata 'optim.kind' is '%.20s', the optimizer "
                            "is '%s'", label, kind, want);
    if (tg_checkpoint_meta_u64(c, "optim.steps", steps, err, errlen)) return -1;
    for (size_t i = 0; i < tg_optim_state_count(opt); i++) {
        const char *name = tg_optim_state_name(opt, i);
        int present;
        size_t numel = numel_in_file(c, name, &present);
        if (!present)
            return tg_ckpt_fail(err, errlen, "%s: optimizer state " NAME_FMT " is missing "
                                "from the file", label, name);
        if (numel != tg_optim_numel(opt))
            return tg_ckpt_fail(err, errlen, "%s: optimizer state " NAME_FMT " has %zu values "
                                "in the file, the optimizer has %zu", label, name, numel,
                                tg_optim_numel(opt));
    }
    for (size_t i = 0; i < tg_checkpoint_tensor_count(c); i++) {
        const char *name = tg_checkpoint_tensor_name(c, i);
        if (strncmp(name, "optim.", 6) == 0 && !has_state(opt, name))
            return tg_ckpt_fail(err, errlen, "%s: the file holds optimizer state " NAME_FMT
                                " that this optimizer does not use", label, name);
    }
    return 0;
}

/* A negative value in state i, which is never negative (Adam's second
 * moment, a mean of squares): a file without checksums (another tool's, or
 * edited) can hold one, and its square root made the first step NaN, a
 * failure the programs blamed on --lr. (The loader refuses NaN and
 * infinities in any tensor.) */
static int check_values(const tg_checkpoint *c, const tg_optim *opt, size_t i, const tg_real *x,
                        size_t n, char *err, size_t errlen)
{
    for (size_t k = 0; k < n; k++)
        if (x[k] < 0)
            return tg_ckpt_fail(err, errlen, "%s: optimizer state " NAME_FMT " holds %g at "
                                "index %zu, and it is never negative (a mean of squares)",
                                tg_checkpoint_label(c), tg_optim_state_name(opt, i),
                                (double)x[k], k);
    return 0;
}

int tg_checkpoint_load_optim(const tg_checkpoint *c, tg_optim *opt, char *err, size_t errlen)
{
    uint64_t steps = 0;
    if (check_optim(c, opt, &steps, err, errlen)) return -1;
    if (steps >= (uint64_t)1 << 53) /* the bias corrections' step, in double */
        return tg_ckpt_fail(err, errlen, "%s: metadata 'optim.steps' is %" PRIu64 ", more updates "
                            "than a run makes", tg_checkpoint_label(c), steps);
    /* all or nothing: each array with values to check is read into one
     * buffer and checked first (one array's memory more at a resume, not
     * all), then every array into the state */
    size_t n = tg_optim_numel(opt), ns = tg_optim_state_count(opt);
    tg_real *staged = ns ? malloc((n ? n : 1) * sizeof *staged) : NULL;
    if (ns && !staged)
        return tg_ckpt_fail(err, errlen, "%s: out of memory reading the optimizer state",
                            tg_checkpoint_label(c));
    int rc = 0;
    for (size_t i = 0; i < ns && rc == 0; i++) /* sizes checked above */
        if (tg_optim_state_nonneg(opt, i))
            rc = tg_checkpoint_read_array(c, tg_optim_state_name(opt, i), staged, n, err,
                                          errlen) ||
                 check_values(c, opt, i, staged, n, err, errlen);
    free(staged);
    for (size_t i = 0; i < ns && rc == 0; i++)
        rc = tg_checkpoint_read_array(c, tg_optim_state_name(opt, i),
                                      tg_optim_state_data(opt, i), n, err, errlen);
    if (rc == 0) tg_optim_set_steps(opt, steps);
    return rc ? -1 : 0;
}
