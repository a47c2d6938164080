/* Reading safetensors checkpoints: every field is checked before a value
 * reaches the model.
 *
 * tg_checkpoint_open() and tg_checkpoint_parse() check the structure of the
 * whole file (header length against the size, JSON syntax via jansson, each
 * dtype, shape and data_offsets, the tensors tiling the data section without
 * overlap, hole or tail, metadata types), then read the data section once,
 * a chunk at a time, for its checksums and to check every value (NaN,
 * infinity, out of tg_real's range). Only a file that passes all of that
 * becomes a tg_checkpoint. It keeps the header, not the values: a tensor is
 * read again from the file when asked for (load_params, read_array) and
 * converted straight into the caller's memory, so reading a file of any size
 * holds the caller's tensors, the header and one chunk, never a copy of the
 * file (a 1 GB file of junk was read whole, and converted whole, before a
 * caller could see that its metadata was not the caller's). A tensor read
 * again must have the checksum it had at the open: a file written over in
 * place since is reported, not loaded. Loading into a model checks names and
 * shapes of every tensor before the first copy. Writing is in
 * checkpoint_save.c. */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <jansson.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <zlib.h>

#include "checkpoint_header.h"
#include "tg_checkpoint.h"

/* The data section is raw little-endian IEEE-754; catch other hosts at
 * compile time where the compiler says, and at run time everywhere. */
_Static_assert(sizeof(float) == 4 && sizeof(double) == 8, "IEEE-754 float and double expected");
#if defined(__BYTE_ORDER__) && defined(__ORDER_LITTLE_ENDIAN__)
_Static_assert(__BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__,
               "safetensors data is little-endian; this host is not");
#endif

typedef struct entry {
    const char *name; /* owned by the header JSON, kept alive in tg_checkpoint */
    int dtype_bytes;  /* 4: F32, 8: F64 */
    int ndim, rows, cols;
    size_t numel, begin, end;
    uint32_t crc; /* CRC-32 of its bytes as the open read them */
    int is_extra;
} entry;

struct tg_checkpoint {
    char *label;
    json_t *root; /* keeps entry names and metadata strings alive */
    json_t *meta; /* borrowed from root; NULL when the file has none */
    size_t n_meta;
    const char **meta_keys;
    size_t n;
    entry *e;      /* in header order */
    entry **order; /* the same, by data_offsets */
    int fd;        /* the file, read for each tensor asked for; -1 after a parse */
    unsigned char *data; /* a parse's copy of the data section (NULL for a file) */
    size_t data_at;      /* where the data section starts in the file */
    size_t data_len;
};

/* Bytes of the data section read at a time (a multiple of 8: a chunk
 * holds whole values of either dtype, as a tensor's size is a multiple of
 * its dtype's and each tensor is read from its start). */
#define CHUNK ((size_t)1 << 18)

int tg_ckpt_fail(char *err, size_t errlen, const char *fmt, ...)
{
    if (err && errlen) {
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(err, errlen, fmt, ap);
        va_end(ap);
        /* Names and values quoted from a hostile file may hold control
         * characters (a "\n" in a JSON string): keep the message one line
         * and harmless on a terminal. */
        for (char *q = err; *q; q++)
            if ((unsigned char)*q < 0x20 || *q == 0x7f) *q = '?';
    }
    return -1;
}

uint32_t tg_ckpt_crc32(uint32_t crc, const void *bytes, size_t n)
{
    const unsigned char *p = bytes;
    uLong c = crc;
    while (n > 0) { /* zlib counts in uInt */
        uInt part = n > (1u << 30) ? 1u << 30 : (uInt)n;
        c = crc32(c, p, part);
        p += part;
        n -= part;
    }
    return (uint32_t)c;
}

int tg_ckpt_host_ok(char *err, size_t errlen)
{
    const uint32_t one = 1;
    unsigned char first;
    memcpy(&first, &one, 1);
    if (first != 1)
        return tg_ckpt_fail(err, errlen, "safetensors data is little-endian and this host is "
                                         "not: checkpoints are not supported here");
    return 0;
}

/* Messages print at most this much of a (possibly hostile) tensor name. */
#define NAME_FMT "'%.80s'"

/* ------------------------------------------------------------------ header entries */

typedef struct parse_ctx {
    const char *label;
    char *err;
    size_t errlen;
    size_t data_len;
} parse_ctx;

#define PFAIL(ctx, ...) tg_ckpt_fail((ctx)->err, (ctx)->errlen, __VA_ARGS__)

static int parse_dtype(const parse_ctx *x, const char *name, json_t *v, entry *e)
{
    json_t *d = json_object_get(v, "dtype");
    if (!d) return PFAIL(x, "%s: tensor " NAME_FMT ": \"dtype\" is missing", x->label, name);
    if (!json_is_string(d))
        return PFAIL(x, "%s: tensor " NAME_FMT ": \"dtype\" is not a string", x->label, name);
    const char *s = json_string_value(d);
    if (strcmp(s, "F32") == 0)
        e->dtype_bytes = 4;
    else if (strcmp(s, "F64") == 0)
        e->dtype_bytes = 8;
    else
        return PFAIL(x, "%s: tensor " NAME_FMT ": \"dtype\" '%.16s' is not supported (F32 or F64)",
                     x->label, name, s);
    return 0;
}

