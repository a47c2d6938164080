/* Files, strict UTF-8, code-point vocabulary and sampling (see text.h). */
#include "text.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define TG_MAX_CP 0x10FFFFu

/* ------------------------------------------------------------------ files */

/* A buffer's next size: doubled, but never past max + 1 (one byte past max
 * tells an input of max bytes from a longer one). */
static size_t grown(size_t cap, size_t max) { return cap > max / 2 ? max + 1 : 2 * cap; }

/* Reads fd to EOF into a growing buffer (pipes have no size up front), at
 * most max bytes: EFBIG past them. */
static int read_fd(int fd, size_t max, char **bytes, size_t *len)
{
    size_t cap = max < (1 << 16) ? max + 1 : 1 << 16, n = 0;
    char *buf = malloc(cap + 1);
    if (!buf) return ENOMEM;
    for (;;) {
        if (n == cap) {
            size_t want = grown(cap, max);
            char *bigger = n > max ? NULL : realloc(buf, want + 1);
            if (!bigger) {
                free(buf);
                return n > max ? EFBIG : ENOMEM;
            }
            buf = bigger;
            cap = want;
        }
        ssize_t got = read(fd, buf + n, cap - n);
        if (got < 0) {
            if (errno == EINTR) continue;
            int e = errno;
            free(buf);
            return e;
        }
        if (got == 0) break;
        n += (size_t)got;
    }
    buf[n] = '\0';
    *bytes = buf;
    *len = n;
    return 0;
}

int tg_file_read_all(const char *path, size_t max, char **bytes, size_t *len, char *err,
                     size_t errlen)
{
    *bytes = NULL;
    *len = 0;
    int fd = open(path, O_RDONLY);
    if (fd < 0) {
        snprintf(err, errlen, "%s: %s", path, strerror(errno));
        return -1;
    }
    struct stat st;
    int known = fstat(fd, &st) == 0;
    if (known && S_ISDIR(st.st_mode)) {
        close(fd);
        snprintf(err, errlen, "%s: is a directory, expected a text file", path);
        return -1;
    }
    int e = known && S_ISREG(st.st_mode) && (uintmax_t)st.st_size > max
                ? EFBIG
                : read_fd(fd, max, bytes, len);
    close(fd);
    if (e == EFBIG) {
        snprintf(err, errlen, "%s: more than %zu bytes, the most a text is read whole into memory",
                 path, max);
        return -1;
    }
    if (e) {
        snprintf(err, errlen, "%s: read error: %s", path, strerror(e));
        return -1;
    }
    return 0;
}

int tg_read_line(FILE *f, char **line, size_t *cap, size_t max, size_t *len)
{
    size_t n = 0;
    int c = EOF;
    while ((c = getc_unlocked(f)) != EOF) {
        if (n == max) return -1;
        if (n + 2 > *cap) { /* room for c and the NUL after the line */
            size_t want = *cap < 128 ? 128 : grown(*cap, max);
            char *bigger = realloc(*line, want);
            if (!bigger) return errno = ENOMEM, -2;
            *line = bigger;
            *cap = want;
        }
        (*line)[n++] = (char)c;
        if (c == '\n') break;
    }
    if (c == EOF && ferror(f)) return -2;
    if (c == EOF && n == 0) return 0;
    (*line)[n] = '\0';
    *len = n;
    return 1;
}

/* ------------------------------------------------------------------ UTF-8 */

void tg_utf8_drop_bom(char *line, size_t *n)
{
    if (*n < 3 || memcmp(line, "\xEF\xBB\xBF", 3) != 0) return;
    memmove(line, line + 3, *n - 3);
    *n -= 3;
    line[*n] = '\0';
}

/* The control character at s (NUL-terminated) as an escape in out: its
 * length in s, or 0 when s starts no control character. */
static size_t control_escape(const unsigned char *s, char out[8])
{
    if (s[0] < 0x20 || s[0] == 0x7F) {
        snprintf(out, 8, "\\x%02X", s[0]);
        return 1;
    }
    if (s[0] == 0xC2 && s[1] >= 0x80 && s[1] <= 0x9F) { /* U+0080..U+009F: C1 */
        snprintf(out, 8, "\\u%04X", s[1]);
        return 2;
    }
    return 0;
}

