/* Fuzz target: the safetensors checkpoint loader (graph/checkpoint.c).
 *
 * The input is a whole checkpoint file. tg_checkpoint_parse must either
 * reject it with a one-line message or return a checkpoint whose every
 * tensor and metadata entry can be read back; loading it into a small model
 * and an Adam optimizer must be all or nothing (the model is untouched when
 * loading fails). */
#include <math.h>

#include "fuzz_check.h"
#include "tapegrad.h"
#include "tg_checkpoint.h"
#include "tg_optim.h"

/* The model the fuzzed file is loaded into: names and shapes that the seed
 * corpus also uses, so mutations reach the shape/name checks. */
typedef struct model {
    tg_params *p;
    tg_optim *opt;
} model;

static int model_make(model *m)
{
    char err[256];
    m->opt = NULL;
    m->p = tg_params_new();
    if (!m->p) return -1;
    tg_tensor *w = tg_param(m->p, "w", 2, 3);
    tg_tensor *b = tg_param(m->p, "b", 1, 3);
    if (!w || !b) return -1;
    for (size_t i = 0; i < tg_params_numel(m->p); i++)
        tg_params_data(m->p)[i] = (tg_real)(0.25 * (double)i);
    tg_optim_config cfg = tg_optim_defaults(TG_OPTIM_ADAM);
    m->opt = tg_optim_new(&cfg, tg_params_numel(m->p), err, sizeof err);
    return m->opt ? 0 : -1;
}

static void model_free(model *m)
{
    if (m->opt) tg_optim_free(m->opt);
    if (m->p) tg_params_free(m->p);
}

static int params_unchanged(model *m)
{
    for (size_t i = 0; i < tg_params_numel(m->p); i++)
        if (tg_params_data(m->p)[i] != (tg_real)(0.25 * (double)i)) return 0;
    return 1;
}

static void read_everything(const tg_checkpoint *c)
{
    char err[256];
    size_t n = tg_checkpoint_tensor_count(c);
    for (size_t i = 0; i < n; i++) {
        const char *name = tg_checkpoint_tensor_name(c, i);
        FUZZ_CHECK(name != NULL, "tensor %zu has no name", i);
        int rows = -1, cols = -1;
        FUZZ_CHECK(tg_checkpoint_tensor_shape(c, name, &rows, &cols) == 0,
                   "listed tensor '%s' has no shape", name);
        FUZZ_CHECK(rows >= 0 && cols >= 0, "negative shape %d x %d", rows, cols);
        size_t numel = (size_t)rows * (size_t)cols;
        if (numel > (1u << 20)) continue; /* bounded by the input size anyway */
        tg_real *buf = malloc((numel ? numel : 1) * sizeof *buf);
        if (!buf) continue;
        err[0] = '\0';
        int rc = tg_checkpoint_read_array(c, name, buf, numel, err, sizeof err);
        /* Names may repeat only if the loader allows it; a listed tensor
         * read with its own size must succeed and be finite. */
        FUZZ_CHECK(rc == 0, "reading listed tensor '%s' failed: %s", name, err);
        for (size_t k = 0; k < numel; k++)
            FUZZ_CHECK(isfinite((double)buf[k]), "non-finite value accepted in '%s'", name);
        free(buf);
    }
    size_t nm = tg_checkpoint_meta_count(c);
    for (size_t i = 0; i < nm; i++) {
        const char *key = tg_checkpoint_meta_key(c, i);
        FUZZ_CHECK(key != NULL, "metadata %zu has no key", i);
        FUZZ_CHECK(tg_checkpoint_meta(c, key) != NULL, "metadata key '%s' has no value", key);
        uint64_t u;
        tg_rng r;
        err[0] = '\0';
        if (tg_checkpoint_meta_u64(c, key, &u, err, sizeof err) != 0) FUZZ_CHECK_MSG(err, sizeof err);
        err[0] = '\0';
        if (tg_checkpoint_meta_rng(c, key, &r, err, sizeof err) != 0) FUZZ_CHECK_MSG(err, sizeof err);
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char err[512];
    err[0] = '\0';
    tg_checkpoint *c = tg_checkpoint_parse(data, size, "fuzz.safetensors", err, sizeof err);
    if (!c) {
        FUZZ_CHECK_MSG(err, sizeof err);
        return 0;
    }
    read_everything(c);

    model m;
    if (model_make(&m) == 0) {
        err[0] = '\0';
        if (tg_checkpoint_load_params(c, m.p, err, sizeof err) != 0) {
            FUZZ_CHECK_MSG(err, sizeof err);
            FUZZ_CHECK(params_unchanged(&m), "failed load modified the model: %s", err);
        }
        err[0] = '\0';
        if (tg_checkpoint_load_optim(c, m.opt, err, sizeof err) != 0) FUZZ_CHECK_MSG(err, sizeof err);
    }
    model_free(&m);
    tg_checkpoint_close(c);
    return 0;
}