static int parse_shape(const parse_ctx *x, const char *name, json_t *v, entry *e)
{
    json_t *s = json_object_get(v, "shape");
    if (!s) return PFAIL(x, "%s: tensor " NAME_FMT ": \"shape\" is missing", x->label, name);
    size_t nd = json_is_array(s) ? json_array_size(s) : 0;
    if (nd != 1 && nd != 2)
        return PFAIL(x, "%s: tensor " NAME_FMT ": \"shape\" must be a list of 1 or 2 positive "
                        "integers", x->label, name);
    long long dim[2] = {1, 1};
    for (size_t k = 0; k < nd; k++) {
        json_t *d = json_array_get(s, k);
        if (!json_is_integer(d) || json_integer_value(d) < 1 ||
            json_integer_value(d) > INT32_MAX)
            return PFAIL(x, "%s: tensor " NAME_FMT ": \"shape\"[%zu] must be an integer in "
                            "[1, %d]", x->label, name, k, INT32_MAX);
        dim[2 - nd + k] = json_integer_value(d); /* [n] reads as 1 x n */
    }
    e->ndim = (int)nd;
    e->rows = (int)dim[0];
    e->cols = (int)dim[1];
    e->numel = (size_t)dim[0] * (size_t)dim[1];
    return 0;
}

static int parse_offsets(const parse_ctx *x, const char *name, json_t *v, entry *e)
{
    json_t *o = json_object_get(v, "data_offsets");
    if (!o) return PFAIL(x, "%s: tensor " NAME_FMT ": \"data_offsets\" is missing", x->label, name);
    json_t *a = json_array_get(o, 0), *b = json_array_get(o, 1);
    if (!json_is_array(o) || json_array_size(o) != 2 || !json_is_integer(a) || !json_is_integer(b))
        return PFAIL(x, "%s: tensor " NAME_FMT ": \"data_offsets\" must be two integers", x->label,
                     name);
    long long lo = json_integer_value(a), hi = json_integer_value(b);
    if (lo < 0 || hi < lo || (unsigned long long)hi > x->data_len)
        return PFAIL(x, "%s: tensor " NAME_FMT ": \"data_offsets\" [%lld, %lld] are outside the "
                        "data section of %zu bytes", x->label, name, lo, hi, x->data_len);
    /* numel can exceed what fits in the file; compare without overflow. */
    size_t have = (size_t)(hi - lo);
    if (e->numel > have / (size_t)e->dtype_bytes || have != e->numel * (size_t)e->dtype_bytes)
        return PFAIL(x, "%s: tensor " NAME_FMT ": \"data_offsets\" [%lld, %lld] span %zu bytes, "
                        "dtype and shape need %zu x %d", x->label, name, lo, hi, have, e->numel,
                     e->dtype_bytes);
    e->begin = (size_t)lo;
    e->end = (size_t)hi;
    return 0;
}

static int parse_entry(const parse_ctx *x, const char *name, json_t *v, entry *e)
{
    if (!json_is_object(v))
        return PFAIL(x, "%s: tensor " NAME_FMT ": entry is not a JSON object", x->label, name);
    if (name[0] == '\0') return PFAIL(x, "%s: a tensor has an empty name", x->label);
    const char *key;
    json_t *val;
    json_object_foreach(v, key, val)
    {
        if (strcmp(key, "dtype") && strcmp(key, "shape") && strcmp(key, "data_offsets"))
            return PFAIL(x, "%s: tensor " NAME_FMT ": unknown field '%.40s' (expected dtype, "
                            "shape, data_offsets)", x->label, name, key);
    }
    e->name = name;
    if (parse_dtype(x, name, v, e) || parse_shape(x, name, v, e) || parse_offsets(x, name, v, e))
        return -1;
    return 0;
}

/* By begin, then end (parse_entry refuses empty tensors: ends differ only
 * where offsets overlap). */
static int by_begin(const void *pa, const void *pb)
{
    const entry *a = *(const entry *const *)pa, *b = *(const entry *const *)pb;
    if (a->begin != b->begin) return (a->begin > b->begin) - (a->begin < b->begin);
    return (a->end > b->end) - (a->end < b->end);
}

/* The tensors tile the data section, as the safetensors format asks (its
 * reference reader refuses the rest): no overlap, no hole, nothing after the
 * last. Bytes no tensor covers would be read by no check but the data's
 * checksum, which other tools' files do not carry: an appended or spliced
 * file would load as if whole. */
static int check_layout(const parse_ctx *x, entry *e, size_t n, entry **order)
{
    for (size_t i = 0; i < n; i++) order[i] = &e[i];
    qsort(order, n, sizeof *order, by_begin);
    int rc = 0;
    size_t covered = 0; /* bytes [0, covered) lie in the tensors so far */
    /* the scan stops at the first overlap, so the tensor before a (by offset)
     * is the one that ends at covered: the one a overlaps */
    for (size_t i = 0; i < n && rc == 0; i++) {
        const entry *a = order[i];
        if (i > 0 && a->begin < covered)
            rc = PFAIL(x, "%s: tensors " NAME_FMT " and " NAME_FMT ": \"data_offsets\" overlap "
                          "([%zu, %zu) and [%zu, %zu))", x->label, order[i - 1]->name, a->name,
                       order[i - 1]->begin, order[i - 1]->end, a->begin, a->end);
        else if (a->begin > covered)
            rc = PFAIL(x, "%s: bytes [%zu, %zu) of the data section belong to no tensor (tensor "
                          NAME_FMT " starts at %zu): safetensors data has no holes; the file was "
                          "spliced or its offsets edited", x->label, covered, a->begin, a->name,
                       a->begin);
        if (a->end > covered) covered = a->end;
    }
    if (rc == 0 && n == 0 && x->data_len > 0)
        rc = PFAIL(x, "%s: the header lists no tensor, and %zu bytes of data follow it", x->label,
                   x->data_len);
    else if (rc == 0 && covered < x->data_len)
        rc = PFAIL(x, "%s: %zu bytes follow the last tensor's data (the tensors end at byte %zu of "
                      "a %zu-byte data section): the file was appended to, or its offsets edited",
                   x->label, x->data_len - covered, covered, x->data_len);
    return rc;
}

