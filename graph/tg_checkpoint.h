/* tapegrad checkpoints: safetensors files, written atomically, read with
 * every field checked before any value reaches the model.
 *
 * File layout (https://github.com/huggingface/safetensors):
 *   8 bytes   header length H, unsigned little-endian
 *   H bytes   JSON object: {"<tensor>": {"dtype": "F32"|"F64", "shape": [r, c],
 *                            "data_offsets": [begin, end]}, ...,
 *                           "__metadata__": {"<key>": "<string>", ...}}
 *   rest      raw little-endian values; offsets are relative to its start
 *
 * Parameters are saved under their names with shape [rows, cols] in the
 * build's precision (F32 for float, F64 for double). Extra arrays (optimizer
 * moments) are saved 1-D, and their names are listed in the metadata key
 * "tapegrad.extra_tensors" (a JSON list as a string) so a loader can tell them
 * from parameters. Loading accepts F32 and F64 in either build, and a 1-D
 * shape [n] for a 1 x n parameter.
 *
 * Saving writes "<path>.tmp.<pid>" in the same directory, fsyncs it, renames
 * it over <path> and fsyncs the directory: a crash or a failed write (disk
 * full, no permission) leaves the previous file as it was.
 *
 * Every function that can fail returns 0, or -1 with a one-line message in
 * err (errlen bytes, may be NULL) naming the file and the tensor or field.
 */
#ifndef TG_CHECKPOINT_H
#define TG_CHECKPOINT_H

#include <stddef.h>
#include <stdint.h>

#include "tapegrad.h"

