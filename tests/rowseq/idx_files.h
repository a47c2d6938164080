/* Writes small IDX files (plain or gzip) into a temporary folder for the
 * rowseq suites. Header-only: each suite is one executable. */
#ifndef ROWSEQ_IDX_FILES_H
#define ROWSEQ_IDX_FILES_H

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <zlib.h>

#include <criterion/criterion.h>

/* mkdtemp is POSIX 2008, declared by <stdlib.h> with _POSIX_C_SOURCE. */
static inline void tmpdir_make(char *dir, size_t n)
{
    const char *base = getenv("TMPDIR");
    snprintf(dir, n, "%s/rowseq-test-XXXXXX", base && *base ? base : "/tmp");
    cr_assert_not_null(mkdtemp(dir), "mkdtemp %s", dir);
}

static inline void tmpdir_remove(const char *dir)
{
    char cmd[4200];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
    cr_assert_eq(system(cmd), 0);
}

static inline void put_be32(uint8_t *p, uint32_t v)
{
    p[0] = (uint8_t)(v >> 24);
    p[1] = (uint8_t)(v >> 16);
    p[2] = (uint8_t)(v >> 8);
    p[3] = (uint8_t)v;
}

/* Writes n bytes to dir/name, gzip-compressed when gz. Returns the path in out. */
static inline void write_file(const char *dir, const char *name, const void *bytes, size_t n,
                              int gz, char *out, size_t outlen)
{
    snprintf(out, outlen, "%s/%s", dir, name);
    if (gz) {
        gzFile f = gzopen(out, "wb");
        cr_assert_not_null(f, "gzopen %s", out);
        if (n) cr_assert_eq(gzwrite(f, bytes, (unsigned)n), (int)n);
        cr_assert_eq(gzclose(f), Z_OK);
    } else {
        FILE *f = fopen(out, "wb");
        cr_assert_not_null(f, "fopen %s", out);
        if (n) cr_assert_eq(fwrite(bytes, 1, n, f), n);
        cr_assert_eq(fclose(f), 0);
    }
}

/* An IDX images buffer: magic, count, rows, cols, then pixels (malloc'ed). */
static inline uint8_t *idx_images_bytes(uint32_t magic, uint32_t count, uint32_t rows,
                                        uint32_t cols, const uint8_t *pixels, size_t npixels,
                                        size_t *len)
{
    *len = 16 + npixels;
    uint8_t *b = malloc(*len);
    cr_assert_not_null(b);
    put_be32(b, magic);
    put_be32(b + 4, count);
    put_be32(b + 8, rows);
    put_be32(b + 12, cols);
    if (npixels) memcpy(b + 16, pixels, npixels);
    return b;
}

static inline uint8_t *idx_labels_bytes(uint32_t magic, uint32_t count, const uint8_t *labels,
                                        size_t nlabels, size_t *len)
{
    *len = 8 + nlabels;
    uint8_t *b = malloc(*len);
    cr_assert_not_null(b);
    put_be32(b, magic);
    put_be32(b + 4, count);
    if (nlabels) memcpy(b + 8, labels, nlabels);
    return b;
}

/* A learnable toy data set of 28x28 images: class k lights up columns
 * 2k+4 .. 2k+6 in every row (bright) over faint deterministic noise, so
 * every time step carries the class and a few steps of training fit it. */
static inline void toy_images(uint32_t count, uint8_t *pixels, uint8_t *labels, uint32_t seed)
{
    uint32_t s = seed * 2654435761u + 1;
    for (uint32_t i = 0; i < count; i++) {
        uint32_t k = (i * 7 + seed) % 10;
        labels[i] = (uint8_t)k;
        for (uint32_t r = 0; r < 28; r++)
            for (uint32_t c = 0; c < 28; c++) {
                s = s * 1664525u + 1013904223u;
                uint8_t noise = (uint8_t)(s >> 27); /* 0..31 */
                int bright = c >= 2u * k + 4u && c < 2u * k + 7u;
                pixels[(size_t)i * 784 + r * 28 + c] = bright ? (uint8_t)(200 + noise) : noise;
            }
    }
}

/* Writes a toy split as the four files rowseq looks for (gzip). */
static inline void write_toy_split(const char *dir, const char *prefix, uint32_t count,
                                   uint32_t seed)
{
    uint8_t *px = malloc((size_t)count * 784), *lb = malloc(count);
    cr_assert(px && lb);
    toy_images(count, px, lb, seed);
    size_t n;
    char name[128], path[4300];
    uint8_t *b = idx_images_bytes(0x803, count, 28, 28, px, (size_t)count * 784, &n);
    snprintf(name, sizeof name, "%s-images-idx3-ubyte.gz", prefix);
    write_file(dir, name, b, n, 1, path, sizeof path);
    free(b);
    b = idx_labels_bytes(0x801, count, lb, count, &n);
    snprintf(name, sizeof name, "%s-labels-idx1-ubyte.gz", prefix);
    write_file(dir, name, b, n, 1, path, sizeof path);
    free(b);
    free(px);
    free(lb);
}

#endif