/* ------------------------------------------------------------------ metadata */

static int check_meta(const parse_ctx *x, json_t *meta)
{
    if (!json_is_object(meta))
        return PFAIL(x, "%s: \"__metadata__\" is not a JSON object", x->label);
    const char *key;
    json_t *val;
    json_object_foreach(meta, key, val)
    {
        if (!json_is_string(val))
            return PFAIL(x, "%s: \"__metadata__\" value of '%.80s' is not a string", x->label, key);
    }
    return 0;
}

static entry *find_entry(const tg_checkpoint *c, const char *name)
{
    for (size_t i = 0; i < c->n; i++)
        if (strcmp(c->e[i].name, name) == 0) return &c->e[i];
    return NULL;
}

/* The extras list is JSON inside a metadata string, parsed by jansson too. */
static int mark_extras(const parse_ctx *x, tg_checkpoint *c)
{
    const char *s = tg_checkpoint_meta(c, TG_CKPT_EXTRAS_KEY);
    if (!s) return 0;
    json_error_t jerr;
    json_t *list = json_loads(s, JSON_REJECT_DUPLICATES, &jerr);
    int rc = 0;
    if (!json_is_array(list))
        rc = PFAIL(x, "%s: \"__metadata__\" key '" TG_CKPT_EXTRAS_KEY "' is not a JSON list of "
                      "tensor names", x->label);
    for (size_t i = 0; rc == 0 && i < json_array_size(list); i++) {
        json_t *nm = json_array_get(list, i);
        entry *e = json_is_string(nm) ? find_entry(c, json_string_value(nm)) : NULL;
        if (!e)
            rc = PFAIL(x, "%s: \"__metadata__\" key '" TG_CKPT_EXTRAS_KEY "' item %zu names no "
                          "tensor of the file", x->label, i);
        else
            e->is_extra = 1;
    }
    json_decref(list);
    return rc;
}

static int index_meta(const parse_ctx *x, tg_checkpoint *c)
{
    if (!c->meta) return 0;
    c->n_meta = json_object_size(c->meta);
    c->meta_keys = calloc(c->n_meta ? c->n_meta : 1, sizeof *c->meta_keys);
    if (!c->meta_keys) return PFAIL(x, "%s: out of memory", x->label);
    size_t i = 0;
    const char *key;
    json_t *val;
    json_object_foreach(c->meta, key, val)
    {
        (void)val;
        if (strcmp(key, TG_CKPT_CRC_KEY) != 0 && strcmp(key, TG_CKPT_HEADER_CRC_KEY) != 0)
            c->meta_keys[i++] = key;
    }
    c->n_meta = i;
    return 0;
}

/* ------------------------------------------------------------------ header checksum */

static int by_string(const void *pa, const void *pb)
{
    return strcmp(*(const char *const *)pa, *(const char *const *)pb);
}

/* The keys of object o but skip, in byte order; NULL when out of memory. */
static const char **sorted_keys(json_t *o, const char *skip, size_t *n)
{
    const char **keys = malloc((json_object_size(o) + 1) * sizeof *keys);
    if (!keys) return NULL;
    size_t k = 0;
    const char *key;
    json_t *val;
    json_object_foreach(o, key, val)
    {
        (void)val;
        if (!skip || strcmp(key, skip) != 0) keys[k++] = key;
    }
    qsort(keys, k, sizeof *keys, by_string);
    *n = k;
    return keys;
}

static uint32_t crc_string(uint32_t crc, const char *s)
{
    return tg_ckpt_crc32(crc, s, strlen(s) + 1); /* with its 0 byte */
}

static uint32_t crc_integers(uint32_t crc, json_t *list)
{
    for (size_t i = 0; i < json_array_size(list); i++) {
        char num[32];
        int n = snprintf(num, sizeof num, "%" JSON_INTEGER_FORMAT ",",
                         json_integer_value(json_array_get(list, i)));
        crc = tg_ckpt_crc32(crc, num, (size_t)n);
    }
    return tg_ckpt_crc32(crc, "", 1);
}

static int crc_metadata(json_t *meta, uint32_t *crc)
{
    size_t n;
    const char **keys = sorted_keys(meta, TG_CKPT_HEADER_CRC_KEY, &n);
    if (!keys) return -1;
    for (size_t i = 0; i < n; i++) {
        *crc = crc_string(*crc, keys[i]);
        *crc = crc_string(*crc, json_string_value(json_object_get(meta, keys[i])));
    }
    free(keys);
    return 0;
}

int tg_ckpt_header_crc(json_t *root, uint32_t *crc)
{
    size_t n;
    const char **keys = sorted_keys(root, NULL, &n);
    if (!keys) return -1;
    int rc = 0;
    *crc = 0;
    for (size_t i = 0; rc == 0 && i < n; i++) {
        json_t *v = json_object_get(root, keys[i]);
        *crc = crc_string(*crc, keys[i]);
        if (strcmp(keys[i], "__metadata__") == 0) {
            rc = crc_metadata(v, crc);
            continue;
        }
        *crc = crc_string(*crc, json_string_value(json_object_get(v, "dtype")));
        *crc = crc_integers(*crc, json_object_get(v, "shape"));
        *crc = crc_integers(*crc, json_object_get(v, "data_offsets"));
    }
    free(keys);
    return rc;
}