void tg_fputs_shown(const char *s, FILE *f)
{
    const unsigned char *p = (const unsigned char *)s;
    char esc[8];
    while (*p) {
        size_t k = control_escape(p, esc);
        if (k) {
            fputs(esc, f);
            p += k;
        } else {
            putc(*p++, f);
        }
    }
}

void tg_text_shown(const char *s, char *out, size_t cap)
{
    const unsigned char *p = (const unsigned char *)s, *end = p + strlen(s);
    size_t n = 0;
    while (*p) {
        char esc[8];
        size_t k = control_escape(p, esc), len;
        const char *piece = esc;
        if (!k) { /* a whole character (a byte where the UTF-8 is not valid) */
            uint32_t cp;
            k = tg_utf8_one(p, (size_t)(end - p), &cp);
            if (k == 0) k = 1;
            piece = (const char *)p;
            len = k;
        } else {
            len = strlen(esc);
        }
        if (n + len >= cap) break;
        memcpy(out + n, piece, len);
        n += len;
        p += k;
    }
    out[n] = '\0';
}

/* Length of the sequence starting at s (0 if invalid) and its code point. */
size_t tg_utf8_one(const unsigned char *s, size_t avail, uint32_t *cp)
{
    unsigned b0 = s[0];
    if (b0 < 0x80) {
        *cp = b0;
        return 1;
    }
    size_t need;
    unsigned lo = 0x80, hi = 0xBF; /* allowed range of the second byte */
    uint32_t v;
    if (b0 >= 0xC2 && b0 <= 0xDF) {
        need = 2;
        v = b0 & 0x1F;
    } else if (b0 >= 0xE0 && b0 <= 0xEF) {
        need = 3;
        v = b0 & 0x0F;
        if (b0 == 0xE0) lo = 0xA0; /* overlong */
        if (b0 == 0xED) hi = 0x9F; /* surrogates */
    } else if (b0 >= 0xF0 && b0 <= 0xF4) {
        need = 4;
        v = b0 & 0x07;
        if (b0 == 0xF0) lo = 0x90; /* overlong */
        if (b0 == 0xF4) hi = 0x8F; /* above U+10FFFF */
    } else {
        return 0;
    }
    if (avail < need) return 0;
    if (s[1] < lo || s[1] > hi) return 0;
    for (size_t k = 1; k < need; k++) {
        if ((s[k] & 0xC0) != 0x80) return 0;
        v = (v << 6) | (s[k] & 0x3F);
    }
    *cp = v;
    return need;
}

int tg_utf8_decode(const unsigned char *s, size_t len, uint32_t *out, size_t *n_out,
                   size_t *bad_offset)
{
    size_t i = 0, n = 0;
    while (i < len) {
        uint32_t cp;
        size_t k = tg_utf8_one(s + i, len - i, &cp);
        if (k == 0) {
            *n_out = n;
            *bad_offset = i;
            return -1;
        }
        out[n++] = cp;
        i += k;
    }
    *n_out = n;
    return 0;
}

size_t tg_utf8_encode(uint32_t cp, char out[4])
{
    if (cp < 0x80) {
        out[0] = (char)cp;
        return 1;
    }
    if (cp < 0x800) {
        out[0] = (char)(0xC0 | (cp >> 6));
        out[1] = (char)(0x80 | (cp & 0x3F));
        return 2;
    }
    if (cp >= 0xD800 && cp <= 0xDFFF) return 0;
    if (cp < 0x10000) {
        out[0] = (char)(0xE0 | (cp >> 12));
        out[1] = (char)(0x80 | ((cp >> 6) & 0x3F));
        out[2] = (char)(0x80 | (cp & 0x3F));
        return 3;
    }
    if (cp > TG_MAX_CP) return 0;
    out[0] = (char)(0xF0 | (cp >> 18));
    out[1] = (char)(0x80 | ((cp >> 12) & 0x3F));
    out[2] = (char)(0x80 | ((cp >> 6) & 0x3F));
    out[3] = (char)(0x80 | (cp & 0x3F));
    return 4;
}

