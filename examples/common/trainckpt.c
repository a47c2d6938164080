/* Training checkpoints over tg_checkpoint.h: see trainckpt.h for the use
 * and the file layout.
 *
 * Save turns every registered item into a metadata string or an extra
 * array and hands them, with the parameters and the optimizer state, to
 * tg_checkpoint_save (atomic: temp file, fsync, rename, fsync dir).
 * Load reads and checks the whole file first (tg_checkpoint_open), then
 * decodes every item into temporaries, then loads the parameters (with a
 * copy to put back) and the optimizer, and only when all of that succeeded
 * copies the temporaries into the registered variables. */
#include "trainckpt.h"

#include <fcntl.h>
#include <limits.h>
#include <sys/stat.h>
#include <dirent.h>
#include <errno.h>
#include <inttypes.h>
#include <math.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "text.h" /* tg_text_shown: config values in messages */

typedef enum item_kind { K_CONFIG, K_INFO, K_RNG, K_U64, K_F64, K_ARRAY } item_kind;

/* Metadata key prefix per kind ("config.hidden", "rng.data", ...). */
static const char *const kind_prefix[] = {"config.", "info.", "rng.", "u64.", "f64.", "state."};

typedef struct item {
    item_kind kind;
    char *name;
    char *value;  /* K_CONFIG, K_INFO: the string, owned */
    char *absent; /* K_CONFIG of tg_trainckpt_config_unless: the value a file
                   * without it holds, owned; NULL: the file must have it */
    void *ptr;    /* K_RNG: tg_rng*, K_U64: uint64_t*, K_F64: double*, K_ARRAY: tg_real* */
    size_t numel; /* K_ARRAY */
} item;

struct tg_trainckpt {
    char *program;
    tg_params *params;
    tg_optim *opt;
    item *items;
    size_t n, cap;
    uint64_t loaded; /* tg_trainckpt_loaded_hash */
};

/* Longest item name, "prefix.name" key and text of one value (rng hex,
 * u64, %a). */
#define NAME_MAX_LEN 64
#define KEY_MAX (NAME_MAX_LEN + 16)
#define TEXT_MAX 72

static char *dup_str(const char *s)
{
    size_t n = strlen(s) + 1;
    char *d = malloc(n);
    if (d) memcpy(d, s, n);
    return d;
}

/* ------------------------------------------------------------------ registration */

tg_trainckpt *tg_trainckpt_new(const char *program, tg_params *params, tg_optim *opt)
{
    if (!program || !params) return NULL;
    tg_trainckpt *ck = calloc(1, sizeof *ck);
    if (!ck) return NULL;
    ck->program = dup_str(program);
    if (!ck->program) {
        free(ck);
        return NULL;
    }
    ck->params = params;
    ck->opt = opt;
    return ck;
}

void tg_trainckpt_free(tg_trainckpt *ck)
{
    if (!ck) return;
    for (size_t i = 0; i < ck->n; i++) {
        free(ck->items[i].name);
        free(ck->items[i].value);
        free(ck->items[i].absent);
    }
    free(ck->items);
    free(ck->program);
    free(ck);
}

static int name_ok(const char *name)
{
    size_t n = name ? strlen(name) : 0;
    if (n == 0 || n > NAME_MAX_LEN) return 0;
    for (size_t i = 0; i < n; i++) {
        char c = name[i];
        int ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
                 c == '_' || c == '.' || c == '-';
        if (!ok) return 0;
    }
    return 1;
}

static item *find_item(const tg_trainckpt *ck, item_kind kind, const char *name)
{
    for (size_t i = 0; i < ck->n; i++)
        if (ck->items[i].kind == kind && strcmp(ck->items[i].name, name) == 0) return &ck->items[i];
    return NULL;
}

static int add_item(tg_trainckpt *ck, item_kind kind, const char *name, const char *value,
                    void *ptr, size_t numel)
{
    if (!ck || !name_ok(name) || find_item(ck, kind, name)) return -1;
    if (kind <= K_INFO ? !value : !ptr) return -1;
    if (ck->n == ck->cap) {
        size_t cap = ck->cap ? 2 * ck->cap : 16;
        item *it = realloc(ck->items, cap * sizeof *it);
        if (!it) return -1;
        ck->items = it;
        ck->cap = cap;
    }
    item it = {kind, dup_str(name), value ? dup_str(value) : NULL, NULL, ptr, numel};
    if (!it.name || (value && !it.value)) {
        free(it.name);
        free(it.value);
        return -1;
    }
    ck->items[ck->n++] = it;
    return 0;
}

int tg_trainckpt_config(tg_trainckpt *ck, const char *key, const char *value)
{
    return add_item(ck, K_CONFIG, key, value, NULL, 0);
}