/* 0 when the value of metadata key is 8 lowercase hex digits, as the
 * writer formats a CRC; else -1, naming the key. */
static int crc_value_ok(const parse_ctx *x, const char *key, const char *value)
{
    if (strlen(value) == 8 && strspn(value, "0123456789abcdef") == 8) return 0;
    return PFAIL(x, "%s: \"__metadata__\" key '%s' is not 8 lowercase hex digits", x->label, key);
}

int tg_ckpt_near_header_crc_key(const char *key)
{
    const char *name = TG_CKPT_HEADER_CRC_KEY;
    size_t len = strlen(name), klen = strlen(key), i = 0;
    while (i < klen && key[i] == name[i]) i++; /* the first difference */
    if (klen == len) /* one byte changed: the rest the same */
        return i < len && strcmp(key + i + 1, name + i + 1) == 0;
    /* name's bytes i and i+1 became one */
    return klen + 1 == len && i < klen && strcmp(key + i + 1, name + i + 2) == 0;
}

/* A metadata key that is the header checksum's name damaged by one byte:
 * it would otherwise turn the header's check off (the file would load as
 * one without the key, as older files and other tools' do). -1 naming it,
 * else 0. */
static int damaged_header_crc_key(const parse_ctx *x, const tg_checkpoint *c)
{
    const char *key;
    json_t *val;
    json_object_foreach(c->meta, key, val)
    {
        if (tg_ckpt_near_header_crc_key(key))
            return PFAIL(x, "%s: \"__metadata__\" key '%.80s' is '" TG_CKPT_HEADER_CRC_KEY "' with "
                            "one byte changed: the file looks damaged", x->label, key);
    }
    return 0;
}

/* The header against TG_CKPT_HEADER_CRC_KEY, when the file has one. */
static int check_header_crc(const parse_ctx *x, const tg_checkpoint *c)
{
    const char *want = tg_checkpoint_meta(c, TG_CKPT_HEADER_CRC_KEY);
    if (!want) return c->meta ? damaged_header_crc_key(x, c) : 0;
    if (crc_value_ok(x, TG_CKPT_HEADER_CRC_KEY, want) != 0) return -1;
    uint32_t crc;
    if (tg_ckpt_header_crc(c->root, &crc) != 0) return PFAIL(x, "%s: out of memory", x->label);
    char got[16];
    snprintf(got, sizeof got, "%08" PRIx32, crc);
    if (strcmp(got, want) != 0)
        return PFAIL(x, "%s: the header (its metadata, tensor names, shapes and offsets) does not "
                        "match its checksum (crc32 %s, its '" TG_CKPT_HEADER_CRC_KEY "' says %s): "
                        "the file is damaged, or a tool changed the header and kept that key",
                     x->label, got, want);
    return 0;
}

/* The data section against TG_CKPT_CRC_KEY, when the file has one. */
static int check_crc(const parse_ctx *x, const tg_checkpoint *c, uint32_t crc)
{
    const char *want = tg_checkpoint_meta(c, TG_CKPT_CRC_KEY);
    if (!want) return 0;
    if (crc_value_ok(x, TG_CKPT_CRC_KEY, want) != 0) return -1;
    char got[16]; /* as the writer formats it (checkpoint_save.c) */
    snprintf(got, sizeof got, "%08" PRIx32, crc);
    if (strcmp(got, want) != 0)
        return PFAIL(x, "%s: the data section (%zu bytes) does not match its checksum (crc32 "
                        "%s, the header's '" TG_CKPT_CRC_KEY "' says %s): the file is "
                        "damaged, or a tool changed its tensors and kept that key",
                     x->label, x->data_len, got, want);
    return 0;
}

/* ------------------------------------------------------------------ values */

/* Bytes [off, off + n) of the data section (n <= CHUNK): a pointer into a
 * parse's copy, or buf with them read from the file. NULL when the file
 * ends first or a read fails: *got bytes were read, errno says why (0: the
 * file ended). */
static const unsigned char *data_bytes(const tg_checkpoint *c, size_t off, size_t n,
                                       unsigned char *buf, size_t *got)
{
    if (c->fd < 0) return c->data + off;
    size_t have = 0;
    while (have < n) {
        ssize_t r = pread(c->fd, buf + have, n - have, (off_t)(c->data_at + off + have));
        if (r < 0 && errno == EINTR) continue;
        if (r <= 0) {
            if (r == 0) errno = 0;
            *got = have;
            return NULL;
        }
        have += (size_t)r;
    }
    return buf;
}

/* Values first .. first + count - 1 of e, from their bytes at src: each
 * checked, and converted into out[first..] when out is not NULL. -1 with a
 * message at the first that is not finite or does not fit in tg_real. */
static int check_values(const parse_ctx *x, const entry *e, const unsigned char *src,
                        size_t first, size_t count, tg_real *out)
{
    for (size_t k = 0; k < count; k++) {
        size_t i = first + k;
        double d;
        if (e->dtype_bytes == 4) {
            float f;
            memcpy(&f, src + 4 * k, 4); /* unaligned, little-endian host */
            d = f;
        } else {
            memcpy(&d, src + 8 * k, 8);
        }
        tg_real r = (tg_real)d;
        if (!isfinite(d))
            return PFAIL(x, "%s: tensor " NAME_FMT " holds %s at index %zu", x->label, e->name,
                         isnan(d) ? "NaN" : "an infinity", i);
        if (!isfinite(r))
            return PFAIL(x, "%s: tensor " NAME_FMT ": value %g at index %zu does not fit in %s",
                         x->label, e->name, d, i, TG_REAL_NAME);
        if (out) out[i] = r;
    }
    return 0;
}