size_t tg_text_line_of(const char *s, size_t len, size_t off)
{
    size_t line = 1;
    for (size_t i = 0; i < off && i < len; i++) line += s[i] == '\n';
    return line;
}

int tg_text_decode(const char *name, const char *bytes, size_t len, uint32_t **cps, size_t *n,
                   char *err, size_t errlen)
{
    *cps = NULL;
    *n = 0;
    size_t skip = (len >= 3 && memcmp(bytes, "\xEF\xBB\xBF", 3) == 0) ? 3 : 0;
    if (len == skip) {
        snprintf(err, errlen, "%s: empty text", name);
        return -1;
    }
    uint32_t *out = malloc((len - skip) * sizeof *out);
    if (!out) {
        snprintf(err, errlen, "%s: out of memory decoding %zu bytes", name, len);
        return -1;
    }
    size_t bad;
    if (tg_utf8_decode((const unsigned char *)bytes + skip, len - skip, out, n, &bad) != 0) {
        size_t off = bad + skip;
        snprintf(err, errlen, "%s:%zu: invalid UTF-8 at byte offset %zu (byte 0x%02X)", name,
                 tg_text_line_of(bytes, len, off), off, (unsigned)(unsigned char)bytes[off]);
        free(out);
        *n = 0;
        return -1;
    }
    *cps = out;
    return 0;
}

int tg_text_read_file(const char *path, uint32_t **cps, size_t *n, char *err, size_t errlen)
{
    char *bytes;
    size_t len;
    *cps = NULL;
    *n = 0;
    if (tg_file_read_all(path, TG_TEXT_MAX_BYTES, &bytes, &len, err, errlen) != 0) return -1;
    int rc = tg_text_decode(path, bytes, len, cps, n, err, errlen);
    free(bytes);
    return rc;
}

/* ------------------------------------------------------------------ vocabulary */

int tg_vocab_build(tg_vocab *v, const uint32_t *cps, size_t n)
{
    v->size = 0;
    v->cps = NULL;
    /* one bit per possible code point (136 KiB): sorted and unique in O(n) */
    size_t words = (TG_MAX_CP + 1) / 64 + 1;
    uint64_t *seen = calloc(words, sizeof *seen);
    if (!seen) return -1;
    size_t distinct = 0;
    for (size_t i = 0; i < n; i++) {
        if (cps[i] > TG_MAX_CP) {
            free(seen);
            return -1;
        }
        uint64_t bit = 1ull << (cps[i] % 64);
        distinct += !(seen[cps[i] / 64] & bit);
        seen[cps[i] / 64] |= bit;
    }
    v->cps = malloc((distinct ? distinct : 1) * sizeof *v->cps);
    if (!v->cps) {
        free(seen);
        return -1;
    }
    for (size_t w = 0; w < words; w++)
        for (unsigned b = 0; seen[w] && b < 64; b++)
            if (seen[w] >> b & 1) v->cps[v->size++] = (uint32_t)(w * 64 + b);
    free(seen);
    return 0;
}

void tg_vocab_free(tg_vocab *v)
{
    free(v->cps);
    v->cps = NULL;
    v->size = 0;
}

int tg_vocab_id(const tg_vocab *v, uint32_t cp)
{
    int lo = 0, hi = v->size - 1;
    while (lo <= hi) {
        int mid = lo + (hi - lo) / 2;
        if (v->cps[mid] == cp) return mid;
        if (v->cps[mid] < cp)
            lo = mid + 1;
        else
            hi = mid - 1;
    }
    return -1;
}

int tg_vocab_encode(const tg_vocab *v, const uint32_t *cps, size_t n, int *ids, size_t *bad)
{
    for (size_t i = 0; i < n; i++) {
        ids[i] = tg_vocab_id(v, cps[i]);
        if (ids[i] < 0) {
            if (bad) *bad = i;
            return -1;
        }
    }
    return 0;
}

size_t tg_vocab_utf8(const tg_vocab *v, int id, char out[4])
{
    if (id < 0 || id >= v->size) return 0;
    return tg_utf8_encode(v->cps[id], out);
}