#ifdef __cplusplus
extern "C" {
#endif

/* A metadata entry: both strings, as safetensors requires. */
typedef struct tg_ckpt_meta {
    const char *key;
    const char *value;
} tg_ckpt_meta;

/* A named flat array saved beside the parameters (1-D, numel values). */
typedef struct tg_ckpt_array {
    const char *name;
    const tg_real *data;
    size_t numel;
} tg_ckpt_array;

/* Header length above this is rejected (the safetensors reference limit). */
#define TG_CKPT_MAX_HEADER (100u * 1024u * 1024u)
/* Metadata key listing the extra (non-parameter) tensors. */
#define TG_CKPT_EXTRAS_KEY "tapegrad.extra_tensors"
/* Metadata key holding the CRC-32 (zlib's crc32) of the data section, all
 * bytes after the header, as 8 lowercase hex digits. tg_checkpoint_save
 * writes it (not tg_checkpoint_save_tensors: files for other tools, which
 * may change tensors and keep the metadata); a parse that finds it checks
 * the data against it before any value is read (after the header's own
 * checksum, which covers this key), so a flipped or appended byte is
 * reported, not loaded. Files of other tools have none and load unchecked. Reserved,
 * like TG_CKPT_EXTRAS_KEY, and not listed by tg_checkpoint_meta_count /
 * tg_checkpoint_meta_key (it describes the file, not the model). */
#define TG_CKPT_CRC_KEY "tapegrad.data_crc32"
/* Metadata key holding the CRC-32 (zlib's crc32, from 0) of the header's
 * content, less this key, as 8 lowercase hex digits: a flipped byte in a
 * metadata value (a step count, a learning rate), in a tensor's shape or
 * offsets, or in the data's checksum is reported, not loaded. Of content,
 * not of bytes, so that a tool that writes the same header in another key
 * order, spacing or escaping keeps it valid. The bytes: for each top-level
 * key in byte order, the key and a 0 byte, then at once its content: for
 * "__metadata__" each of its keys in byte order (less this one) with a 0
 * byte, then its value with a 0 byte; for a tensor its dtype with a 0
 * byte, then its shape's and then its data_offsets' integers in decimal,
 * each followed by ',', each list ended by a 0 byte. Keys and strings are
 * their decoded UTF-8 ("\u00e9" and "é" are one string). Written with
 * TG_CKPT_CRC_KEY, by tg_checkpoint_save only; a file without this key
 * (older ones, other tools') loads without the header's check, unless a
 * metadata key differs from this name in one byte (the key damaged: refused).
 * Reserved and unlisted, as TG_CKPT_CRC_KEY. */
#define TG_CKPT_HEADER_CRC_KEY "tapegrad.header_crc32"

/* ------------------------------------------------------------------ saving */

/* Saves every parameter of p, the extras and the metadata to path,
 * atomically. Refuses (and keeps the old file) when a value is NaN or
 * infinite, a name is repeated, or a string is not UTF-8. */
int tg_checkpoint_save(const char *path, const tg_params *p, const tg_ckpt_array *extras,
                       size_t n_extras, const tg_ckpt_meta *meta, size_t n_meta, char *err,
                       size_t errlen);

/* An optimizer's state goes in as extras and metadata too: see
 * tg_checkpoint_save_training in optim/tg_optim.h (optim builds on this
 * file, never the other way). */

/* A tensor saved under any name, for files in another program's naming
 * (e.g. a PyTorch state_dict, examples/common/torch_io.h): rows x cols
 * values, or a 1-D tensor [cols] when rows == 0. */
typedef struct tg_ckpt_tensor {
    const char *name;
    const tg_real *data;
    int rows, cols;
} tg_ckpt_tensor;

/* Saves n named tensors and the metadata to path, atomically, with the
 * checks of tg_checkpoint_save. Loading reads them all as parameters. */
int tg_checkpoint_save_tensors(const char *path, const tg_ckpt_tensor *t, size_t n,
                               const tg_ckpt_meta *meta, size_t n_meta, char *err,
                               size_t errlen);

/* ------------------------------------------------------------------ loading */

/* A checkpoint checked: header length against the file size, JSON syntax,
 * every dtype, shape and data_offsets (inside the data section, matching
 * dtype x shape, the tensors tiling the data: no overlap, no hole, nothing
 * after the last), metadata values being strings, the checksums, and every
 * value finite (and in tg_real's range). It holds the header, not the
 * values: open reads the data a chunk at a time (its memory is the header
 * and a 256 KiB buffer, whatever the file's size), and the file stays open
 * until close, each tensor read again, and converted to tg_real, straight
 * into the caller's memory when asked for (load_params, read_array). A
 * tensor read then must have the bytes it had at the open: a file written
 * over in place meanwhile is refused (a save's rename puts a new file
 * beside the open one, which is not changed). */
typedef struct tg_checkpoint tg_checkpoint;

tg_checkpoint *tg_checkpoint_open(const char *path, char *err, size_t errlen);
/* The same checks over a buffer (label names it in messages): for tests and
 * fuzzing. The bytes are not kept (their data section is copied). */
tg_checkpoint *tg_checkpoint_parse(const void *bytes, size_t len, const char *label, char *err,
                                   size_t errlen);
void tg_checkpoint_close(tg_checkpoint *c);
/* Whether the regular file at path has a safetensors header whose metadata
 * holds key as a string, read without the data (without waiting on a FIFO,
 * without opening a device): 1, and its value copied to val (n bytes, may
 * be cut; val may be NULL), or 0 for anything else. What a file is before
 * it is written over. */
int tg_checkpoint_peek_meta(const char *path, const char *key, char *val, size_t n);

/* Tensors in the file (parameters and extras), in file order. */
size_t tg_checkpoint_tensor_count(const tg_checkpoint *c);
const char *tg_checkpoint_tensor_name(const tg_checkpoint *c, size_t i);
/* Shape of a named tensor: 0 and *rows, *cols (1-D [n] reads as 1 x n),
 * or -1 when absent. */
int tg_checkpoint_tensor_shape(const tg_checkpoint *c, const char *name, int *rows, int *cols);

/* Metadata value for key, or NULL. The string lives as long as c. */
const char *tg_checkpoint_meta(const tg_checkpoint *c, const char *key);
size_t tg_checkpoint_meta_count(const tg_checkpoint *c);
const char *tg_checkpoint_meta_key(const tg_checkpoint *c, size_t i);
/* Metadata parsed as a decimal unsigned integer / as an rng state written
 * by tg_checkpoint_rng_hex (never all zeros). -1 with a message naming the
 * key if absent or malformed; *out untouched then. */
int tg_checkpoint_meta_u64(const tg_checkpoint *c, const char *key, uint64_t *out, char *err,
                           size_t errlen);
int tg_checkpoint_meta_rng(const tg_checkpoint *c, const char *key, tg_rng *out, char *err,
                           size_t errlen);

/* Copies the file's values into p, all or nothing: every parameter of p
 * must be in the file with the same shape, and every non-extra tensor of the
 * file must be a parameter of p; otherwise p is not modified and err names
 * the tensor and both shapes. The values are read from the file then: if it
 * was written over in place or cut short since the open (another program),
 * or a read fails, that is reported and p is partly loaded. */
int tg_checkpoint_load_params(const tg_checkpoint *c, tg_params *p, char *err, size_t errlen);

/* Copies the named tensor (numel values, any shape) into out, read from
 * the file as load_params does (out partly written when that fails). */
int tg_checkpoint_read_array(const tg_checkpoint *c, const char *name, tg_real *out, size_t numel,
                             char *err, size_t errlen);

/* The name messages give the checkpoint (its path, or the parse label). */
const char *tg_checkpoint_label(const tg_checkpoint *c);

/* open + load_params + close. */
int tg_checkpoint_load(const char *path, tg_params *p, char *err, size_t errlen);

/* ------------------------------------------------------------------ helpers */

/* The temporary file a save of path writes and renames over it:
 * "<path>.tmp.<pid>", beside it. 0, or -1 when it does not fit in cap. A
 * program that ends on a signal during a save can remove it from its
 * handler (unlink is async-signal-safe): path is then as it was, or the
 * new file if the rename was done. */
int tg_checkpoint_temp_path(const char *path, char *out, size_t cap);

/* An rng state as 64 hex digits (4 words, most significant digit first). */
#define TG_RNG_HEX_LEN 65
void tg_checkpoint_rng_hex(const tg_rng *r, char out[TG_RNG_HEX_LEN]);
/* 0; TG_RNG_PARSE_MALFORMED unless hex is exactly 64 hex digits;
 * TG_RNG_PARSE_ZERO for the all-zero state, which xoshiro256 never leaves
 * (every draw 0) and tg_checkpoint_rng_hex never writes. r untouched on
 * either refusal. */
#define TG_RNG_PARSE_MALFORMED (-1)
#define TG_RNG_PARSE_ZERO (-2)
int tg_checkpoint_rng_parse(const char *hex, tg_rng *r);

/* For code that writes or reads its own extras (optim/checkpoint_optim.c):
 * formats a message into err (if any; control characters from a hostile
 * file become '?', so the message stays one line) and returns -1. */
int tg_ckpt_fail(char *err, size_t errlen, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
/* 0 on a little-endian host, else -1 with a message (safetensors data is
 * little-endian). */
int tg_ckpt_host_ok(char *err, size_t errlen);
/* zlib's CRC-32 of n bytes continued from crc (0 to start), any n. */
uint32_t tg_ckpt_crc32(uint32_t crc, const void *bytes, size_t n);

#ifdef __cplusplus
}
#endif
#endif
