/* examples/common/text: strict UTF-8 (Hangul, 4-byte forms, every class of
 * invalid sequence with the byte offset and line it is reported at), file
 * errors, the code-point vocabulary and sampling. */
#include <criterion/criterion.h>
#include <dirent.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "text.h"

TestSuite(text, .timeout = 30);

static size_t decode_ok(const char *s, uint32_t **cps)
{
    char err[256];
    size_t n;
    cr_assert_eq(tg_text_decode("t", s, strlen(s), cps, &n, err, sizeof err), 0, "%s", err);
    return n;
}

Test(text, ascii_hangul_and_four_byte)
{
    uint32_t *cps;
    /* "a한국어€😀" */
    size_t n = decode_ok("a\xED\x95\x9C\xEA\xB5\xAD\xEC\x96\xB4\xE2\x82\xAC\xF0\x9F\x98\x80", &cps);
    const uint32_t want[] = {'a', 0xD55C, 0xAD6D, 0xC5B4, 0x20AC, 0x1F600};
    cr_assert_eq(n, 6);
    for (size_t i = 0; i < n; i++) cr_assert_eq(cps[i], want[i], "code point %zu", i);
    free(cps);
}

Test(text, boundary_code_points)
{
    uint32_t *cps;
    /* U+007F U+0080 U+07FF U+0800 U+D7FF U+E000 U+FFFF U+10000 U+10FFFF */
    size_t n = decode_ok("\x7F\xC2\x80\xDF\xBF\xE0\xA0\x80\xED\x9F\xBF\xEE\x80\x80\xEF\xBF\xBF"
                         "\xF0\x90\x80\x80\xF4\x8F\xBF\xBF", &cps);
    const uint32_t want[] = {0x7F, 0x80, 0x7FF, 0x800, 0xD7FF, 0xE000, 0xFFFF, 0x10000, 0x10FFFF};
    cr_assert_eq(n, 9);
    for (size_t i = 0; i < n; i++) cr_assert_eq(cps[i], want[i], "code point %zu", i);
    free(cps);
}

Test(text, encode_round_trip)
{
    const uint32_t cps[] = {0, 'A', 0x7F, 0x80, 0x7FF, 0x800, 0xD55C, 0xFFFF, 0x10000, 0x10FFFF};
    for (size_t i = 0; i < sizeof cps / sizeof cps[0]; i++) {
        char buf[4];
        size_t k = tg_utf8_encode(cps[i], buf), n, bad;
        uint32_t back;
        cr_assert(k >= 1 && k <= 4);
        cr_assert_eq(tg_utf8_decode((const unsigned char *)buf, k, &back, &n, &bad), 0);
        cr_assert_eq(n, 1);
        cr_assert_eq(back, cps[i], "U+%X", cps[i]);
    }
    char buf[4];
    cr_assert_eq(tg_utf8_encode(0xD800, buf), 0, "surrogates have no UTF-8");
    cr_assert_eq(tg_utf8_encode(0x110000, buf), 0);
}

static void expect_invalid(const char *bytes, size_t len, const char *message)
{
    char err[256];
    uint32_t *cps = (uint32_t *)1;
    size_t n = 99;
    cr_assert_eq(tg_text_decode("f.txt", bytes, len, &cps, &n, err, sizeof err), -1,
                 "accepted: %s", message);
    cr_assert_str_eq(err, message);
    cr_assert_null(cps);
    cr_assert_eq(n, 0);
}

