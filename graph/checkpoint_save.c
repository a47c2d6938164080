/* Writing safetensors checkpoints, atomically.
 *
 * The header is built and serialised by jansson. The file is written as
 * "<path>.tmp.<pid>" in the target's directory, fsync'd, closed (each of
 * write, fsync and close can report ENOSPC or EIO), renamed over <path>, and
 * the directory is fsync'd so the rename itself is durable. Any failure
 * before the rename removes the temporary file and leaves <path> as it was. */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <jansson.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "checkpoint_header.h"
#include "tg_checkpoint.h"

#define DTYPE (sizeof(tg_real) == 4 ? "F32" : "F64")

typedef struct out_tensor {
    const char *name;
    const tg_real *data;
    size_t numel;
    int rows, cols, one_d;
} out_tensor;

typedef struct piece {
    const void *p;
    size_t n;
} piece;

/* ------------------------------------------------------------------ header */

static int check_values(const char *path, const out_tensor *t, char *err, size_t errlen)
{
    for (size_t i = 0; i < t->numel; i++)
        if (!isfinite(t->data[i]))
            return tg_ckpt_fail(err, errlen, "cannot save %s: tensor '%.80s' holds %s at index "
                                             "%zu; previous checkpoint left intact", path,
                                t->name, isnan(t->data[i]) ? "NaN" : "an infinity", i);
    return 0;
}

static int add_tensor(json_t *root, const out_tensor *t, size_t *offset, const char *path,
                      char *err, size_t errlen)
{
    if (!t->name || !t->name[0] || strcmp(t->name, "__metadata__") == 0)
        return tg_ckpt_fail(err, errlen, "cannot save %s: tensor name '%s' is not allowed", path,
                            t->name ? t->name : "(null)");
    if (json_object_get(root, t->name))
        return tg_ckpt_fail(err, errlen, "cannot save %s: tensor name '%.80s' is used twice",
                            path, t->name);
    json_int_t a = (json_int_t)*offset, b = a + (json_int_t)(t->numel * sizeof(tg_real));
    json_t *e = t->one_d ? json_pack("{s:s, s:[I], s:[I, I]}", "dtype", DTYPE, "shape",
                                     (json_int_t)t->numel, "data_offsets", a, b)
                         : json_pack("{s:s, s:[i, i], s:[I, I]}", "dtype", DTYPE, "shape", t->rows,
                                     t->cols, "data_offsets", a, b);
    if (!e || json_object_set_new(root, t->name, e) != 0)
        return tg_ckpt_fail(err, errlen, "cannot save %s: tensor name '%.80s' is not valid UTF-8 "
                                         "(or out of memory)", path, t->name);
    *offset = (size_t)b;
    return 0;
}

static int add_meta(json_t *meta, const char *key, const char *value, const char *path, char *err,
                    size_t errlen)
{
    if (!key || !value)
        return tg_ckpt_fail(err, errlen, "cannot save %s: metadata key or value is NULL", path);
    if (json_object_get(meta, key))
        return tg_ckpt_fail(err, errlen, "cannot save %s: metadata key '%.80s' is used twice",
                            path, key);
    if (json_object_set_new(meta, key, json_string(value)) != 0)
        return tg_ckpt_fail(err, errlen, "cannot save %s: metadata '%.80s' is not valid UTF-8 "
                                         "(or out of memory)", path, key);
    return 0;
}

/* The extras' names, as a JSON list inside a metadata string. */
static int add_extras_key(json_t *meta, const out_tensor *t, size_t n_params, size_t n,
                          const char *path, char *err, size_t errlen)
{
    if (n == n_params) return 0;
    json_t *list = json_array();
    for (size_t i = n_params; list && i < n; i++)
        if (json_array_append_new(list, json_string(t[i].name)) != 0) {
            json_decref(list);
            list = NULL;
        }
    char *s = list ? json_dumps(list, JSON_COMPACT) : NULL;
    json_decref(list);
    int rc = s ? add_meta(meta, TG_CKPT_EXTRAS_KEY, s, path, err, errlen)
               : tg_ckpt_fail(err, errlen, "cannot save %s: out of memory", path);
    free(s);
    return rc;
}