/* Reads tensor e's bytes a chunk at a time (into buf, CHUNK bytes or the
 * tensor's if fewer, for a file): their CRC-32 into *crc, and each value
 * checked and converted into out (when not NULL) until the first bad one,
 * whose message is left in x's err with *bad set (no other value is checked
 * once *bad is set; the checksum goes on to the end). -1 with a message
 * when the file cannot be read. */
static int scan_entry(const parse_ctx *x, const tg_checkpoint *c, const entry *e,
                      unsigned char *buf, tg_real *out, uint32_t *crc, int *bad)
{
    size_t size = e->end - e->begin, done = 0;
    uint32_t sum = 0;
    while (done < size) {
        size_t n = size - done < CHUNK ? size - done : CHUNK, got = 0;
        const unsigned char *p = data_bytes(c, e->begin + done, n, buf, &got);
        if (!p) {
            int en = errno;
            return PFAIL(x, "%s: read failed after %zu of %zu bytes: %s", x->label,
                         c->data_at + e->begin + done + got, c->data_at + c->data_len,
                         en ? strerror(en) : "file shrank");
        }
        sum = tg_ckpt_crc32(sum, p, n);
        size_t w = (size_t)e->dtype_bytes;
        if (!*bad && check_values(x, e, p, done / w, n / w, out)) *bad = 1;
        done += n;
    }
    *crc = sum;
    return 0;
}

/* Every tensor read once: its checksum kept (to know it again when it is
 * loaded), the data section's checksum (the tensors tile it) into
 * *data_crc, and every value checked, the first bad one's message left in
 * x's err with *bad set, for the caller to report after the checksums. */
static int scan_all(const parse_ctx *x, tg_checkpoint *c, uint32_t *data_crc, int *bad)
{
    unsigned char *buf = NULL;
    if (c->fd >= 0 && c->n > 0 && !(buf = malloc(CHUNK)))
        return PFAIL(x, "%s: out of memory", x->label);
    int rc = 0;
    /* in header order, so the first bad value reported is the one that
     * converting the tensors in that order met first */
    for (size_t i = 0; rc == 0 && i < c->n; i++)
        rc = scan_entry(x, c, &c->e[i], buf, NULL, &c->e[i].crc, bad);
    free(buf);
    uLong whole = crc32(0L, Z_NULL, 0);
    for (size_t i = 0; rc == 0 && i < c->n; i++)
        whole = crc32_combine(whole, c->order[i]->crc,
                              (z_off_t)(c->order[i]->end - c->order[i]->begin));
    *data_crc = (uint32_t)whole;
    return rc;
}

/* Tensor e, read again, into out: values the open checked, so the only
 * failures are a file that cannot be read or that was changed since. */
static int read_entry(const tg_checkpoint *c, const entry *e, tg_real *out, char *err,
                      size_t errlen)
{
    parse_ctx x = {c->label, err, errlen, c->data_len};
    unsigned char *buf = NULL;
    size_t room = e->end - e->begin < CHUNK ? e->end - e->begin : CHUNK; /* scan_entry's reads */
    if (c->fd >= 0 && !(buf = malloc(room ? room : 1)))
        return PFAIL(&x, "%s: out of memory", c->label);
    uint32_t crc = 0;
    int bad = 0, rc = scan_entry(&x, c, e, buf, out, &crc, &bad);
    free(buf);
    if (rc == 0 && crc != e->crc)
        rc = PFAIL(&x, "%s: tensor " NAME_FMT " changed in the file since it was opened (crc32 "
                       "%08" PRIx32 ", %08" PRIx32 " then): another program wrote over the file "
                       "in place", c->label, e->name, crc, e->crc);
    return rc == 0 && !bad ? 0 : -1;
}

/* ------------------------------------------------------------------ parse */

static uint64_t read_le64(const unsigned char *b)
{
    uint64_t v = 0;
    for (int k = 7; k >= 0; k--) v = (v << 8) | b[k];
    return v;
}

static int parse_header_len(const parse_ctx *x, size_t len, const unsigned char *b, size_t *hlen)
{
    if (len < 8)
        return PFAIL(x, "%s: file is %zu bytes, too short for the 8-byte header length", x->label,
                     len);
    uint64_t h = read_le64(b);
    if (h == 0) return PFAIL(x, "%s: header length is 0", x->label);
    if (h > TG_CKPT_MAX_HEADER)
        return PFAIL(x, "%s: not a safetensors file (its first 8 bytes give a header length of "
                        "%" PRIu64 ", over the limit of %u bytes)", x->label, h,
                     TG_CKPT_MAX_HEADER);
    if (h > len - 8)
        return PFAIL(x, "%s: header length %" PRIu64 " goes beyond the end of the file (%zu "
                        "bytes)", x->label, h, len);
    *hlen = (size_t)h;
    return 0;
}