Test(text, invalid_sequences_name_line_and_offset)
{
    expect_invalid("\x80", 1, "f.txt:1: invalid UTF-8 at byte offset 0 (byte 0x80)");
    expect_invalid("ab\xC0\xAF", 4, "f.txt:1: invalid UTF-8 at byte offset 2 (byte 0xC0)"); /* overlong */
    expect_invalid("\xE0\x80\xAF", 3, "f.txt:1: invalid UTF-8 at byte offset 0 (byte 0xE0)"); /* overlong */
    expect_invalid("\xF0\x80\x80\xAF", 4, "f.txt:1: invalid UTF-8 at byte offset 0 (byte 0xF0)");
    expect_invalid("x\xED\xA0\x80", 4, "f.txt:1: invalid UTF-8 at byte offset 1 (byte 0xED)"); /* surrogate */
    expect_invalid("\xF4\x90\x80\x80", 4, "f.txt:1: invalid UTF-8 at byte offset 0 (byte 0xF4)"); /* > 10FFFF */
    expect_invalid("\xF5\x80\x80\x80", 4, "f.txt:1: invalid UTF-8 at byte offset 0 (byte 0xF5)");
    expect_invalid("\xFF", 1, "f.txt:1: invalid UTF-8 at byte offset 0 (byte 0xFF)");
    expect_invalid("ok\n\xE4\xB8", 5, "f.txt:2: invalid UTF-8 at byte offset 3 (byte 0xE4)"); /* truncated */
    expect_invalid("\xED\x95" "a", 3, "f.txt:1: invalid UTF-8 at byte offset 0 (byte 0xED)"); /* bad continuation */
    expect_invalid("a\nb\n\xEC\x96\xB4\n\xC3", 9, "f.txt:4: invalid UTF-8 at byte offset 8 (byte 0xC3)");
}

Test(text, empty_and_bom)
{
    char err[256];
    uint32_t *cps;
    size_t n;
    cr_assert_eq(tg_text_decode("e.txt", "", 0, &cps, &n, err, sizeof err), -1);
    cr_assert_str_eq(err, "e.txt: empty text");
    cr_assert_eq(tg_text_decode("b.txt", "\xEF\xBB\xBF", 3, &cps, &n, err, sizeof err), -1);
    cr_assert_str_eq(err, "b.txt: empty text", "a lone byte-order mark is empty");
    cr_assert_eq(tg_text_decode("b.txt", "\xEF\xBB\xBFhi", 5, &cps, &n, err, sizeof err), 0);
    cr_assert_eq(n, 2);
    cr_assert_eq(cps[0], 'h');
    free(cps);
    /* the offset of an error after a BOM counts the BOM's bytes */
    cr_assert_eq(tg_text_decode("b.txt", "\xEF\xBB\xBFh\xFF", 5, &cps, &n, err, sizeof err), -1);
    cr_assert_str_eq(err, "b.txt:1: invalid UTF-8 at byte offset 4 (byte 0xFF)");
}

/* Control characters shown escaped, the rest (UTF-8 included) as it is. */
Test(text, shown_escapes_control_characters)
{
    char out[64];
    tg_text_shown("a\x1B[31mb\x7F\tc \xC2\x9B\xC2\xA0\xED\x95\x9C", out, sizeof out);
    cr_assert_str_eq(out, "a\\x1B[31mb\\x7F\\x09c \\u009B\xC2\xA0\xED\x95\x9C");
    tg_text_shown("\xFF\xC2", out, sizeof out); /* not UTF-8: bytes as they are */
    cr_assert_str_eq(out, "\xFF\xC2");
    tg_text_shown("ab\x1B", out, 6); /* full: cut before the escape, not inside it */
    cr_assert_str_eq(out, "ab");
    tg_text_shown("a\xED\x95\x9C", out, 4); /* nor inside a character */
    cr_assert_str_eq(out, "a");
    FILE *f = tmpfile();
    cr_assert_not_null(f);
    tg_fputs_shown("x\x1B\xC2\x85y\xEC\x96\xB4", f);
    rewind(f);
    size_t n = fread(out, 1, sizeof out - 1, f);
    out[n] = '\0';
    fclose(f);
    cr_assert_str_eq(out, "x\\x1B\\u0085y\xEC\x96\xB4");
}

static void write_file(const char *path, const char *bytes, size_t len)
{
    FILE *f = fopen(path, "wb");
    cr_assert_not_null(f);
    cr_assert_eq(fwrite(bytes, 1, len, f), len);
    fclose(f);
}

/* The file tests' folder: made by temp_dir, removed with what is in it by
 * their .fini, which Criterion runs after a failed assertion too (removed
 * at each test's end, it was left in /tmp whenever an assertion failed). */
static char tmp_dir[32];