/* The data section's CRC-32 (TG_CKPT_CRC_KEY): the tensors' bytes in file
 * order. */
static uint32_t data_crc(const out_tensor *t, size_t n)
{
    uint32_t crc = 0;
    for (size_t i = 0; i < n; i++)
        crc = tg_ckpt_crc32(crc, t[i].data, t[i].numel * sizeof(tg_real));
    return crc;
}

/* The keys the library writes, and names one byte from the header
 * checksum's, which the reader takes for that key damaged. */
static int reserved_key(const char *key)
{
    return key && (strcmp(key, TG_CKPT_EXTRAS_KEY) == 0 || strcmp(key, TG_CKPT_CRC_KEY) == 0 ||
                   strcmp(key, TG_CKPT_HEADER_CRC_KEY) == 0 || tg_ckpt_near_header_crc_key(key));
}

/* TG_CKPT_HEADER_CRC_KEY into meta (root's "__metadata__"). */
static int add_header_crc(json_t *root, json_t *meta, const char *path, char *err, size_t errlen)
{
    uint32_t crc;
    if (tg_ckpt_header_crc(root, &crc) != 0)
        return tg_ckpt_fail(err, errlen, "cannot save %s: out of memory", path);
    char hex[16];
    snprintf(hex, sizeof hex, "%08" PRIx32, crc);
    return add_meta(meta, TG_CKPT_HEADER_CRC_KEY, hex, path, err, errlen);
}

static char *build_header(const out_tensor *t, size_t n_params, size_t n, const tg_ckpt_meta *m,
                          size_t n_meta, int with_crc, const char *path, char *err, size_t errlen)
{
    json_t *root = json_object(), *meta = json_object();
    int rc = root && meta ? 0 : tg_ckpt_fail(err, errlen, "cannot save %s: out of memory", path);
    for (size_t i = 0; rc == 0 && i < n_meta; i++) {
        if (reserved_key(m[i].key))
            rc = tg_ckpt_fail(err, errlen, "cannot save %s: metadata key '%s' is reserved", path,
                              m[i].key);
        else
            rc = add_meta(meta, m[i].key, m[i].value, path, err, errlen);
    }
    if (rc == 0) rc = add_extras_key(meta, t, n_params, n, path, err, errlen);
    if (rc == 0 && with_crc) {
        char crc[16];
        snprintf(crc, sizeof crc, "%08" PRIx32, data_crc(t, n));
        rc = add_meta(meta, TG_CKPT_CRC_KEY, crc, path, err, errlen);
    }
    size_t offset = 0;
    for (size_t i = 0; rc == 0 && i < n; i++) rc = add_tensor(root, &t[i], &offset, path, err, errlen);
    if (rc == 0 && json_object_size(meta) > 0) {
        rc = json_object_set(root, "__metadata__", meta);
        if (rc) tg_ckpt_fail(err, errlen, "cannot save %s: out of memory", path);
    }
    if (rc == 0 && with_crc) /* last: it covers the rest of the header */
        rc = add_header_crc(root, meta, path, err, errlen);
    char *s = rc == 0 ? json_dumps(root, JSON_COMPACT | JSON_PRESERVE_ORDER) : NULL;
    if (rc == 0 && !s) tg_ckpt_fail(err, errlen, "cannot save %s: out of memory", path);
    json_decref(meta);
    json_decref(root);
    return s;
}

/* ------------------------------------------------------------------ atomic write */

static int write_all(int fd, const void *buf, size_t n)
{
    const unsigned char *p = buf;
    while (n > 0) {
        ssize_t w = write(fd, p, n);
        if (w < 0 && errno == EINTR) continue;
        if (w < 0) return -1;
        if (w == 0) {
            errno = EIO;
            return -1;
        }
        p += w;
        n -= (size_t)w;
    }
    return 0;
}

