/* Fuzz target: UTF-8 text decoding and the code-point vocabulary
 * (examples/common/text.c).
 *
 * The input is the bytes of a text file. Decoding either fails with
 * "NAME:LINE: invalid UTF-8 ..." / "NAME: empty text" or yields code points
 * that re-encode to exactly the input (minus a leading byte-order mark).
 * The vocabulary built from them is sorted and encodes the text, and its
 * checkpoint form (tg_vocab_format) parses back to the same vocabulary.
 * The input is also fed to tg_vocab_parse as if it were that metadata
 * string, since a checkpoint's metadata is untrusted too. */
#include "fuzz_check.h"
#include "text.h"

static void check_roundtrip(const uint8_t *data, size_t size, const uint32_t *cps, size_t n)
{
    size_t off = (size >= 3 && memcmp(data, "\xEF\xBB\xBF", 3) == 0) ? 3 : 0;
    for (size_t i = 0; i < n; i++) {
        char enc[4];
        size_t k = tg_utf8_encode(cps[i], enc);
        FUZZ_CHECK(k >= 1 && k <= 4, "code point U+%04X does not encode", (unsigned)cps[i]);
        FUZZ_CHECK(off + k <= size && memcmp(data + off, enc, k) == 0,
                   "code point %zu (U+%04X) does not re-encode to the input bytes", i,
                   (unsigned)cps[i]);
        off += k;
    }
    FUZZ_CHECK(off == size, "decoded text covers %zu of %zu bytes", off, size);
}

static void check_vocab(const uint32_t *cps, size_t n)
{
    tg_vocab v = {0}, w = {0};
    if (tg_vocab_build(&v, cps, n) != 0) return;
    for (int i = 1; i < v.size; i++)
        FUZZ_CHECK(v.cps[i - 1] < v.cps[i], "vocabulary not strictly ascending at %d", i);
    int *ids = malloc(n * sizeof *ids);
    size_t bad = 0;
    if (ids) {
        FUZZ_CHECK(tg_vocab_encode(&v, cps, n, ids, &bad) == 0, "own text has unknown cp at %zu",
                   bad);
        for (size_t i = 0; i < n; i++)
            FUZZ_CHECK(ids[i] >= 0 && ids[i] < v.size && v.cps[ids[i]] == cps[i],
                       "cp %zu encodes to id %d", i, ids[i]);
        free(ids);
    }
    char *s = tg_vocab_format(&v);
    char err[256];
    if (s) {
        err[0] = '\0';
        FUZZ_CHECK(tg_vocab_parse(&w, s, err, sizeof err) == 0, "own format rejected: %s", err);
        FUZZ_CHECK(w.size == v.size && memcmp(w.cps, v.cps, (size_t)v.size * sizeof *v.cps) == 0,
                   "vocabulary format/parse round trip differs");
        tg_vocab_free(&w);
        free(s);
    }
    tg_vocab_free(&v);
}

static void parse_as_metadata(const uint8_t *data, size_t size)
{
    char *s = malloc(size + 1);
    if (!s) return;
    memcpy(s, data, size);
    s[size] = '\0';
    tg_vocab v = {0};
    char err[256];
    err[0] = '\0';
    if (tg_vocab_parse(&v, s, err, sizeof err) == 0) {
        for (int i = 1; i < v.size; i++)
            FUZZ_CHECK(v.cps[i - 1] < v.cps[i], "parsed vocabulary not ascending at %d", i);
        tg_vocab_free(&v);
    } else {
        FUZZ_CHECK_MSG(err, sizeof err);
    }
    free(s);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    uint32_t *cps = NULL;
    size_t n = 0;
    char err[512];
    err[0] = '\0';
    if (tg_text_decode("fuzz.txt", (const char *)data, size, &cps, &n, err, sizeof err) == 0) {
        check_roundtrip(data, size, cps, n);
        check_vocab(cps, n);
        free(cps);
    } else {
        FUZZ_CHECK_MSG(err, sizeof err);
        FUZZ_CHECK(strncmp(err, "fuzz.txt", 8) == 0, "message does not name the file: %s", err);
    }
    parse_as_metadata(data, size);
    return 0;
}