int tg_trainckpt_config_unless(tg_trainckpt *ck, const char *key, const char *value,
                               const char *absent)
{
    if (!absent || tg_trainckpt_config(ck, key, value) != 0) return -1;
    item *it = &ck->items[ck->n - 1];
    it->absent = dup_str(absent);
    return it->absent ? 0 : -1;
}

/* A config of tg_trainckpt_config_unless at the value files leave out. */
static int unwritten(const item *it)
{
    return it->kind == K_CONFIG && it->absent && strcmp(it->value, it->absent) == 0;
}

uint64_t tg_trainckpt_config_hash(const tg_trainckpt *ck)
{
    uint64_t h = TG_FNV1A_BASIS;
    /* what the file holds: a run's hash is the one its older version had
     * (a kept model names its run by it, tgx_run_adopt_kept) */
    for (size_t i = 0; i < ck->n; i++)
        if (ck->items[i].kind == K_CONFIG && !unwritten(&ck->items[i])) {
            /* the NULs keep "ab"+"c" from "a"+"bc" */
            h = tg_fnv1a(h, ck->items[i].name, strlen(ck->items[i].name) + 1);
            h = tg_fnv1a(h, ck->items[i].value, strlen(ck->items[i].value) + 1);
        }
    return h;
}

int tg_trainckpt_config_int(tg_trainckpt *ck, const char *key, long long value)
{
    char s[32];
    snprintf(s, sizeof s, "%lld", value);
    return tg_trainckpt_config(ck, key, s);
}

int tg_trainckpt_config_double(tg_trainckpt *ck, const char *key, double value)
{
    char s[40];
    snprintf(s, sizeof s, "%.17g", value);
    return tg_trainckpt_config(ck, key, s);
}

int tg_trainckpt_info_int(tg_trainckpt *ck, const char *key, long long value)
{
    char s[32];
    snprintf(s, sizeof s, "%lld", value);
    return tg_trainckpt_info(ck, key, s);
}

int tg_trainckpt_info_double(tg_trainckpt *ck, const char *key, double value)
{
    char s[40];
    snprintf(s, sizeof s, "%.17g", value);
    return tg_trainckpt_info(ck, key, s);
}

int tg_trainckpt_info(tg_trainckpt *ck, const char *key, const char *value)
{
    return add_item(ck, K_INFO, key, value, NULL, 0);
}

int tg_trainckpt_rng(tg_trainckpt *ck, const char *name, tg_rng *r)
{
    return add_item(ck, K_RNG, name, NULL, r, 0);
}

int tg_trainckpt_u64(tg_trainckpt *ck, const char *name, uint64_t *v)
{
    return add_item(ck, K_U64, name, NULL, v, 0);
}

int tg_trainckpt_f64(tg_trainckpt *ck, const char *name, double *v)
{
    return add_item(ck, K_F64, name, NULL, v, 0);
}

int tg_trainckpt_array(tg_trainckpt *ck, const char *name, tg_real *data, size_t numel)
{
    if (numel == 0) return -1;
    return add_item(ck, K_ARRAY, name, NULL, data, numel);
}

static void item_key(const item *it, char key[KEY_MAX])
{
    snprintf(key, KEY_MAX, "%s%s", kind_prefix[it->kind], it->name);
}

/* ------------------------------------------------------------------ save */

/* Removes "<base>.tmp.<pid>" files next to path whose process is gone: what
 * a run killed in the middle of a save leaves behind. Best effort. */
static void remove_stale_temps(const char *path)
{
    const char *slash = strrchr(path, '/');
    const char *base = slash ? slash + 1 : path;
    char dir[4096];
    if (slash) {
        size_t n = (size_t)(slash - path);
        if (n >= sizeof dir) return;
        memcpy(dir, path, n);
        dir[n ? n : 1] = '\0';
        if (n == 0) dir[0] = '/';
    } else {
        strcpy(dir, ".");
    }
    size_t blen = strlen(base);
    DIR *d = opendir(dir);
    if (!d) return;
    for (struct dirent *e; (e = readdir(d)) != NULL;) {
        const char *nm = e->d_name;
        if (strncmp(nm, base, blen) != 0 || strncmp(nm + blen, ".tmp.", 5) != 0) continue;
        const char *digits = nm + blen + 5;
        char *end;
        long pid = strtol(digits, &end, 10);
        if (end == digits || *end != '\0' || pid <= 0 || pid == (long)getpid()) continue;
        if (kill((pid_t)pid, 0) == 0 || errno != ESRCH) continue; /* alive, or not ours */
        char full[4096 + 256];
        snprintf(full, sizeof full, "%s/%s", dir, nm);
        unlink(full);
    }
    closedir(d);
}

/* One metadata entry per item plus the fixed ones; text[] holds the values
 * formatted here (rng hex, numbers). */