static char *dir_of(const char *path)
{
    const char *slash = strrchr(path, '/');
    size_t n = slash ? (slash == path ? 1 : (size_t)(slash - path)) : 1;
    char *d = malloc(n + 1);
    if (!d) return NULL;
    memcpy(d, slash ? path : ".", n);
    d[n] = '\0';
    return d;
}

static int fsync_dir(const char *path, char *err, size_t errlen)
{
    char *dir = dir_of(path);
    if (!dir) return tg_ckpt_fail(err, errlen, "saved %s, then out of memory", path);
    int fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    /* Some file systems cannot fsync a directory (EINVAL): nothing more to do there. */
    int rc = fd >= 0 && (fsync(fd) == 0 || errno == EINVAL) ? 0 : -1;
    if (rc)
        tg_ckpt_fail(err, errlen, "saved %s but could not fsync its directory %s: %s; the new "
                                  "file may not survive a power loss", path, dir, strerror(errno));
    if (fd >= 0) close(fd);
    free(dir);
    return rc;
}

static int write_pieces(const char *tmp, const piece *pc, size_t n, const char **what)
{
    int fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    if (fd < 0) {
        *what = "create";
        return -1;
    }
    for (size_t i = 0; i < n; i++)
        if (pc[i].n && write_all(fd, pc[i].p, pc[i].n) != 0) {
            *what = "write";
            goto fail;
        }
    if (fsync(fd) != 0) {
        *what = "fsync";
        goto fail;
    }
    if (close(fd) != 0) {
        *what = "close";
        return -2; /* the descriptor is gone either way */
    }
    return 0;
fail:;
    int saved = errno;
    close(fd);
    errno = saved;
    return -2;
}

int tg_checkpoint_temp_path(const char *path, char *out, size_t cap)
{
    int n = snprintf(out, cap, "%s.tmp.%ld", path, (long)getpid());
    return n < 0 || (size_t)n >= cap ? -1 : 0;
}

static int write_atomic(const char *path, const piece *pc, size_t n, char *err, size_t errlen)
{
    char *tmp = malloc(strlen(path) + 32);
    if (!tmp) return tg_ckpt_fail(err, errlen, "cannot save %s: out of memory", path);
    tg_checkpoint_temp_path(path, tmp, strlen(path) + 32); /* 32 holds ".tmp." and any pid */
    const char *what = "";
    int rc = write_pieces(tmp, pc, n, &what);
    if (rc == 0 && rename(tmp, path) != 0) {
        what = "rename over the target";
        rc = -2;
    }
    if (rc != 0) {
        int saved = errno;
        if (rc == -2) unlink(tmp);
        /* "left intact" only where there is one: its folder may be gone */
        int kept = access(path, F_OK) == 0;
        tg_ckpt_fail(err, errlen, "cannot save %s: %s of %s failed: %s; %s", path, what, tmp,
                     strerror(saved), kept ? "previous checkpoint left intact" : "no file there");
        free(tmp);
        return -1;
    }
    free(tmp);
    return fsync_dir(path, err, errlen);
}

/* ------------------------------------------------------------------ save */