static int parse_entries(const parse_ctx *x, tg_checkpoint *c)
{
    json_t *meta = json_object_get(c->root, "__metadata__");
    if (meta && check_meta(x, meta)) return -1;
    c->meta = meta;
    c->n = json_object_size(c->root) - (meta ? 1 : 0);
    c->e = calloc(c->n ? c->n : 1, sizeof *c->e);
    c->order = malloc((c->n ? c->n : 1) * sizeof *c->order);
    if (!c->e || !c->order) return PFAIL(x, "%s: out of memory", x->label);
    size_t i = 0;
    const char *key;
    json_t *val;
    json_object_foreach(c->root, key, val)
    {
        if (strcmp(key, "__metadata__") == 0) continue;
        if (parse_entry(x, key, val, &c->e[i++])) return -1;
    }
    return check_layout(x, c->e, c->n, c->order);
}

/* A checkpoint named label, reading nothing yet; NULL out of memory. */
static tg_checkpoint *new_checkpoint(const char *label)
{
    tg_checkpoint *c = calloc(1, sizeof *c);
    if (!c) return NULL;
    c->fd = -1;
    c->label = malloc(strlen(label) + 1);
    if (!c->label) {
        free(c);
        return NULL;
    }
    strcpy(c->label, label);
    return c;
}

/* Every check, on c with its data section set (file or copy) and the
 * header's hlen bytes of JSON. 0, or -1 with the message. */
static int check_all(parse_ctx *x, tg_checkpoint *c, const char *header, size_t hlen)
{
    x->data_len = c->data_len;
    json_error_t jerr;
    c->root = json_loadb(header, hlen, JSON_REJECT_DUPLICATES, &jerr);
    int rc = 0, bad = 0;
    uint32_t data_crc = 0;
    if (!c->root)
        rc = PFAIL(x, "%s: header is not valid JSON: %s (line %d, column %d)", x->label, jerr.text,
                   jerr.line, jerr.column);
    else if (!json_is_object(c->root))
        rc = PFAIL(x, "%s: header is not a JSON object", x->label);
    if (rc == 0) rc = parse_entries(x, c);
    if (rc == 0) rc = index_meta(x, c);
    if (rc == 0) rc = check_header_crc(x, c); /* first: it covers the data's checksum */
    /* one pass over the data: the checksums, and the values, whose failure
     * is reported after the checksum's (a damaged byte is named as such) */
    if (rc == 0) rc = scan_all(x, c, &data_crc, &bad);
    if (rc == 0) rc = check_crc(x, c, data_crc);
    if (rc == 0) rc = mark_extras(x, c);
    if (rc == 0 && bad) rc = -1; /* its message is in err */
    return rc;
}

tg_checkpoint *tg_checkpoint_parse(const void *bytes, size_t len, const char *label, char *err,
                                   size_t errlen)
{
    parse_ctx x = {label ? label : "checkpoint", err, errlen, 0};
    const unsigned char *b = bytes;
    size_t hlen = 0;
    if (tg_ckpt_host_ok(err, errlen) || parse_header_len(&x, len, b, &hlen)) return NULL;

    tg_checkpoint *c = new_checkpoint(x.label);
    if (c) {
        c->data_at = 8 + hlen;
        c->data_len = len - 8 - hlen;
        c->data = malloc(c->data_len ? c->data_len : 1); /* the bytes are not kept */
    }
    if (!c || !c->data) {
        tg_ckpt_fail(err, errlen, "%s: out of memory", x.label);
        tg_checkpoint_close(c);
        return NULL;
    }
    memcpy(c->data, b + c->data_at, c->data_len);
    if (check_all(&x, c, (const char *)b + 8, hlen) != 0) {
        tg_checkpoint_close(c);
        return NULL;
    }
    return c;
}

/* Up to n bytes from fd: how many were read; fewer when a read failed
 * (errno says why) or the file ended first (errno 0). */
static size_t read_upto(int fd, void *buf, size_t n)
{
    size_t got = 0;
    while (got < n) {
        ssize_t r = read(fd, (char *)buf + got, n - got);
        if (r < 0 && errno == EINTR) continue;
        if (r <= 0) {
            if (r == 0) errno = 0;
            break;
        }
        got += (size_t)r;
    }
    return got;
}

/* The regular file at path, open, its size in *size; -1 with a message. */
static int open_file(const char *path, size_t *size, char *err, size_t errlen)
{
    /* O_NONBLOCK: a FIFO with no writer would block open() forever, before
     * fstat could refuse it; reads of a regular file ignore the flag */
    int fd = open(path, O_RDONLY | O_CLOEXEC | O_NONBLOCK);
    if (fd < 0) return tg_ckpt_fail(err, errlen, "%s: cannot open: %s", path, strerror(errno));
    struct stat st;
    if (fstat(fd, &st) != 0)
        tg_ckpt_fail(err, errlen, "%s: cannot stat: %s", path, strerror(errno));
    else if (!S_ISREG(st.st_mode))
        tg_ckpt_fail(err, errlen, "%s: %s", path,
                     S_ISDIR(st.st_mode) ? "is a directory, not a checkpoint file"
                                         : "is not a regular file");
    else if ((off_t)(size_t)st.st_size != st.st_size) /* a 32-bit build: not held whole */
        tg_ckpt_fail(err, errlen, "%s: %lld bytes, more than this build can address", path,
                     (long long)st.st_size);
    else {
        *size = (size_t)st.st_size;
        return fd;
    }
    close(fd);
    return -1;
}

/* The header of the regular file open on fd (size bytes), NUL-terminated,
 * its length in *len, when parse_header_len takes it (no message); else
 * NULL. */
static char *read_header_text(int fd, off_t size, size_t *len)
{
    unsigned char b[8];
    parse_ctx quiet = {"", NULL, 0, 0};
    if (read_upto(fd, b, sizeof b) < sizeof b || parse_header_len(&quiet, (size_t)size, b, len))
        return NULL;
    char *text = malloc(*len + 1);
    if (text && read_upto(fd, text, *len) == *len) {
        text[*len] = '\0';
        return text;
    }
    free(text);
    return NULL;
}