char *tg_vocab_format(const tg_vocab *v)
{
    size_t cap = (size_t)v->size * 8 + 1; /* "1114111," is 8 chars */
    char *s = malloc(cap);
    if (!s) return NULL;
    size_t at = 0;
    s[0] = '\0';
    for (int i = 0; i < v->size; i++)
        at += (size_t)snprintf(s + at, cap - at, i ? ",%u" : "%u", (unsigned)v->cps[i]);
    return s;
}

int tg_vocab_parse(tg_vocab *v, const char *s, char *err, size_t errlen)
{
    v->size = 0;
    v->cps = NULL;
    size_t count = 1;
    for (const char *p = s; *p; p++) count += *p == ',';
    if (!s[0] || count > TG_MAX_CP + 1) {
        snprintf(err, errlen, "vocabulary: empty or too long");
        return -1;
    }
    v->cps = malloc(count * sizeof *v->cps);
    if (!v->cps) {
        snprintf(err, errlen, "vocabulary: out of memory");
        return -1;
    }
    const char *p = s;
    for (size_t i = 0; i < count; i++) {
        char *end;
        errno = 0;
        unsigned long x = (*p >= '0' && *p <= '9') ? strtoul(p, &end, 10) : ULONG_MAX;
        int bad = x == ULONG_MAX || errno || x > TG_MAX_CP || (x >= 0xD800 && x <= 0xDFFF) ||
                  (*end != ',' && *end != '\0') || (i > 0 && x <= v->cps[i - 1]);
        if (bad) {
            snprintf(err, errlen,
                     "vocabulary: entry %zu is not a code point in ascending order", i);
            tg_vocab_free(v);
            return -1;
        }
        v->cps[i] = (uint32_t)x;
        p = end + (*end == ',');
    }
    if (count > INT_MAX) {
        tg_vocab_free(v);
        return -1;
    }
    v->size = (int)count;
    return 0;
}

/* ------------------------------------------------------------------ sampling */

int tg_softmax_temperature(const tg_real *logits, int n, double temperature, double *probs)
{
    /* x * 0 is 0 for a finite x, NaN for an infinity or a NaN (which stays
     * in the sum): the check in the scan for the largest */
    int best = 0;
    tg_real z = logits[0] * (tg_real)0;
    for (int i = 1; i < n; i++) {
        z += logits[i] * (tg_real)0;
        if (logits[i] > logits[best]) best = i;
    }
    if (z != 0) return -1;
    if (!(temperature > 0)) {
        for (int i = 0; i < n; i++) probs[i] = i == best;
        return 0;
    }
    double sum = 0;
    for (int i = 0; i < n; i++) {
        probs[i] = exp(((double)logits[i] - (double)logits[best]) / temperature);
        sum += probs[i];
    }
    for (int i = 0; i < n; i++) probs[i] /= sum;
    return 0;
}

int tg_sample_index(const double *probs, int n, tg_rng *r)
{
    double u = tg_rng_uniform(r), acc = 0;
    int last = 0;
    for (int i = 0; i < n; i++) {
        if (probs[i] <= 0) continue;
        acc += probs[i];
        last = i;
        if (u < acc) return i;
    }
    return last; /* rounding left u above the total: the last possible index */
}

int tg_sample_logits(const tg_real *logits, int n, double temperature, tg_rng *r, double *scratch)
{
    if (tg_softmax_temperature(logits, n, temperature, scratch) != 0) return -1;
    return tg_sample_index(scratch, n, r);
}

/* ------------------------------------------------------------------ hash */

uint64_t tg_fnv1a(uint64_t h, const void *bytes, size_t n)
{
    const unsigned char *b = bytes;
    for (size_t i = 0; i < n; i++) {
        h ^= b[i];
        h *= 0x100000001b3ull;
    }
    return h;
}

uint64_t tg_fnv1a_u32(uint64_t h, uint32_t v)
{
    const unsigned char b[4] = {(unsigned char)v, (unsigned char)(v >> 8),
                                (unsigned char)(v >> 16), (unsigned char)(v >> 24)};
    return tg_fnv1a(h, b, 4);
}