static int save_tensors(const char *path, const out_tensor *t, size_t n_params, size_t n,
                        const tg_ckpt_meta *meta, size_t n_meta, int with_crc, char *err,
                        size_t errlen)
{
    for (size_t i = 0; i < n; i++)
        if (check_values(path, &t[i], err, errlen)) return -1;
    char *hdr = build_header(t, n_params, n, meta, n_meta, with_crc, path, err, errlen);
    if (!hdr) return -1;
    /* Pad the header with spaces so the data starts 8-byte aligned. */
    size_t hlen = strlen(hdr), padded = (hlen + 7) & ~(size_t)7;
    char *h = malloc(padded);
    piece *pc = malloc((n + 2) * sizeof *pc);
    if (h) {
        memcpy(h, hdr, hlen);
        memset(h + hlen, ' ', padded - hlen);
    }
    free(hdr);
    if (!h || !pc) {
        free(h);
        free(pc);
        return tg_ckpt_fail(err, errlen, "cannot save %s: out of memory", path);
    }
    unsigned char len8[8];
    for (int k = 0; k < 8; k++) len8[k] = (unsigned char)((uint64_t)padded >> (8 * k));
    pc[0] = (piece){len8, 8};
    pc[1] = (piece){h, padded};
    for (size_t i = 0; i < n; i++) pc[i + 2] = (piece){t[i].data, t[i].numel * sizeof(tg_real)};
    int rc = write_atomic(path, pc, n + 2, err, errlen);
    free(pc);
    free(h);
    return rc;
}

int tg_checkpoint_save(const char *path, const tg_params *p, const tg_ckpt_array *extras,
                       size_t n_extras, const tg_ckpt_meta *meta, size_t n_meta, char *err,
                       size_t errlen)
{
    if (tg_ckpt_host_ok(err, errlen)) return -1;
    size_t np = tg_params_count(p), n = np + n_extras;
    out_tensor *t = calloc(n ? n : 1, sizeof *t);
    if (!t) return tg_ckpt_fail(err, errlen, "cannot save %s: out of memory", path);
    for (size_t i = 0; i < np; i++) {
        const tg_tensor *x = tg_params_at(p, i);
        t[i] = (out_tensor){tg_params_name(p, i), x->data, tg_numel(x), x->rows, x->cols, 0};
    }
    for (size_t i = 0; i < n_extras; i++)
        t[np + i] = (out_tensor){extras[i].name, extras[i].data, extras[i].numel, 1,
                                 (int)extras[i].numel, 1};
    int rc = 0;
    for (size_t i = 0; rc == 0 && i < n_extras; i++)
        if (extras[i].numel == 0 || extras[i].numel > INT32_MAX || !extras[i].data)
            rc = tg_ckpt_fail(err, errlen, "cannot save %s: extra array '%.80s' has %zu values "
                                           "(1 to %d allowed)", path,
                              extras[i].name ? extras[i].name : "(null)", extras[i].numel,
                              INT32_MAX);
    if (rc == 0) rc = save_tensors(path, t, np, n, meta, n_meta, 1, err, errlen);
    free(t);
    return rc;
}

int tg_checkpoint_save_tensors(const char *path, const tg_ckpt_tensor *src, size_t n,
                               const tg_ckpt_meta *meta, size_t n_meta, char *err,
                               size_t errlen)
{
    if (tg_ckpt_host_ok(err, errlen)) return -1;
    out_tensor *t = calloc(n ? n : 1, sizeof *t);
    if (!t) return tg_ckpt_fail(err, errlen, "cannot save %s: out of memory", path);
    int rc = 0;
    for (size_t i = 0; rc == 0 && i < n; i++) {
        const tg_ckpt_tensor *s = &src[i];
        size_t rows = s->rows == 0 ? 1 : (size_t)s->rows;
        if (s->rows < 0 || s->cols < 1 || !s->data)
            rc = tg_ckpt_fail(err, errlen, "cannot save %s: tensor '%.80s' has shape [%d, %d]",
                              path, s->name ? s->name : "(null)", s->rows, s->cols);
        else
            t[i] = (out_tensor){s->name, s->data, rows * (size_t)s->cols, (int)rows, s->cols,
                                s->rows == 0};
    }
    /* no checksum: these files are for other tools, which may change the
     * tensors and keep the metadata (a stale checksum would refuse them) */
    if (rc == 0) rc = save_tensors(path, t, n, n, meta, n_meta, 0, err, errlen);
    free(t);
    return rc;
}
