/* IDX reader (see idx.h). Layout of an IDX file, all integers big-endian:
 *   u32 magic = 0x0000 <dtype> <ndims>   (dtype 0x08 = unsigned byte)
 *   u32 dim[ndims]
 *   payload: prod(dim) values of dtype
 * The decoded length must equal 4 + 4*ndims + prod(dim) exactly: a shorter
 * file is truncated, a longer one has dimensions that disagree with it. */
#include "idx.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <zlib.h>

#define IDX_DTYPE_UBYTE 0x08u

static idx_status fail(idx_status st, char *msg, size_t cap, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

static idx_status fail(idx_status st, char *msg, size_t cap, const char *fmt, ...)
{
    if (msg && cap) {
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(msg, cap, fmt, ap);
        va_end(ap);
    }
    return st;
}

static uint32_t be32(const uint8_t *p)
{
    return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | (uint32_t)p[3];
}

static int is_gzip(const uint8_t *raw, size_t n) { return n >= 2 && raw[0] == 0x1f && raw[1] == 0x8b; }

/* ------------------------------------------------------------------ decode */

/* Inflates every gzip member of raw into a growing buffer capped at
 * IDX_MAX_BYTES + 64 (the largest header plus the payload cap). */
static idx_status gunzip(const char *name, const uint8_t *raw, size_t n, uint8_t **out,
                         size_t *out_len, char *msg, size_t cap)
{
    const size_t limit = IDX_MAX_BYTES + 64;
    size_t size = n < 1024 ? 4096 : (n * 4 < limit ? n * 4 : limit);
    uint8_t *buf = malloc(size);
    if (!buf) return fail(IDX_ERR_NOMEM, msg, cap, "%s: out of memory (%zu bytes)", name, size);

    z_stream zs;
    memset(&zs, 0, sizeof zs);
    if (inflateInit2(&zs, 16 + MAX_WBITS) != Z_OK) {
        free(buf);
        return fail(IDX_ERR_NOMEM, msg, cap, "%s: cannot initialise zlib", name);
    }
    zs.next_in = (Bytef *)(uintptr_t)raw; /* zlib's API is not const-correct */
    size_t in_left = n, used = 0;
    idx_status st = IDX_OK;
    for (;;) {
        /* Feed at most UINT_MAX bytes at a time (avail_in is a uInt). */
        if (zs.avail_in == 0 && in_left > 0) {
            zs.avail_in = in_left > 0x40000000u ? 0x40000000u : (uInt)in_left;
            in_left -= zs.avail_in;
        }
        if (used == size) {
            if (size >= limit) {
                st = fail(IDX_ERR_FORMAT, msg, cap,
                          "%s: gzip data inflates to more than %zu bytes: larger than the %zu-byte "
                          "IDX size cap",
                          name, limit, limit);
                break;
            }
            size_t nsize = size * 2 < limit ? size * 2 : limit;
            uint8_t *nbuf = realloc(buf, nsize);
            if (!nbuf) {
                st = fail(IDX_ERR_NOMEM, msg, cap, "%s: out of memory (%zu bytes)", name, nsize);
                break;
            }
            buf = nbuf;
            size = nsize;
        }
        size_t room = size - used;
        zs.next_out = buf + used;
        zs.avail_out = room > 0x40000000u ? 0x40000000u : (uInt)room;
        uInt before = zs.avail_out;
        int zr = inflate(&zs, Z_NO_FLUSH);
        used += before - zs.avail_out;
        if (zr == Z_STREAM_END) {
            size_t rest = zs.avail_in + in_left;
            if (rest == 0) break;
            /* Another gzip member follows (as `cat a.gz b.gz` makes), or junk. */
            if (zs.avail_in >= 2 && zs.next_in[0] == 0x1f && zs.next_in[1] == 0x8b) {
                inflateReset(&zs);
                continue;
            }
            st = fail(IDX_ERR_FORMAT, msg, cap,
                      "%s: %zu bytes of trailing garbage after the gzip stream: expected end of "
                      "file or another gzip member",
                      name, rest);
            break;
        }
        if (zr == Z_DATA_ERROR || zr == Z_NEED_DICT || zr == Z_STREAM_ERROR) {
            st = fail(IDX_ERR_FORMAT, msg, cap,
                      "%s: corrupt gzip data at compressed byte %zu: %s", name,
                      (size_t)(zs.next_in - (const Bytef *)raw),
                      zs.msg ? zs.msg : "invalid stream");
            break;
        }
        if (zr == Z_MEM_ERROR) {
            st = fail(IDX_ERR_NOMEM, msg, cap, "%s: zlib ran out of memory", name);
            break;
        }
        if (zr == Z_BUF_ERROR && zs.avail_in == 0 && in_left == 0) {
            st = fail(IDX_ERR_FORMAT, msg, cap,
                      "%s: truncated gzip stream: all %zu compressed bytes read (%zu inflated) "
                      "without reaching the end-of-stream marker",
                      name, n, used);
            break;
        }
        /* Z_OK, or Z_BUF_ERROR with room to make: loop (grow or feed). */
        if (zs.avail_in == 0 && in_left == 0 && zs.avail_out != 0) {
            st = fail(IDX_ERR_FORMAT, msg, cap,
                      "%s: truncated gzip stream: all %zu compressed bytes read (%zu inflated) "
                      "without reaching the end-of-stream marker",
                      name, n, used);
            break;
        }
    }
    inflateEnd(&zs);
    if (st != IDX_OK) {
        free(buf);
        return st;
    }
    *out = buf;
    *out_len = used;
    return IDX_OK;
}

idx_status idx_decode(const char *name, const uint8_t *raw, size_t n, uint8_t **out,
                      size_t *out_len, char *msg, size_t msg_cap)
{
    *out = NULL;
    *out_len = 0;
    if (is_gzip(raw, n)) return gunzip(name, raw, n, out, out_len, msg, msg_cap);
    if (n > IDX_MAX_BYTES + 64)
        return fail(IDX_ERR_FORMAT, msg, msg_cap,
                    "%s: file is %zu bytes: larger than the %zu-byte IDX size cap", name, n,
                    (size_t)(IDX_MAX_BYTES + 64));
    uint8_t *buf = malloc(n ? n : 1);
    if (!buf) return fail(IDX_ERR_NOMEM, msg, msg_cap, "%s: out of memory (%zu bytes)", name, n);
    if (n) memcpy(buf, raw, n);
    *out = buf;
    *out_len = n;
    return IDX_OK;
}

/* ------------------------------------------------------------------ parse */

/* Checks the 4-byte magic: 0x00, 0x00, dtype 0x08, ndims. */
static idx_status check_magic(const char *name, const uint8_t *data, size_t n, uint32_t want,
                              const char *what, size_t header, char *msg, size_t cap)
{
    if (n == 0)
        return fail(IDX_ERR_FORMAT, msg, cap,
                    "%s: empty file: expected an IDX %s header of %zu bytes, got 0 bytes", name,
                    what, header);
    if (n < 4)
        return fail(IDX_ERR_FORMAT, msg, cap,
                    "%s: truncated: expected an IDX %s header of %zu bytes, got %zu bytes", name,
                    what, header, n);
    uint32_t magic = be32(data);
    if (magic == want) return IDX_OK;
    const char *hint = "";
    if (magic == IDX_MAGIC_IMAGES) hint = " (this is an images file)";
    else if (magic == IDX_MAGIC_LABELS) hint = " (this is a labels file)";
    else if ((magic >> 16) == 0 && ((magic >> 8) & 0xff) != IDX_DTYPE_UBYTE)
        hint = " (element type is not unsigned byte 0x08)";
    else if ((magic >> 16) == 0 && (magic & 0xff) != (want & 0xff))
        hint = " (wrong number of dimensions)";
    else if ((magic >> 16) != 0)
        hint = " (not an IDX file)";
    return fail(IDX_ERR_FORMAT, msg, cap,
                "%s: bad magic number 0x%08x: expected 0x%08x (unsigned-byte %s, %u dimension%s)%s",
                name, magic, want, what, want & 0xff, (want & 0xff) == 1 ? "" : "s", hint);
}

/* Compares the decoded length with header + payload. */
static idx_status check_length(const char *name, size_t n, size_t header, uint64_t payload,
                               const char *dims_text, char *msg, size_t cap)
{
    uint64_t want = (uint64_t)header + payload;
    if ((uint64_t)n < want)
        return fail(IDX_ERR_FORMAT, msg, cap,
                    "%s: truncated: header says %s = %llu bytes + %zu-byte header = %llu bytes, "
                    "data has %zu bytes (%llu missing)",
                    name, dims_text, (unsigned long long)payload, header,
                    (unsigned long long)want, n, (unsigned long long)(want - n));
    if ((uint64_t)n > want)
        return fail(IDX_ERR_FORMAT, msg, cap,
                    "%s: dimensions disagree with the size: header says %s = %llu bytes + "
                    "%zu-byte header = %llu bytes, data has %zu bytes (%llu extra)",
                    name, dims_text, (unsigned long long)payload, header,
                    (unsigned long long)want, n, (unsigned long long)(n - want));
    return IDX_OK;
}

idx_status idx_parse_images(const char *name, const uint8_t *data, size_t n, idx_images *out,
                            char *msg, size_t msg_cap)
{
    memset(out, 0, sizeof *out);
    const size_t header = 16;
    idx_status st = check_magic(name, data, n, IDX_MAGIC_IMAGES, "images", header, msg, msg_cap);
    if (st) return st;
    if (n < header)
        return fail(IDX_ERR_FORMAT, msg, msg_cap,
                    "%s: truncated header: expected %zu bytes (magic + 3 dimensions), got %zu "
                    "bytes",
                    name, header, n);
    uint32_t count = be32(data + 4), rows = be32(data + 8), cols = be32(data + 12);
    if (count == 0 || count > IDX_MAX_COUNT)
        return fail(IDX_ERR_FORMAT, msg, msg_cap,
                    "%s: image count %u in header: expected 1..%u", name, count, IDX_MAX_COUNT);
    if (rows == 0 || rows > IDX_MAX_SIDE || cols == 0 || cols > IDX_MAX_SIDE)
        return fail(IDX_ERR_FORMAT, msg, msg_cap,
                    "%s: image size %ux%u in header: expected rows and cols in 1..%u", name, rows,
                    cols, IDX_MAX_SIDE);
    uint64_t payload = (uint64_t)count * rows * cols;
    if (payload > IDX_MAX_BYTES)
        return fail(IDX_ERR_FORMAT, msg, msg_cap,
                    "%s: header says %u images of %ux%u = %llu bytes: larger than the %zu-byte "
                    "cap",
                    name, count, rows, cols, (unsigned long long)payload, IDX_MAX_BYTES);
    char dims[96];
    snprintf(dims, sizeof dims, "%u images of %ux%u", count, rows, cols);
    st = check_length(name, n, header, payload, dims, msg, msg_cap);
    if (st) return st;
    out->pixels = malloc((size_t)payload);
    if (!out->pixels)
        return fail(IDX_ERR_NOMEM, msg, msg_cap, "%s: out of memory (%llu bytes)", name,
                    (unsigned long long)payload);
    memcpy(out->pixels, data + header, (size_t)payload);
    out->count = count;
    out->rows = rows;
    out->cols = cols;
    return IDX_OK;
}

idx_status idx_parse_labels(const char *name, const uint8_t *data, size_t n, int n_classes,
                            idx_labels *out, char *msg, size_t msg_cap)
{
    memset(out, 0, sizeof *out);
    const size_t header = 8;
    if (n_classes < 1 || n_classes > 256)
        return fail(IDX_ERR_FORMAT, msg, msg_cap, "%s: class count %d: expected 1..256", name,
                    n_classes);
    idx_status st = check_magic(name, data, n, IDX_MAGIC_LABELS, "labels", header, msg, msg_cap);
    if (st) return st;
    if (n < header)
        return fail(IDX_ERR_FORMAT, msg, msg_cap,
                    "%s: truncated header: expected %zu bytes (magic + 1 dimension), got %zu bytes",
                    name, header, n);
    uint32_t count = be32(data + 4);
    if (count == 0 || count > IDX_MAX_COUNT)
        return fail(IDX_ERR_FORMAT, msg, msg_cap,
                    "%s: label count %u in header: expected 1..%u", name, count, IDX_MAX_COUNT);
    char dims[64];
    snprintf(dims, sizeof dims, "%u labels", count);
    st = check_length(name, n, header, count, dims, msg, msg_cap);
    if (st) return st;
    const uint8_t *lab = data + header;
    for (uint32_t i = 0; i < count; i++)
        if (lab[i] >= n_classes)
            return fail(IDX_ERR_FORMAT, msg, msg_cap,
                        "%s: label %u at index %u (byte offset %zu) is out of range: expected "
                        "0..%d (%d classes)",
                        name, lab[i], i, header + i, n_classes - 1, n_classes);
    out->labels = malloc(count);
    if (!out->labels)
        return fail(IDX_ERR_NOMEM, msg, msg_cap, "%s: out of memory (%u bytes)", name, count);
    memcpy(out->labels, lab, count);
    out->count = count;
    return IDX_OK;
}

/* ------------------------------------------------------------------ files */

/* Reads a whole file into a malloc'ed buffer (works for pipes too). */
static idx_status read_all(const char *path, uint8_t **out, size_t *out_len, char *msg,
                           size_t cap)
{
    *out = NULL;
    *out_len = 0;
    FILE *f = fopen(path, "rb");
    if (!f) return fail(IDX_ERR_IO, msg, cap, "%s: cannot open: %s", path, strerror(errno));
    size_t size = 1 << 16, used = 0;
    uint8_t *buf = malloc(size);
    idx_status st = IDX_OK;
    if (!buf) st = fail(IDX_ERR_NOMEM, msg, cap, "%s: out of memory", path);
    while (st == IDX_OK) {
        if (used == size) {
            if (size > IDX_MAX_BYTES) {
                st = fail(IDX_ERR_FORMAT, msg, cap,
                          "%s: file is larger than the %zu-byte IDX size cap", path,
                          (size_t)IDX_MAX_BYTES + 64);
                break;
            }
            uint8_t *nbuf = realloc(buf, size * 2);
            if (!nbuf) {
                st = fail(IDX_ERR_NOMEM, msg, cap, "%s: out of memory (%zu bytes)", path, size * 2);
                break;
            }
            buf = nbuf;
            size *= 2;
        }
        size_t got = fread(buf + used, 1, size - used, f);
        used += got;
        if (got == 0) {
            if (ferror(f))
                st = fail(IDX_ERR_IO, msg, cap, "%s: read error: %s", path, strerror(errno));
            break;
        }
    }
    fclose(f);
    if (st != IDX_OK) {
        free(buf);
        return st;
    }
    *out = buf;
    *out_len = used;
    return IDX_OK;
}

/* Reads and decodes; *label is path, or "path (gunzipped)" so that sizes in
 * later messages are understood as decompressed sizes. */
static idx_status load(const char *path, uint8_t **data, size_t *n, char *label, size_t label_cap,
                       char *msg, size_t cap)
{
    uint8_t *raw;
    size_t raw_n;
    idx_status st = read_all(path, &raw, &raw_n, msg, cap);
    if (st) return st;
    snprintf(label, label_cap, "%s%s", path, is_gzip(raw, raw_n) ? " (gunzipped)" : "");
    st = idx_decode(path, raw, raw_n, data, n, msg, cap);
    free(raw);
    return st;
}

idx_status idx_read_images(const char *path, idx_images *out, char *msg, size_t msg_cap)
{
    memset(out, 0, sizeof *out);
    char label[4096];
    uint8_t *data;
    size_t n;
    idx_status st = load(path, &data, &n, label, sizeof label, msg, msg_cap);
    if (st) return st;
    st = idx_parse_images(label, data, n, out, msg, msg_cap);
    free(data);
    return st;
}

idx_status idx_read_labels(const char *path, int n_classes, idx_labels *out, char *msg,
                           size_t msg_cap)
{
    memset(out, 0, sizeof *out);
    char label[4096];
    uint8_t *data;
    size_t n;
    idx_status st = load(path, &data, &n, label, sizeof label, msg, msg_cap);
    if (st) return st;
    st = idx_parse_labels(label, data, n, n_classes, out, msg, msg_cap);
    free(data);
    return st;
}

idx_status idx_check_pair(const char *images_name, const idx_images *im, const char *labels_name,
                          const idx_labels *lb, char *msg, size_t msg_cap)
{
    if (im->count == lb->count) return IDX_OK;
    return fail(IDX_ERR_FORMAT, msg, msg_cap,
                "%s: has %u labels but %s has %u images: expected one label per image",
                labels_name, lb->count, images_name, im->count);
}

void idx_images_free(idx_images *im)
{
    free(im->pixels);
    memset(im, 0, sizeof *im);
}

void idx_labels_free(idx_labels *lb)
{
    free(lb->labels);
    memset(lb, 0, sizeof *lb);
}