/* The JSON is parsed only when the key's quoted name is in the text: a
 * crafted 100 MB header of valid JSON took 2 GB and 19 s to parse. */
int tg_checkpoint_peek_meta(const char *path, const char *key, char *val, size_t n)
{
    struct stat st;
    if (stat(path, &st) != 0 || !S_ISREG(st.st_mode)) return 0; /* no device is opened */
    /* O_NONBLOCK: a FIFO put in its place since would block open() */
    int fd = open(path, O_RDONLY | O_CLOEXEC | O_NONBLOCK | O_NOCTTY);
    if (fd < 0) return 0;
    size_t len = 0;
    char *text = fstat(fd, &st) == 0 && S_ISREG(st.st_mode)
                     ? read_header_text(fd, st.st_size, &len)
                     : NULL;
    close(fd);
    size_t quoted_len = strlen(key) + 3;
    char *quoted = text ? malloc(quoted_len) : NULL;
    json_t *root = NULL;
    if (quoted) {
        snprintf(quoted, quoted_len, "\"%s\"", key);
        if (strstr(text, quoted)) /* as the loader parses it: a NUL byte is no end */
            root = json_loadb(text, len, JSON_REJECT_DUPLICATES, NULL);
    }
    free(quoted);
    free(text);
    /* jansson's getters take NULL and non-objects: garbage reads as no key */
    const char *v = json_string_value(json_object_get(json_object_get(root, "__metadata__"), key));
    if (v && val && n > 0) snprintf(val, n, "%s", v);
    int found = v != NULL;
    json_decref(root);
    return found;
}

tg_checkpoint *tg_checkpoint_open(const char *path, char *err, size_t errlen)
{
    parse_ctx x = {path, err, errlen, 0};
    size_t len = 0, hlen = 0;
    if (tg_ckpt_host_ok(err, errlen)) return NULL;
    int fd = open_file(path, &len, err, errlen);
    if (fd < 0) return NULL;
    /* the header only: the data is read a chunk at a time (check_all),
     * and again for each tensor asked for */
    unsigned char b[8] = {0};
    size_t want = len < 8 ? len : 8, got = read_upto(fd, b, want);
    char *header = NULL;
    int rc = 0;
    if (got < want)
        rc = PFAIL(&x, "%s: read failed after %zu of %zu bytes: %s", path, got, len,
                   errno ? strerror(errno) : "file shrank");
    if (rc == 0) rc = parse_header_len(&x, len, b, &hlen);
    if (rc == 0 && !(header = malloc(hlen)))
        rc = PFAIL(&x, "%s: out of memory reading its header of %zu bytes", path, hlen);
    if (rc == 0 && (got = read_upto(fd, header, hlen)) < hlen)
        rc = PFAIL(&x, "%s: read failed after %zu of %zu bytes: %s", path, 8 + got, len,
                   errno ? strerror(errno) : "file shrank");
    tg_checkpoint *c = rc == 0 ? new_checkpoint(path) : NULL;
    if (rc == 0 && !c) rc = PFAIL(&x, "%s: out of memory", path);
    if (rc == 0) {
        c->fd = fd; /* closed with c */
        fd = -1;
        c->data_at = 8 + hlen;
        c->data_len = len - 8 - hlen;
        rc = check_all(&x, c, header, hlen);
    }
    free(header);
    if (fd >= 0) close(fd);
    if (rc != 0) {
        tg_checkpoint_close(c);
        return NULL;
    }
    return c;
}

void tg_checkpoint_close(tg_checkpoint *c)
{
    if (!c) return;
    if (c->fd >= 0) close(c->fd);
    json_decref(c->root);
    free(c->meta_keys);
    free(c->e);
    free(c->order);
    free(c->data);
    free(c->label);
    free(c);
}

/* ------------------------------------------------------------------ queries */

size_t tg_checkpoint_tensor_count(const tg_checkpoint *c) { return c->n; }

const char *tg_checkpoint_tensor_name(const tg_checkpoint *c, size_t i)
{
    return i < c->n ? c->e[i].name : NULL;
}

int tg_checkpoint_tensor_shape(const tg_checkpoint *c, const char *name, int *rows, int *cols)
{
    const entry *e = find_entry(c, name);
    if (!e) return -1;
    if (rows) *rows = e->rows;
    if (cols) *cols = e->cols;
    return 0;
}

const char *tg_checkpoint_meta(const tg_checkpoint *c, const char *key)
{
    return c->meta ? json_string_value(json_object_get(c->meta, key)) : NULL;
}

size_t tg_checkpoint_meta_count(const tg_checkpoint *c) { return c->n_meta; }

const char *tg_checkpoint_meta_key(const tg_checkpoint *c, size_t i)
{
    return i < c->n_meta ? c->meta_keys[i] : NULL;
}

int tg_checkpoint_meta_u64(const tg_checkpoint *c, const char *key, uint64_t *out, char *err,
                           size_t errlen)
{
    const char *s = tg_checkpoint_meta(c, key);
    if (!s) return tg_ckpt_fail(err, errlen, "%s: metadata '%s' is missing", c->label, key);
    uint64_t v = 0;
    const char *p = s;
    for (; *p >= '0' && *p <= '9'; p++) {
        unsigned digit = (unsigned)(*p - '0');
        if (v > (UINT64_MAX - digit) / 10) break;
        v = v * 10 + digit;
    }
    if (p == s || *p != '\0')
        return tg_ckpt_fail(err, errlen, "%s: metadata '%s' = '%.40s' is not an unsigned integer",
                            c->label, key, s);
    *out = v;
    return 0;
}