typedef struct save_meta {
    tg_ckpt_meta *m;
    char (*key)[KEY_MAX];
    char (*text)[TEXT_MAX];
    size_t n;
} save_meta;

static int build_meta(const tg_trainckpt *ck, save_meta *sm, char *steps)
{
    size_t cap = ck->n + 4;
    sm->m = malloc(cap * sizeof *sm->m);
    sm->key = malloc(cap * sizeof *sm->key);
    sm->text = malloc(cap * sizeof *sm->text);
    sm->n = 0;
    if (!sm->m || !sm->key || !sm->text) return -1;
    sm->m[sm->n++] = (tg_ckpt_meta){"trainckpt.version", TG_TRAINCKPT_VERSION};
    sm->m[sm->n++] = (tg_ckpt_meta){"trainckpt.program", ck->program};
    if (ck->opt) {
        snprintf(steps, 24, "%" PRIu64, tg_optim_steps(ck->opt));
        sm->m[sm->n++] =
            (tg_ckpt_meta){"optim.kind", tg_optim_kind_name(tg_optim_get_config(ck->opt)->kind)};
        sm->m[sm->n++] = (tg_ckpt_meta){"optim.steps", steps};
    }
    for (size_t i = 0; i < ck->n; i++) {
        const item *it = &ck->items[i];
        if (it->kind == K_ARRAY || unwritten(it)) continue;
        size_t j = sm->n++;
        item_key(it, sm->key[j]);
        const char *value = sm->text[j];
        switch (it->kind) {
        case K_CONFIG:
        case K_INFO: value = it->value; break;
        case K_RNG: tg_checkpoint_rng_hex(it->ptr, sm->text[j]); break;
        case K_U64: snprintf(sm->text[j], TEXT_MAX, "%" PRIu64, *(uint64_t *)it->ptr); break;
        case K_F64: snprintf(sm->text[j], TEXT_MAX, "%a", *(double *)it->ptr); break;
        case K_ARRAY: break;
        }
        sm->m[j] = (tg_ckpt_meta){sm->key[j], value};
    }
    return 0;
}

static void free_meta(save_meta *sm)
{
    free(sm->m);
    free(sm->key);
    free(sm->text);
}

int tg_trainckpt_save(tg_trainckpt *ck, const char *path, char *err, size_t errlen)
{
    if (!ck || !path || !path[0])
        return tg_ckpt_fail(err, errlen, "checkpoint: no file name given");
    remove_stale_temps(path);
    size_t ns = ck->opt ? tg_optim_state_count(ck->opt) : 0, na = 0;
    for (size_t i = 0; i < ck->n; i++) na += ck->items[i].kind == K_ARRAY;
    tg_ckpt_array *ex = malloc((ns + na + 1) * sizeof *ex);
    char (*ex_names)[KEY_MAX] = malloc((na + 1) * sizeof *ex_names);
    save_meta sm = {0};
    char steps[24];
    int rc;
    if (!ex || !ex_names || build_meta(ck, &sm, steps) != 0) {
        rc = tg_ckpt_fail(err, errlen,
                          "cannot save %s: out of memory; previous checkpoint left intact", path);
    } else {
        size_t k = 0, a = 0;
        for (size_t i = 0; i < ns; i++)
            ex[k++] = (tg_ckpt_array){tg_optim_state_name(ck->opt, i),
                                      tg_optim_state_data(ck->opt, i), tg_optim_numel(ck->opt)};
        for (size_t i = 0; i < ck->n; i++) {
            const item *it = &ck->items[i];
            if (it->kind != K_ARRAY) continue;
            item_key(it, ex_names[a]);
            ex[k++] = (tg_ckpt_array){ex_names[a++], it->ptr, it->numel};
        }
        rc = tg_checkpoint_save(path, ck->params, ex, k, sm.m, sm.n, err, errlen);
    }
    free_meta(&sm);
    free(ex_names);
    free(ex);
    return rc;
}

/* ------------------------------------------------------------------ load */

/* Checks that c is a training checkpoint of ck->program. */
static int check_identity(const tg_trainckpt *ck, const tg_checkpoint *c, const char *path,
                          char *err, size_t errlen)
{
    const char *v = tg_checkpoint_meta(c, "trainckpt.version");
    if (!v)
        return tg_ckpt_fail(err, errlen,
                            "%s: not a training checkpoint (no 'trainckpt.version' "
                            "metadata): cannot resume from it",
                            path);
    if (strcmp(v, TG_TRAINCKPT_VERSION) != 0)
        return tg_ckpt_fail(err, errlen,
                            "%s: training checkpoint version '%.20s', this program reads "
                            "version %s",
                            path, v, TG_TRAINCKPT_VERSION);
    const char *prog = tg_checkpoint_meta(c, "trainckpt.program");
    if (!prog || strcmp(prog, ck->program) != 0)
        return tg_ckpt_fail(err, errlen, "%s: a checkpoint of '%.40s', not of '%s'", path,
                            prog ? prog : "(unknown program)", ck->program);
    return 0;
}