static const char *temp_dir(void)
{
    char dir[] = "/tmp/tg_text_XXXXXX";
    cr_assert_not_null(mkdtemp(dir), "mkdtemp %s", dir);
    memcpy(tmp_dir, dir, sizeof dir);
    return tmp_dir;
}

static void remove_temp_dir(void)
{
    DIR *d = tmp_dir[0] ? opendir(tmp_dir) : NULL;
    if (!d) return;
    char path[sizeof tmp_dir + 256];
    for (struct dirent *e; (e = readdir(d)) != NULL;) {
        if (!strcmp(e->d_name, ".") || !strcmp(e->d_name, "..")) continue;
        snprintf(path, sizeof path, "%s/%s", tmp_dir, e->d_name);
        unlink(path); /* files only: the tests make no folder in it */
    }
    closedir(d);
    rmdir(tmp_dir);
    tmp_dir[0] = '\0';
}

Test(text, files, .fini = remove_temp_dir)
{
    const char *dir = temp_dir();
    char path[256], err[512];
    uint32_t *cps;
    size_t n;

    snprintf(path, sizeof path, "%s/missing.txt", dir);
    cr_assert_eq(tg_text_read_file(path, &cps, &n, err, sizeof err), -1);
    cr_assert(strstr(err, "missing.txt: No such file or directory"), "%s", err);

    cr_assert_eq(tg_text_read_file(dir, &cps, &n, err, sizeof err), -1);
    cr_assert(strstr(err, "is a directory"), "%s", err);

    snprintf(path, sizeof path, "%s/empty.txt", dir);
    write_file(path, "", 0);
    cr_assert_eq(tg_text_read_file(path, &cps, &n, err, sizeof err), -1);
    cr_assert(strstr(err, "empty.txt: empty text"), "%s", err);
    remove(path);

    snprintf(path, sizeof path, "%s/bad.txt", dir);
    write_file(path, "line one\nline two \xC3\x28\n", 21);
    cr_assert_eq(tg_text_read_file(path, &cps, &n, err, sizeof err), -1);
    cr_assert(strstr(err, "bad.txt:2: invalid UTF-8 at byte offset 18 (byte 0xC3)"), "%s", err);
    remove(path);

    snprintf(path, sizeof path, "%s/ko.txt", dir);
    write_file(path, "\xEC\x95\x88\xEB\x85\x95\n", 7); /* 안녕\n */
    cr_assert_eq(tg_text_read_file(path, &cps, &n, err, sizeof err), 0, "%s", err);
    cr_assert_eq(n, 3);
    cr_assert_eq(cps[0], 0xC548);
    cr_assert_eq(cps[1], 0xB155);
    cr_assert_eq(cps[2], '\n');
    free(cps);
    remove(path);
}

/* A text of more bytes than the limit is refused: a regular file by its
 * size, a pipe or a device (that may never end) once it has given one byte
 * more; one of exactly the limit is read. */
Test(text, files_over_the_limit, .fini = remove_temp_dir)
{
    const char *dir = temp_dir();
    char path[256], err[512], *bytes;
    size_t len;
    cr_assert_eq(tg_file_read_all("/dev/zero", 1000, &bytes, &len, err, sizeof err), -1);
    cr_assert_str_eq(err, "/dev/zero: more than 1000 bytes, the most a text is read whole into "
                          "memory");
    cr_assert_null(bytes);

    static char block[70001];
    memset(block, 'x', sizeof block);
    snprintf(path, sizeof path, "%s/block.txt", dir);
    write_file(path, block, sizeof block);
    cr_assert_eq(tg_file_read_all(path, sizeof block - 1, &bytes, &len, err, sizeof err), -1);
    cr_assert(strstr(err, "block.txt: more than 70000 bytes"), "%s", err);
    cr_assert_eq(tg_file_read_all(path, sizeof block, &bytes, &len, err, sizeof err), 0, "%s", err);
    cr_assert_eq(len, sizeof block);
    cr_assert_eq(bytes[len], '\0');
    free(bytes);

    /* the same through a pipe (no size up front), past the first 64 KiB read */
    char cmd[512], fdpath[64];
    snprintf(cmd, sizeof cmd, "cat %s", path);
    for (size_t max = sizeof block - 1; max <= sizeof block; max++) {
        FILE *p = popen(cmd, "r");
        cr_assert_not_null(p);
        snprintf(fdpath, sizeof fdpath, "/dev/fd/%d", fileno(p));
        int rc = tg_file_read_all(fdpath, max, &bytes, &len, err, sizeof err);
        pclose(p);
        if (max < sizeof block) {
            cr_assert_eq(rc, -1);
            cr_assert(strstr(err, "more than 70000 bytes"), "%s", err);
        } else {
            cr_assert_eq(rc, 0, "%s", err);
            cr_assert_eq(len, sizeof block);
            cr_assert(memcmp(bytes, block, len) == 0);
            free(bytes);
        }
    }
    remove(path);
}