int tg_checkpoint_meta_rng(const tg_checkpoint *c, const char *key, tg_rng *out, char *err,
                           size_t errlen)
{
    const char *s = tg_checkpoint_meta(c, key);
    if (!s) return tg_ckpt_fail(err, errlen, "%s: metadata '%s' is missing", c->label, key);
    int rc = tg_checkpoint_rng_parse(s, out);
    if (rc == TG_RNG_PARSE_ZERO)
        return tg_ckpt_fail(err, errlen, "%s: metadata '%s' is an all-zero rng state, which no "
                            "generator of ours reaches", c->label, key);
    if (rc != 0)
        return tg_ckpt_fail(err, errlen, "%s: metadata '%s' is not 64 hex digits of rng state",
                            c->label, key);
    return 0;
}

/* ------------------------------------------------------------------ loading */

static void shape_str(char *buf, size_t n, int ndim, int rows, int cols)
{
    if (ndim == 1)
        snprintf(buf, n, "[%d]", cols);
    else
        snprintf(buf, n, "[%d, %d]", rows, cols);
}

/* A 1-D [n] file tensor fits a 1 x n parameter; otherwise shapes are equal. */
static int check_param(const tg_checkpoint *c, const char *name, const tg_tensor *t, char *err,
                       size_t errlen)
{
    const entry *e = find_entry(c, name);
    char want[48], have[48];
    shape_str(want, sizeof want, 2, t->rows, t->cols);
    if (!e || e->is_extra)
        return tg_ckpt_fail(err, errlen, "%s: tensor " NAME_FMT " (shape %s) is missing from the "
                                         "file", c->label, name, want);
    if (e->rows != t->rows || e->cols != t->cols) {
        shape_str(have, sizeof have, e->ndim, e->rows, e->cols);
        return tg_ckpt_fail(err, errlen, "%s: tensor " NAME_FMT " has shape %s in the file, the "
                                         "model expects %s", c->label, name, have, want);
    }
    return 0;
}

int tg_checkpoint_load_params(const tg_checkpoint *c, tg_params *p, char *err, size_t errlen)
{
    size_t np = tg_params_count(p);
    for (size_t i = 0; i < np; i++)
        if (check_param(c, tg_params_name(p, i), tg_params_at(p, i), err, errlen)) return -1;
    for (size_t i = 0; i < c->n; i++)
        if (!c->e[i].is_extra && !tg_params_find(p, c->e[i].name))
            return tg_ckpt_fail(err, errlen, "%s: tensor " NAME_FMT " in the file is not a "
                                             "parameter of this model", c->label, c->e[i].name);
    /* Everything matched: only now touch the model. */
    for (size_t i = 0; i < np; i++) {
        tg_tensor *t = tg_params_at(p, i);
        if (read_entry(c, find_entry(c, tg_params_name(p, i)), t->data, err, errlen)) return -1;
    }
    return 0;
}

int tg_checkpoint_read_array(const tg_checkpoint *c, const char *name, tg_real *out, size_t numel,
                             char *err, size_t errlen)
{
    const entry *e = find_entry(c, name);
    if (!e)
        return tg_ckpt_fail(err, errlen, "%s: tensor " NAME_FMT " is missing from the file",
                            c->label, name);
    if (e->numel != numel)
        return tg_ckpt_fail(err, errlen, "%s: tensor " NAME_FMT " has %zu values in the file, "
                                         "%zu expected", c->label, name, e->numel, numel);
    return read_entry(c, e, out, err, errlen);
}

const char *tg_checkpoint_label(const tg_checkpoint *c) { return c->label; }

int tg_checkpoint_load(const char *path, tg_params *p, char *err, size_t errlen)
{
    tg_checkpoint *c = tg_checkpoint_open(path, err, errlen);
    if (!c) return -1;
    int rc = tg_checkpoint_load_params(c, p, err, errlen);
    tg_checkpoint_close(c);
    return rc;
}

/* ------------------------------------------------------------------ rng */

void tg_checkpoint_rng_hex(const tg_rng *r, char out[TG_RNG_HEX_LEN])
{
    for (int k = 0; k < 4; k++) snprintf(out + 16 * k, 17, "%016" PRIx64, r->s[k]);
}

static int hex_digit(char ch)
{
    if (ch >= '0' && ch <= '9') return ch - '0';
    if (ch >= 'a' && ch <= 'f') return ch - 'a' + 10;
    if (ch >= 'A' && ch <= 'F') return ch - 'A' + 10;
    return -1;
}

int tg_checkpoint_rng_parse(const char *hex, tg_rng *r)
{
    if (!hex || strlen(hex) != 64) return TG_RNG_PARSE_MALFORMED;
    uint64_t s[4] = {0};
    for (int i = 0; i < 64; i++) {
        int d = hex_digit(hex[i]);
        if (d < 0) return TG_RNG_PARSE_MALFORMED;
        s[i / 16] = (s[i / 16] << 4) | (uint64_t)d;
    }
    /* here, not in each caller: xoshiro256 never leaves the zero state, so
     * every draw would be 0 and a draw below n (tg_rng_below) would reject
     * them for ever (a resumed run hung) */
    if ((s[0] | s[1] | s[2] | s[3]) == 0) return TG_RNG_PARSE_ZERO;
    memcpy(r->s, s, sizeof s);
    return 0;
}