/* "hidden is 256 in the checkpoint, 128 in this run", or for long values
 * (a vocabulary) where they first differ. */
static int config_mismatch(const char *path, const char *key, const char *file, const char *run,
                           char *err, size_t errlen)
{
    if (strlen(file) <= 40 && strlen(run) <= 40) {
        char shown[2][200]; /* a vocabulary's words may hold an ESC */
        tg_text_shown(file, shown[0], sizeof shown[0]);
        tg_text_shown(run, shown[1], sizeof shown[1]);
        return tg_ckpt_fail(err, errlen,
                            "%s: config '%s' is '%s' in the checkpoint, '%s' in this run: "
                            "cannot resume with a different %s",
                            path, key, shown[0], shown[1], key);
    }
    size_t i = 0;
    while (file[i] && file[i] == run[i]) i++;
    return tg_ckpt_fail(err, errlen,
                        "%s: config '%s' differs from this run's (%zu vs %zu characters, "
                        "first difference at character %zu): cannot resume with a "
                        "different %s",
                        path, key, strlen(file), strlen(run), i, key);
}

static int check_optim_kind(const tg_trainckpt *ck, const tg_checkpoint *c, const char *path,
                            char *err, size_t errlen)
{
    if (!ck->opt) return 0;
    const char *want = tg_optim_kind_name(tg_optim_get_config(ck->opt)->kind);
    const char *have = tg_checkpoint_meta(c, "optim.kind");
    if (!have)
        return tg_ckpt_fail(err, errlen, "%s: holds no optimizer state ('optim.kind' missing)",
                            path);
    if (strcmp(have, want) != 0)
        return tg_ckpt_fail(err, errlen,
                            "%s: optimizer is '%.20s' in the checkpoint, '%s' in this run", path,
                            have, want);
    return 0;
}

/* Decoded values of the rng/u64/f64/array items, before they are committed. */
typedef union staged {
    tg_rng rng;
    uint64_t u64;
    double f64;
    tg_real *array;
} staged;

static int stage_item(const item *it, const tg_checkpoint *c, const char *path, staged *s,
                      char *err, size_t errlen)
{
    char key[KEY_MAX];
    item_key(it, key);
    const char *v = it->kind == K_ARRAY ? NULL : tg_checkpoint_meta(c, key);
    if (it->kind == K_CONFIG && !v) v = it->absent; /* tg_trainckpt_config_unless */
    /* a config a file lacks: of an older version, or of a program that
     * registers it only when set (values cut at 40: a vocabulary is one) */
    if (it->kind == K_CONFIG && !v)
        return tg_ckpt_fail(err, errlen,
                            "%s: config '%s' is not set in the checkpoint, '%.40s' in this run: "
                            "cannot resume with a different %s",
                            path, it->name, it->value, it->name);
    if (it->kind != K_ARRAY && it->kind != K_INFO && !v)
        return tg_ckpt_fail(err, errlen,
                            "%s: metadata '%s' is missing: not saved by this version of "
                            "the program",
                            path, key);
    switch (it->kind) {
    case K_CONFIG:
        if (strcmp(v, it->value) != 0) return config_mismatch(path, it->name, v, it->value, err, errlen);
        return 0;
    case K_INFO: return 0;
    case K_RNG: return tg_checkpoint_meta_rng(c, key, &s->rng, err, errlen);
    case K_U64: return tg_checkpoint_meta_u64(c, key, &s->u64, err, errlen);
    case K_F64: {
        char *end;
        errno = 0;
        s->f64 = strtod(v, &end);
        if (end == v || *end != '\0')
            return tg_ckpt_fail(err, errlen, "%s: metadata '%s' = '%.40s' is not a number", path,
                                key, v);
        return 0;
    }
    case K_ARRAY: {
        int rows, cols;
        if (tg_checkpoint_tensor_shape(c, key, &rows, &cols) != 0)
            return tg_ckpt_fail(err, errlen, "%s: tensor '%s' is missing", path, key);
        if ((size_t)rows * (size_t)cols != it->numel)
            return tg_ckpt_fail(err, errlen,
                                "%s: tensor '%s' has %zu values in the checkpoint, this run "
                                "has %zu",
                                path, key, (size_t)rows * (size_t)cols, it->numel);
        s->array = malloc(it->numel * sizeof(tg_real));
        if (!s->array) return tg_ckpt_fail(err, errlen, "%s: out of memory", path);
        return tg_checkpoint_read_array(c, key, s->array, it->numel, err, errlen);
    }
    }
    return 0;
}