/* Lines as getline gives them (NULs kept, the last without its newline),
 * at most max bytes each with the newline. */
Test(text, read_line_bounded)
{
    static const char in[] = "ab\nc\0d\n\nxyz";
    FILE *f = fmemopen((void *)in, sizeof in - 1, "r");
    cr_assert_not_null(f);
    char *line = NULL;
    size_t cap = 0, len = 99;
    cr_assert_eq(tg_read_line(f, &line, &cap, 4, &len), 1);
    cr_assert(len == 3 && memcmp(line, "ab\n", 4) == 0);
    cr_assert_eq(tg_read_line(f, &line, &cap, 4, &len), 1); /* exactly max, NUL inside */
    cr_assert(len == 4 && memcmp(line, "c\0d\n", 5) == 0);
    cr_assert_eq(tg_read_line(f, &line, &cap, 4, &len), 1);
    cr_assert(len == 1 && line[0] == '\n');
    cr_assert_eq(tg_read_line(f, &line, &cap, 4, &len), 1); /* no newline at the end */
    cr_assert(len == 3 && strcmp(line, "xyz") == 0);
    cr_assert_eq(tg_read_line(f, &line, &cap, 4, &len), 0);
    fclose(f);

    f = fmemopen((void *)in, sizeof in - 1, "r");
    cr_assert_eq(tg_read_line(f, &line, &cap, 2, &len), -1, "\"ab\\n\" is 3 bytes");
    fclose(f);
    f = fopen("/dev/zero", "rb");
    cr_assert_eq(tg_read_line(f, &line, &cap, 1 << 20, &len), -1);
    cr_assert_leq(cap, (1 << 20) + 1, "the buffer stays within the limit");
    fclose(f);
    free(line);
}

/* ------------------------------------------------------------------ vocabulary */

Test(text, vocab_sorted_unique_and_encodes)
{
    const uint32_t text[] = {0xD55C, 'b', 'a', 0xD55C, '\n', 'b', 0x1F600};
    tg_vocab v;
    cr_assert_eq(tg_vocab_build(&v, text, 7), 0);
    const uint32_t want[] = {'\n', 'a', 'b', 0xD55C, 0x1F600};
    cr_assert_eq(v.size, 5);
    for (int i = 0; i < 5; i++) cr_assert_eq(v.cps[i], want[i]);
    for (int i = 0; i < 5; i++) cr_assert_eq(tg_vocab_id(&v, want[i]), i);
    cr_assert_eq(tg_vocab_id(&v, 'c'), -1);
    cr_assert_eq(tg_vocab_id(&v, 0), -1);
    int ids[7];
    cr_assert_eq(tg_vocab_encode(&v, text, 7, ids, NULL), 0);
    cr_assert_eq(ids[0], 3);
    cr_assert_eq(ids[6], 4);
    const uint32_t unknown[] = {'a', 'z', 'b'};
    size_t bad = 99;
    cr_assert_eq(tg_vocab_encode(&v, unknown, 3, ids, &bad), -1);
    cr_assert_eq(bad, 1);
    char buf[4];
    cr_assert_eq(tg_vocab_utf8(&v, 3, buf), 3);
    cr_assert(memcmp(buf, "\xED\x95\x9C", 3) == 0);
    cr_assert_eq(tg_vocab_utf8(&v, 5, buf), 0, "out of range id");
    tg_vocab_free(&v);
}

