/* Text for the character models: reading files, strict UTF-8, a vocabulary
 * of code points, and sampling from logits.
 *
 * Every function here is pure: it returns a status and, on failure, writes a
 * one-line message naming the file, line and byte offset into err. Nothing
 * prints or exits, so tests and fuzzers can call them directly. */
#ifndef TG_EXAMPLES_TEXT_H
#define TG_EXAMPLES_TEXT_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "tapegrad.h"

#ifdef __cplusplus
extern "C" {
#endif

/* ------------------------------------------------------------------ files */

/* The most bytes a program reads whole into memory as a text (1 GiB: a
 * character model keeps about 9 bytes a character, the text and its ids;
 * enwik9's 10^9 bytes fit). A device or a pipe that never ends (/dev/zero)
 * or a file larger than the machine's memory is refused at this size, not
 * read until the kernel kills the program. */
#define TG_TEXT_MAX_BYTES ((size_t)1 << 30)

/* Reads a whole file (regular file, pipe or device) of at most max bytes
 * into a malloc'd buffer with a NUL after the last byte. 0 ok; -1 with
 * "PATH: reason" in err (missing file -> strerror, directory -> "is a
 * directory", more than max bytes -> "more than MAX bytes", a regular file
 * by its size before reading). An empty file is not an error here. */
int tg_file_read_all(const char *path, size_t max, char **bytes, size_t *len, char *err,
                     size_t errlen);

/* One line of f, up to and including its '\n' as getline gives it, into
 * *line (grown as needed, *cap its size; a NUL after the line), of at most
 * max bytes with the '\n': 1 a line (its bytes in *len, NULs and all), 0
 * at the end of f, -1 a line longer than max (f is left inside it), -2 a
 * read error (errno). getline has no bound: a line that never ends
 * (/dev/zero, a binary file) would take all memory. */
int tg_read_line(FILE *f, char **line, size_t *cap, size_t max, size_t *len);

/* ------------------------------------------------------------------ UTF-8 */

/* Strict UTF-8 (RFC 3629): no overlong forms, no surrogates, nothing above
 * U+10FFFF, no truncated sequences. Writes at most len code points to out.
 * 0 ok; -1 with the byte offset of the first bad sequence in *bad_offset. */
int tg_utf8_decode(const unsigned char *s, size_t len, uint32_t *out, size_t *n_out,
                   size_t *bad_offset);

/* Decodes one strict UTF-8 character at s (avail bytes left) into *cp;
 * returns its length, or 0 when the bytes there are not valid UTF-8 (the
 * one decoder of the programs: text here, sentence pairs in seq2seq). */
size_t tg_utf8_one(const unsigned char *s, size_t avail, uint32_t *cp);

/* Drops a UTF-8 byte-order mark (EF BB BF) from the start of the n bytes at
 * line (a file's first line, as an editor may write it), n updated; the
 * mark read as text made the first word unknown. */
void tg_utf8_drop_bom(char *line, size_t *n);

/* Encodes one code point into out (up to 4 bytes); returns the byte count,
 * 0 for a surrogate or a value above U+10FFFF. */
size_t tg_utf8_encode(uint32_t cp, char out[4]);

/* Text from data or a model (a vocabulary's words, a test pair) as shown
 * to a person on a terminal: control characters (C0, DEL, and C1 in UTF-8)
 * written as \xHH and \u00HH, every other byte as it is. A raw ESC from a
 * training text or a damaged model was obeyed by the terminal (colours,
 * a cleared screen, a changed title). Output that is the program's result
 * (--translate's lines) is written as it is, not through these. */
void tg_fputs_shown(const char *s, FILE *f);
/* The same into out (cap > 0 bytes, always terminated; cut short at a
 * whole character or escape when full), for a message. */
void tg_text_shown(const char *s, char *out, size_t cap);

/* Decodes bytes named name (a file name, or "--prime") into a malloc'd
 * code-point array. A leading byte-order mark is skipped. 0 ok; -1 with
 * "NAME:LINE: invalid UTF-8 at byte offset N (byte 0xXX)" or
 * "NAME: empty text" in err. */
int tg_text_decode(const char *name, const char *bytes, size_t len, uint32_t **cps, size_t *n,
                   char *err, size_t errlen);

/* tg_file_read_all + tg_text_decode. */
int tg_text_read_file(const char *path, uint32_t **cps, size_t *n, char *err, size_t errlen);

/* Line (1-based) of byte offset off in s: for messages. */
size_t tg_text_line_of(const char *s, size_t len, size_t off);

/* ------------------------------------------------------------------ hash */

/* FNV-1a, 64 bits, over n bytes, continuing from h (start with
 * TG_FNV1A_BASIS): the identity of a run's data in its config ("60
 * characters, fnv1a 7323b629b48b9293"), so that a resume on edited data is
 * refused. tg_fnv1a_u32 hashes v's four bytes, least significant first. */
#define TG_FNV1A_BASIS 0xcbf29ce484222325ull
uint64_t tg_fnv1a(uint64_t h, const void *bytes, size_t n);
uint64_t tg_fnv1a_u32(uint64_t h, uint32_t v);

/* ------------------------------------------------------------------ vocabulary */

/* The distinct code points of a text, ascending: id i <-> cps[i]. The order
 * depends only on the set of code points, so it is deterministic. */
typedef struct tg_vocab {
    int size;
    uint32_t *cps;
} tg_vocab;

/* From a text. 0 ok; -1 out of memory or an invalid code point. */
int tg_vocab_build(tg_vocab *v, const uint32_t *cps, size_t n);
void tg_vocab_free(tg_vocab *v);
/* Id of cp, or -1 when cp is not in the vocabulary. */
int tg_vocab_id(const tg_vocab *v, uint32_t cp);
/* ids[i] = id of cps[i]. 0 ok; -1 with the index of the first unknown code
 * point in *bad (when bad != NULL). */
int tg_vocab_encode(const tg_vocab *v, const uint32_t *cps, size_t n, int *ids, size_t *bad);
/* UTF-8 of one id into out (up to 4 bytes); returns the byte count. */
size_t tg_vocab_utf8(const tg_vocab *v, int id, char out[4]);

/* Text form for checkpoint metadata: decimal code points joined by commas,
 * "10,32,33". malloc'd, NULL on out of memory. */
char *tg_vocab_format(const tg_vocab *v);
/* Parses that form (strictly ascending, valid code points). 0 ok; -1 with a
 * message naming the entry in err. */
int tg_vocab_parse(tg_vocab *v, const char *s, char *err, size_t errlen);

/* ------------------------------------------------------------------ sampling */

/* probs = softmax(logits / temperature), computed in double and stable for
 * any finite logits. temperature <= 0 gives a one-hot on the first argmax.
 * 0, or -1 when a logit is NaN or infinite (found in the scan for the
 * largest; probs are then not a distribution: a NaN is never the largest,
 * and its draw was always the last id). */
int tg_softmax_temperature(const tg_real *logits, int n, double temperature, double *probs);
/* One draw from probs (which sum to ~1) with r: inverse CDF. */
int tg_sample_index(const double *probs, int n, tg_rng *r);
/* Both: scratch holds n doubles. -1 (no draw) when a logit is NaN or
 * infinite. */
int tg_sample_logits(const tg_real *logits, int n, double temperature, tg_rng *r, double *scratch);

#ifdef __cplusplus
}
#endif
#endif