static void commit_item(const item *it, const staged *s)
{
    switch (it->kind) {
    case K_RNG: *(tg_rng *)it->ptr = s->rng; break;
    case K_U64: *(uint64_t *)it->ptr = s->u64; break;
    case K_F64: *(double *)it->ptr = s->f64; break;
    case K_ARRAY: memcpy(it->ptr, s->array, it->numel * sizeof(tg_real)); break;
    case K_CONFIG:
    case K_INFO: break;
    }
}

/* Parameters, then the optimizer; the parameters are put back if the
 * optimizer cannot be loaded, so the pair is all or nothing. */
static int load_model(tg_trainckpt *ck, const tg_checkpoint *c, const char *path, char *err,
                      size_t errlen)
{
    size_t n = tg_params_numel(ck->params);
    tg_real *backup = malloc((n ? n : 1) * sizeof *backup);
    if (!backup) return tg_ckpt_fail(err, errlen, "%s: out of memory", path);
    memcpy(backup, tg_params_data(ck->params), n * sizeof *backup);
    /* the parameters are read from the file at load, so a read error (or
     * the file written over in place since the open) can fail half-way:
     * the backup goes back then too */
    int rc = tg_checkpoint_load_params(c, ck->params, err, errlen);
    if (rc == 0 && ck->opt) rc = tg_checkpoint_load_optim(c, ck->opt, err, errlen);
    if (rc != 0) memcpy(tg_params_data(ck->params), backup, n * sizeof *backup);
    free(backup);
    return rc;
}

/* FNV-1a of every metadata key and value in file order, and of the data
 * checksum: two files hash alike when they hold the same run (settings,
 * parameters, optimizer state, generators). */
static uint64_t file_hash(const tg_checkpoint *c)
{
    uint64_t h = TG_FNV1A_BASIS;
    for (size_t i = 0; i < tg_checkpoint_meta_count(c); i++) {
        const char *k = tg_checkpoint_meta_key(c, i), *v = tg_checkpoint_meta(c, k);
        h = tg_fnv1a(h, k, strlen(k) + 1);
        h = tg_fnv1a(h, v, strlen(v) + 1);
    }
    const char *crc = tg_checkpoint_meta(c, TG_CKPT_CRC_KEY);
    return crc ? tg_fnv1a(h, crc, strlen(crc) + 1) : h;
}

uint64_t tg_trainckpt_loaded_hash(const tg_trainckpt *ck) { return ck->loaded; }

int tg_trainckpt_load(tg_trainckpt *ck, const char *path, char *err, size_t errlen)
{
    if (!ck || !path || !path[0])
        return tg_ckpt_fail(err, errlen, "checkpoint: no file name given");
    tg_checkpoint *c = tg_checkpoint_open(path, err, errlen);
    if (!c) return -1;
    staged *st = calloc(ck->n ? ck->n : 1, sizeof *st);
    int rc = st ? 0 : tg_ckpt_fail(err, errlen, "%s: out of memory", path);
    if (rc == 0) rc = check_identity(ck, c, path, err, errlen);
    /* config first: a mismatch is the likeliest error and the clearest message */
    for (size_t i = 0; rc == 0 && i < ck->n; i++)
        if (ck->items[i].kind == K_CONFIG) rc = stage_item(&ck->items[i], c, path, &st[i], err, errlen);
    for (size_t i = 0; rc == 0 && i < ck->n; i++)
        if (ck->items[i].kind != K_CONFIG) rc = stage_item(&ck->items[i], c, path, &st[i], err, errlen);
    if (rc == 0) rc = check_optim_kind(ck, c, path, err, errlen);
    if (rc == 0) rc = load_model(ck, c, path, err, errlen);
    for (size_t i = 0; rc == 0 && i < ck->n; i++) commit_item(&ck->items[i], &st[i]);
    if (rc == 0) ck->loaded = file_hash(c);
    for (size_t i = 0; st && i < ck->n; i++)
        if (ck->items[i].kind == K_ARRAY) free(st[i].array);
    free(st);
    tg_checkpoint_close(c);
    return rc;
}

int tg_trainckpt_read_config(const char *path, const char *key, char *out, size_t outlen,
                             char *err, size_t errlen)
{
    if (!path || !key || !out || outlen == 0)
        return tg_ckpt_fail(err, errlen, "checkpoint: bad arguments");
    tg_checkpoint *c = tg_checkpoint_open(path, err, errlen);
    if (!c) return -1;
    char k[KEY_MAX + 8];
    snprintf(k, sizeof k, "config.%s", key);
    int rc = 0;
    const char *v = tg_checkpoint_meta(c, k);
    if (!tg_checkpoint_meta(c, "trainckpt.version"))
        rc = tg_ckpt_fail(err, errlen,
                          "%s: not a training checkpoint (no 'trainckpt.version' metadata)", path);
    else if (!v)
        rc = tg_ckpt_fail(err, errlen, "%s: has no config '%s'", path, key);
    else
        snprintf(out, outlen, "%s", v);
    tg_checkpoint_close(c);
    return rc;
}