Test(text, vocab_format_parse)
{
    const uint32_t text[] = {'z', 0x10FFFF, 0, 0xAC00};
    tg_vocab v, w;
    char err[256];
    cr_assert_eq(tg_vocab_build(&v, text, 4), 0);
    char *s = tg_vocab_format(&v);
    cr_assert_str_eq(s, "0,122,44032,1114111");
    cr_assert_eq(tg_vocab_parse(&w, s, err, sizeof err), 0, "%s", err);
    cr_assert_eq(w.size, v.size);
    cr_assert(memcmp(w.cps, v.cps, (size_t)v.size * sizeof *v.cps) == 0);
    free(s);
    tg_vocab_free(&v);
    tg_vocab_free(&w);
    const char *bad[] = {"", "1,1", "2,1", "1,,2", "1,x", "1114112", "55296", "1,2,", "-1",
                         " 1", "1 ,2"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        cr_assert_eq(tg_vocab_parse(&w, bad[i], err, sizeof err), -1, "accepted '%s'", bad[i]);
        cr_assert(strstr(err, "vocabulary"), "%s", err);
        cr_assert_null(w.cps);
    }
}

/* ------------------------------------------------------------------ sampling */

Test(text, softmax_with_temperature)
{
    const tg_real logits[] = {1, 2, 3, 1000};
    double p[4];
    tg_softmax_temperature(logits, 4, 1.0, p);
    cr_assert_float_eq(p[3], 1.0, 1e-12, "stable for large logits");
    const tg_real small[] = {0, 1};
    tg_softmax_temperature(small, 2, 1.0, p);
    cr_assert_float_eq(p[1], 1 / (1 + exp(-1.0)), 1e-12);
    tg_softmax_temperature(small, 2, 0.5, p);
    cr_assert_float_eq(p[1], 1 / (1 + exp(-2.0)), 1e-12, "T < 1 sharpens");
    tg_softmax_temperature(small, 2, 0.0, p);
    cr_assert(p[0] == 0 && p[1] == 1, "T = 0 is greedy");
}

/* A logit that is NaN or infinite (a model whose weights overflow float) is
 * refused, at any temperature: a NaN is never the largest, and the draw
 * from its NaN probabilities was always the last id. */
Test(text, softmax_refuses_logits_that_are_not_finite)
{
    const tg_real bad[][3] = {{0, NAN, 1}, {NAN, 0, 1}, {0, 1, INFINITY}, {-INFINITY, 0, 1}};
    double p[3];
    tg_rng r;
    tg_rng_seed(&r, 1);
    for (int i = 0; i < 4; i++) {
        cr_assert_eq(tg_softmax_temperature(bad[i], 3, 1.0, p), -1, "row %d", i);
        cr_assert_eq(tg_softmax_temperature(bad[i], 3, 0.0, p), -1, "row %d, T = 0", i);
        cr_assert_eq(tg_sample_logits(bad[i], 3, 1.0, &r, p), -1, "row %d", i);
    }
    const tg_real big[] = {-3e38f, 3e38f, 0};
    cr_assert_eq(tg_softmax_temperature(big, 3, 1.0, p), 0, "finite, however large");
    cr_assert(p[1] == 1 && p[0] == 0);
}

Test(text, sampling_is_deterministic_and_follows_probs)
{
    const tg_real logits[] = {0, 1.3862943611198906}; /* p = 0.2, 0.8 */
    double scratch[2];
    tg_rng a, b;
    tg_rng_seed(&a, 42);
    tg_rng_seed(&b, 42);
    int ones = 0, n = 20000;
    for (int i = 0; i < n; i++) {
        int x = tg_sample_logits(logits, 2, 1.0, &a, scratch);
        cr_assert_eq(x, tg_sample_logits(logits, 2, 1.0, &b, scratch), "draw %d differs", i);
        ones += x;
    }
    cr_assert(fabs((double)ones / n - 0.8) < 0.015, "frequency %g, want 0.8", (double)ones / n);
    const double p[] = {0, 0.5, 0, 0.5, 0};
    for (int i = 0; i < 1000; i++) {
        int x = tg_sample_index(p, 5, &a);
        cr_assert(x == 1 || x == 3, "drew a zero-probability index %d", x);
    }
}
