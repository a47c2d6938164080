/* IDX reader for (Fashion-)MNIST: unsigned-byte images (magic 0x00000803,
 * dims count x rows x cols) and labels (magic 0x00000801, dim count), plain
 * or gzip-compressed (detected by the bytes 1f 8b; zlib inflates it).
 *
 * Pure API: nothing prints, nothing exits. Every function returns an
 * idx_status and, on failure, writes one line into msg naming the file, what
 * is wrong and the expected vs actual value, e.g.
 *   "train-labels.gz: truncated: header says 60000 labels -> 60008 bytes, data has 59990 bytes"
 * The memory-level functions (idx_decode, idx_parse_*) touch no file, so a
 * fuzzer can feed them arbitrary bytes. */
#ifndef ROWSEQ_IDX_H
#define ROWSEQ_IDX_H

#include <stddef.h>
#include <stdint.h>

#define IDX_MAGIC_IMAGES 0x00000803u /* ubyte, 3 dimensions */
#define IDX_MAGIC_LABELS 0x00000801u /* ubyte, 1 dimension */
/* Sanity caps: a header that asks for more than this is rejected before any
 * allocation (protects against absurd sizes in corrupt or hostile files). */
#define IDX_MAX_BYTES ((size_t)1 << 30) /* decompressed payload, 1 GiB */
#define IDX_MAX_COUNT 10000000u         /* images / labels per file */
#define IDX_MAX_SIDE 4096u              /* rows, cols of one image */

typedef enum idx_status {
    IDX_OK = 0,
    IDX_ERR_IO,     /* cannot open / read the file */
    IDX_ERR_FORMAT, /* bad magic, dims, length, label, gzip stream */
    IDX_ERR_NOMEM,
} idx_status;

typedef struct idx_images {
    uint32_t count, rows, cols;
    uint8_t *pixels; /* count * rows * cols bytes, row-major, image after image */
} idx_images;

typedef struct idx_labels {
    uint32_t count;
    uint8_t *labels; /* count values, each < the class count checked at parse */
} idx_labels;

/* Turns file bytes into IDX bytes: inflates a gzip stream (bytes 1f 8b,
 * multi-member allowed) or copies plain data. *out is malloc'ed (free it);
 * output larger than IDX_MAX_BYTES + header is rejected. name is used only in
 * messages. */
idx_status idx_decode(const char *name, const uint8_t *raw, size_t n, uint8_t **out,
                      size_t *out_len, char *msg, size_t msg_cap);

/* Parses decoded IDX bytes. Checks magic, dimensions (nonzero count, sides
 * in 1..IDX_MAX_SIDE) and that the length is exactly header + payload. */
idx_status idx_parse_images(const char *name, const uint8_t *data, size_t n, idx_images *out,
                            char *msg, size_t msg_cap);
/* Also rejects any label >= n_classes (naming the index of the first). */
idx_status idx_parse_labels(const char *name, const uint8_t *data, size_t n, int n_classes,
                            idx_labels *out, char *msg, size_t msg_cap);

/* Reads a whole file (plain or gzip) and parses it. */
idx_status idx_read_images(const char *path, idx_images *out, char *msg, size_t msg_cap);
idx_status idx_read_labels(const char *path, int n_classes, idx_labels *out, char *msg,
                           size_t msg_cap);

/* Images and labels of one split must have the same count. */
idx_status idx_check_pair(const char *images_name, const idx_images *im, const char *labels_name,
                          const idx_labels *lb, char *msg, size_t msg_cap);

void idx_images_free(idx_images *im);
void idx_labels_free(idx_labels *lb);

#endif