/* ------------------------------------------------------------------ guard */

int tg_trainckpt_nonfinite(const tg_trainckpt *ck, double loss, uint64_t step, char *err,
                           size_t errlen)
{
    if (!isfinite(loss))
        return tg_ckpt_fail(err, errlen, "step %" PRIu64 ": loss is %s", step,
                            isnan(loss) ? "nan" : "infinite");
    size_t idx = 0;
    const char *name = tg_params_nonfinite_grad(ck->params, &idx);
    if (name)
        return tg_ckpt_fail(err, errlen, "step %" PRIu64 ": gradient of '%s'[%zu] is not finite",
                            step, name, idx);
    return tg_trainckpt_nonfinite_values(ck, step, err, errlen);
}

int tg_trainckpt_nonfinite_values(const tg_trainckpt *ck, uint64_t step, char *err,
                                  size_t errlen)
{
    size_t n = tg_params_numel(ck->params);
    size_t bad = tg_first_nonfinite(tg_params_data(ck->params), n);
    if (bad < n)
        return tg_ckpt_fail(err, errlen, "step %" PRIu64 ": parameter value %zu is not finite",
                            step, bad);
    return 0;
}

int tg_trainckpt_guard(const tg_trainckpt *ck, double loss, uint64_t step, char *err,
                       size_t errlen)
{
    if (tg_trainckpt_nonfinite(ck, loss, step, err, errlen) == 0) return 0;
    size_t len = err && errlen ? strlen(err) : 0;
    if (len < errlen) snprintf(err + len, errlen - len, "; stopping, last checkpoint kept");
    return -1;
}

/* ------------------------------------------------------------------ checkpoint path */

int tg_trainckpt_is_checkpoint(const char *path)
{
    return tg_checkpoint_peek_meta(path, "trainckpt.version", NULL, 0);
}

int tg_trainckpt_check_path(const char *path, const char *resume, char *err, size_t errlen)
{
    struct stat st;
    if (tg_cli_launcher_rank() > 0) return 0; /* rank 0 writes it, and checks (cli.h) */
    if (path[0] && stat(path, &st) == 0 && S_ISREG(st.st_mode)) { /* others: refused below */
        if (!resume || !tg_cli_same_file(path, resume))
            return snprintf(err, errlen,
                            "--checkpoint %s already exists: continue that run with --resume "
                            "%s, or remove the file to start afresh",
                            path, path),
                   -1;
    }
    /* The writability probe below is a "<path>.tmp.<pid>" file for an
     * instant: a run killed then leaves it, as one killed in a save leaves
     * its temporary. Clearing the dead runs' files first keeps at most one
     * beside the checkpoint (kill_programs.py checks that). */
    if (path[0]) remove_stale_temps(path);
    return tg_cli_check_output("--checkpoint", path, 1, err, errlen);
}

void tg_trainckpt_check_flags(const char *prog, const tg_cmdline *cl, const tg_run_files *f)
{
    if (f->resume && f->load)
        tg_cli_die_usage(prog, "--resume and --load exclude each other (--resume restores the "
                         "model too)");
    if (tg_cmdline_given(cl, "every") && !f->checkpoint)
        tg_cli_die_usage(prog, "--every needs --checkpoint FILE");
    if (f->checkpoint && f->save && !strcmp(f->checkpoint, f->save))
        tg_cli_die_usage(prog, "--checkpoint and --save name the same file %s", f->save);
}

void tg_run_files_add(tg_run_file *list, const char *flag, const char *path)
{
    if (!path) return;
    for (int i = 0; i < TG_RUN_FILES_MAX - 1; i++)
        if (!list[i].path) {
            list[i] = (tg_run_file){flag, path};
            return;
        }
    /* a program's mistake, not a user's: a file left out would escape the
     * same-file check unseen */
    fprintf(stderr, "tg_run_files_add: more than %d files (raise TG_RUN_FILES_MAX)\n",
            TG_RUN_FILES_MAX - 1);
    abort();
}

/* Whether output `out` may be input `in`: the run goes on in its
 * checkpoint, and trains a --load'ed model on in place. */
static int shared_on_purpose(const char *out, const char *in)
{
    return (!strcmp(out, "--checkpoint") && !strcmp(in, "--resume")) ||
           (!strcmp(out, "--save") && !strcmp(in, "--load"));
}

/* Whether output flag writes a model (safetensors): the flags that may
 * replace a model file, as a run's newer model replaces its older one. */
static int writes_model(const char *flag)
{
    return !strcmp(flag, "--checkpoint") || !strcmp(flag, "--save") ||
           !strcmp(flag, "--export-torch");
}

/* Whether the regular file at path starts as a safetensors file does: an
 * 8-byte little-endian header length that the file holds, then '{'. Any
 * model file (a --save, --checkpoint or --export-torch output, of any
 * version, or PyTorch's), told from its first 9 bytes; 0 for what cannot
 * be read (no device or FIFO is opened: a reader would be waited for). */
static int looks_like_safetensors(const char *path)
{
    struct stat st;
    unsigned char b[9];
    if (stat(path, &st) != 0 || !S_ISREG(st.st_mode) || st.st_size < 10) return 0;
    int fd = open(path, O_RDONLY | O_CLOEXEC | O_NONBLOCK | O_NOCTTY);
    if (fd < 0) return 0;
    ssize_t got = read(fd, b, sizeof b);
    close(fd);
    uint64_t len = 0;
    for (int i = 7; i >= 0; i--) len = len << 8 | b[i];
    return got == (ssize_t)sizeof b && b[8] == '{' && len >= 2 &&
           len <= (uint64_t)st.st_size - 8;
}

/* An output over an existing training checkpoint loses a run's state (its
 * optimizer, data position, generators): --save left a model file in its
 * place, --log a CSV. --checkpoint is not checked here: it may be the
 * --resume file alone (tg_trainckpt_check_path). The --load file is no
 * exception, though --save may share it to train a model on in place: a
 * training checkpoint is trained on in place by --resume X --checkpoint X,
 * and --load X --save X kept its model and dropped its run. An output that
 * is no model (--log, --attention-map) over any model file lost the model
 * for a CSV or an SVG: a typo's price was a training run. */
static void check_no_checkpoint_replaced(const char *prog, const tg_run_file *out, int n)
{
    if (tg_cli_launcher_rank() > 0) return; /* rank 0 writes the files, and checks (cli.h) */
    for (int i = 0; i < n; i++) {
        const char *flag = out[i].flag, *path = out[i].path;
        if (!path || !strcmp(flag, "--checkpoint")) continue;
        if (tg_trainckpt_is_checkpoint(path)) {
            const char *with = !strcmp(flag, "--save")
                                   ? " with a model file, without the run's state"
                                   : "";
            tg_cli_die_usage(prog, "%s %s: that file is a training checkpoint (continue it "
                             "with --resume); %s would replace it%s: name another file or "
                             "remove it", flag, path, flag, with);
        }
        if (!writes_model(flag) && looks_like_safetensors(path))
            tg_cli_die_usage(prog, "%s %s: that file is a model (safetensors, as --save and "
                             "--export-torch write them); %s would overwrite it: name another "
                             "file or remove it", flag, path, flag);
    }
}

void tg_run_files_check_distinct(const char *prog, const tg_run_files *f)
{
    tg_run_file out[TG_RUN_FILES_MAX + 3] = {{"--checkpoint", f->checkpoint}, {"--save", f->save},
                                             {"--log", f->log}};
    tg_run_file in[TG_RUN_FILES_MAX + 2] = {{"--resume", f->resume}, {"--load", f->load}};
    for (int i = 0; i < TG_RUN_FILES_MAX && f->writes[i].path; i++) out[3 + i] = f->writes[i];
    for (int i = 0; i < TG_RUN_FILES_MAX && f->reads[i].path; i++) in[2 + i] = f->reads[i];
    for (int i = 0; i < TG_RUN_FILES_MAX + 3; i++) {
        if (!out[i].path) continue;
        for (int j = i + 1; j < TG_RUN_FILES_MAX + 3; j++)
            if (out[j].path && tg_cli_same_file(out[i].path, out[j].path))
                tg_cli_die_usage(prog, "%s %s and %s %s are one file: one output would "
                                 "overwrite the other", out[i].flag, out[i].path, out[j].flag,
                                 out[j].path);
        for (int j = 0; j < TG_RUN_FILES_MAX + 2; j++)
            if (in[j].path && !shared_on_purpose(out[i].flag, in[j].flag) &&
                tg_cli_same_file(out[i].path, in[j].path))
                tg_cli_die_usage(prog, "%s %s would overwrite %s %s (one file): write it "
                                 "elsewhere", out[i].flag, out[i].path, in[j].flag, in[j].path);
    }
    check_no_checkpoint_replaced(prog, out, TG_RUN_FILES_MAX + 3);
}

void tg_trainckpt_check_outputs(const char *prog, const tg_run_files *f)
{
    char err[8192];
    tg_run_files_check_distinct(prog, f);
    if ((f->checkpoint && tg_trainckpt_check_path(f->checkpoint, f->resume, err, sizeof err)) ||
        (f->save && tg_cli_check_output("--save", f->save, 1, err, sizeof err)) ||
        (f->log && tg_cli_check_output("--log", f->log, 0, err, sizeof err)))
        tg_cli_die(prog, "%s", err);
}

/* ------------------------------------------------------------------ --resume: inherited settings */

static void check_program(const char *prog, const tg_checkpoint *c, const char *path)
{
    const char *theirs = tg_checkpoint_meta(c, "trainckpt.program");
    if (!tg_checkpoint_meta(c, "trainckpt.version"))
        tg_cli_die(prog, "%s: not a training checkpoint (no 'trainckpt.version' metadata): "
                   "--resume takes a file written by --checkpoint (a --save file goes to --load)",
                   path);
    if (!theirs || strcmp(theirs, prog) != 0)
        tg_cli_die(prog, "%s: a training checkpoint of '%.40s', not of '%s'", path,
                   theirs ? theirs : "(unknown program)", prog);
}

/* "--flag=<the file's value of prefix+flag>" into keep; a value missing
 * from the file is an error when required, else left out. */
static void inherit(const char *prog, const tg_checkpoint *c, const char *path,
                    const char *prefix, const char *flag, int required, tg_inherited *keep)
{
    char key[96];
    snprintf(key, sizeof key, "%s%s", prefix, flag);
    const char *v = tg_checkpoint_meta(c, key);
    if (!v && required)
        tg_cli_die(prog, "%s: metadata '%s' is missing: not written by this version of %s", path,
                   key, prog);
    if (!v) return;
    size_t len = strlen(flag) + strlen(v) + 4;
    char *arg = malloc(len);
    if (!arg || keep->n >= TG_CLI_MAX_FLAGS) tg_cli_die(prog, "out of memory");
    snprintf(arg, len, "--%s=%s", flag, v);
    keep->arg[keep->n++] = arg;
}

/* Every flag of list (NULL-terminated, or NULL) that cl leaves out. */
static void inherit_each(const char *prog, const tg_checkpoint *c, const char *path,
                         const char *prefix, const char *const *list, int required,
                         const tg_cmdline *cl, tg_inherited *keep)
{
    for (size_t i = 0; list && list[i]; i++)
        if (!tg_cmdline_given(cl, list[i])) inherit(prog, c, path, prefix, list[i], required, keep);
}

void tg_trainckpt_inherit(const char *prog, const char *path, const tg_resume_flags *which,
                          const tg_cmdline *cl, tg_inherited *keep)
{
    char err[1024];
    keep->n = 0;
    tg_checkpoint *c = tg_checkpoint_open(path, err, sizeof err);
    if (!c) tg_cli_die(prog, "%s", err);
    check_program(prog, c, path);
    inherit_each(prog, c, path, "config.", which->config, which->required, cl, keep);
    inherit_each(prog, c, path, "info.", which->settings, which->required, cl, keep);
    int group_given = 0;
    for (size_t i = 0; which->group && which->group[i]; i++)
        group_given |= tg_cmdline_given(cl, which->group[i]);
    if (!group_given)
        inherit_each(prog, c, path, "info.", which->group, which->required, cl, keep);
    inherit_each(prog, c, path, "info.", which->optional, 0, cl, keep);
    tg_checkpoint_close(c);
    /* parsed like a command line: the same types, ranges and choices */
    char *argv[TG_CLI_MAX_FLAGS + 1];
    argv[0] = cl->argv[0];
    memcpy(argv + 1, keep->arg, (size_t)keep->n * sizeof *argv);
    if (tg_cli_parse_args(keep->n + 1, argv, cl->flags, cl->n, NULL, err, sizeof err) != TG_CLI_OK)
        tg_cli_die(prog, "%s: a stored setting is not valid: %s", path, err);
}

void tg_trainckpt_die_inherited(const char *prog, const char *ckpt, const char *what,
                                const char *usage, const char *reason)
{
    tg_cli_die(prog, "%s: cannot read the run's %s (taken from the checkpoint): %s; give %s with "
               "the run's %s", ckpt, what, reason, usage, what);
}

int tg_inherited_has(const tg_inherited *keep, const char *flag)
{
    size_t len = strlen(flag);
    for (int i = 0; i < keep->n; i++)
        if (!strncmp(keep->arg[i], "--", 2) && !strncmp(keep->arg[i] + 2, flag, len) &&
            keep->arg[i][2 + len] == '=')
            return 1;
    return 0;
}

void tg_inherited_free(tg_inherited *keep)
{
    for (int i = 0; i < keep->n; i++) free(keep->arg[i]);
    keep->n = 0;
}

