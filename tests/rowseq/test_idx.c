/* IDX reader: good files (plain, gzip, multi-member gzip) read back exactly;
 * every kind of bad file is rejected with a message naming the file, what is
 * wrong and the expected vs actual value. */
#include <criterion/criterion.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "idx.h"
#include "idx_files.h"

static char dir[4096];
static char path[4300];
static char msg[8192];

static void setup(void) { tmpdir_make(dir, sizeof dir); }
static void teardown(void) { tmpdir_remove(dir); }

TestSuite(idx, .init = setup, .fini = teardown);

/* Asserts msg contains each of the NULL-terminated strings. */
static void expect_msg(const char *first, ...)
{
    va_list ap;
    va_start(ap, first);
    for (const char *s = first; s; s = va_arg(ap, const char *))
        cr_expect(strstr(msg, s) != NULL, "message lacks '%s': %s", s, msg);
    va_end(ap);
}

static const uint8_t pix12[12] = {0, 1, 2, 3, 4, 5, 250, 251, 252, 253, 254, 255};

static idx_status read_images_file(const void *bytes, size_t n, int gz, idx_images *im)
{
    write_file(dir, gz ? "img.gz" : "img", bytes, n, gz, path, sizeof path);
    memset(msg, 0, sizeof msg);
    return idx_read_images(path, im, msg, sizeof msg);
}

static idx_status read_labels_file(const void *bytes, size_t n, int gz, idx_labels *lb)
{
    write_file(dir, gz ? "lab.gz" : "lab", bytes, n, gz, path, sizeof path);
    memset(msg, 0, sizeof msg);
    return idx_read_labels(path, 10, lb, msg, sizeof msg);
}

Test(idx, plain_and_gzip_images_read_back_exactly)
{
    size_t n;
    uint8_t *b = idx_images_bytes(0x803, 3, 2, 2, pix12, 12, &n);
    for (int gz = 0; gz < 2; gz++) {
        idx_images im;
        cr_assert_eq(read_images_file(b, n, gz, &im), IDX_OK, "%s", msg);
        cr_expect_eq(im.count, 3);
        cr_expect_eq(im.rows, 2);
        cr_expect_eq(im.cols, 2);
        cr_expect_arr_eq(im.pixels, pix12, 12);
        idx_images_free(&im);
        cr_expect_null(im.pixels);
    }
    free(b);
}

Test(idx, labels_read_back_and_pair_with_images)
{
    const uint8_t lab[3] = {9, 0, 4};
    size_t n, ni;
    uint8_t *b = idx_labels_bytes(0x801, 3, lab, 3, &n);
    idx_labels lb;
    cr_assert_eq(read_labels_file(b, n, 1, &lb), IDX_OK, "%s", msg);
    cr_expect_eq(lb.count, 3);
    cr_expect_arr_eq(lb.labels, lab, 3);
    uint8_t *bi = idx_images_bytes(0x803, 3, 2, 2, pix12, 12, &ni);
    idx_images im;
    cr_assert_eq(read_images_file(bi, ni, 0, &im), IDX_OK, "%s", msg);
    cr_expect_eq(idx_check_pair("img", &im, "lab", &lb, msg, sizeof msg), IDX_OK);
    idx_images_free(&im);
    idx_labels_free(&lb);
    free(b);
    free(bi);
}

Test(idx, multi_member_gzip_is_one_stream)
{
    /* cat a.gz b.gz: zlib inflates both members back to back. */
    size_t n;
    uint8_t *b = idx_images_bytes(0x803, 3, 2, 2, pix12, 12, &n);
    char p1[4300], p2[4300];
    write_file(dir, "a.gz", b, 10, 1, p1, sizeof p1);
    write_file(dir, "b.gz", b + 10, n - 10, 1, p2, sizeof p2);
    char cmd[13000];
    snprintf(cmd, sizeof cmd, "cat '%s' '%s' > '%s/ab.gz'", p1, p2, dir);
    cr_assert_eq(system(cmd), 0);
    snprintf(path, sizeof path, "%s/ab.gz", dir);
    idx_images im;
    cr_assert_eq(idx_read_images(path, &im, msg, sizeof msg), IDX_OK, "%s", msg);
    cr_expect_arr_eq(im.pixels, pix12, 12);
    idx_images_free(&im);
    free(b);
}

Test(idx, wrong_magic)
{
    size_t n;
    uint8_t *b = idx_images_bytes(0x12345678, 3, 2, 2, pix12, 12, &n);
    idx_images im;
    cr_expect_eq(read_images_file(b, n, 0, &im), IDX_ERR_FORMAT);
    expect_msg(path, "bad magic number 0x12345678", "expected 0x00000803", "not an IDX file", NULL);
    cr_expect_null(im.pixels);
    free(b);
    /* a labels file given as images */
    b = idx_images_bytes(0x801, 3, 2, 2, pix12, 12, &n);
    cr_expect_eq(read_images_file(b, n, 0, &im), IDX_ERR_FORMAT);
    expect_msg("bad magic number 0x00000801", "expected 0x00000803", "labels file", NULL);
    free(b);
    /* float elements (dtype 0x0d) */
    b = idx_images_bytes(0x0d03, 3, 2, 2, pix12, 12, &n);
    cr_expect_eq(read_images_file(b, n, 0, &im), IDX_ERR_FORMAT);
    expect_msg("0x00000d03", "not unsigned byte", NULL);
    free(b);
    /* an images file given as labels */
    b = idx_images_bytes(0x803, 3, 2, 2, pix12, 12, &n);
    idx_labels lb;
    cr_expect_eq(read_labels_file(b, n, 0, &lb), IDX_ERR_FORMAT);
    expect_msg(path, "bad magic number 0x00000803", "expected 0x00000801", "images file", NULL);
    free(b);
}

Test(idx, truncated_payload)
{
    size_t n;
    uint8_t *b = idx_images_bytes(0x803, 3, 2, 2, pix12, 12, &n);
    idx_images im;
    cr_expect_eq(read_images_file(b, n - 5, 0, &im), IDX_ERR_FORMAT);
    expect_msg(path, "truncated", "3 images of 2x2", "= 28 bytes", "data has 23 bytes",
               "5 missing", NULL);
    free(b);
    const uint8_t lab[4] = {1, 2, 3, 4};
    b = idx_labels_bytes(0x801, 4, lab, 4, &n);
    idx_labels lb;
    cr_expect_eq(read_labels_file(b, n - 1, 0, &lb), IDX_ERR_FORMAT);
    expect_msg(path, "truncated", "4 labels", "12 bytes", "data has 11 bytes", NULL);
    free(b);
}

Test(idx, truncated_header)
{
    size_t n;
    uint8_t *b = idx_images_bytes(0x803, 3, 2, 2, pix12, 12, &n);
    idx_images im;
    cr_expect_eq(read_images_file(b, 10, 0, &im), IDX_ERR_FORMAT);
    expect_msg(path, "truncated header", "expected 16 bytes", "got 10", NULL);
    cr_expect_eq(read_images_file(b, 3, 0, &im), IDX_ERR_FORMAT);
    expect_msg(path, "truncated", "got 3 bytes", NULL);
    free(b);
}

Test(idx, dimensions_disagree_with_size)
{
    /* 12 pixel bytes, but the header says 3 images of 2x1 = 6 */
    size_t n;
    uint8_t *b = idx_images_bytes(0x803, 3, 2, 1, pix12, 12, &n);
    idx_images im;
    cr_expect_eq(read_images_file(b, n, 0, &im), IDX_ERR_FORMAT);
    expect_msg(path, "dimensions disagree with the size", "3 images of 2x1", "22 bytes",
               "data has 28 bytes", "6 extra", NULL);
    free(b);
}

Test(idx, absurd_dimensions_rejected_before_allocating)
{
    size_t n;
    idx_images im;
    uint8_t *b = idx_images_bytes(0x803, 3, 0, 2, pix12, 12, &n);
    cr_expect_eq(read_images_file(b, n, 0, &im), IDX_ERR_FORMAT);
    expect_msg("image size 0x2", "expected rows and cols in 1..4096", NULL);
    free(b);
    b = idx_images_bytes(0x803, 0, 2, 2, NULL, 0, &n);
    cr_expect_eq(read_images_file(b, n, 0, &im), IDX_ERR_FORMAT);
    expect_msg("image count 0", "expected 1..", NULL);
    free(b);
    /* 4096 x 4096 x 4096 bytes: over the 1 GiB cap even though each dim is ok */
    b = idx_images_bytes(0x803, 4096, 4096, 4096, pix12, 12, &n);
    cr_expect_eq(read_images_file(b, n, 0, &im), IDX_ERR_FORMAT);
    expect_msg("larger than the", "cap", NULL);
    free(b);
    b = idx_images_bytes(0x803, 0xffffffffu, 1, 1, pix12, 12, &n);
    cr_expect_eq(read_images_file(b, n, 0, &im), IDX_ERR_FORMAT);
    expect_msg("image count 4294967295", NULL);
    free(b);
}

Test(idx, labels_out_of_range)
{
    const uint8_t lab[5] = {0, 9, 10, 3, 255};
    size_t n;
    uint8_t *b = idx_labels_bytes(0x801, 5, lab, 5, &n);
    idx_labels lb;
    cr_expect_eq(read_labels_file(b, n, 0, &lb), IDX_ERR_FORMAT);
    expect_msg(path, "label 10 at index 2", "out of range", "expected 0..9", NULL);
    cr_expect_null(lb.labels);
    free(b);
}

Test(idx, count_mismatch_between_images_and_labels)
{
    idx_images im = {.count = 3, .rows = 2, .cols = 2};
    idx_labels lb = {.count = 2};
    cr_expect_eq(idx_check_pair("train-images", &im, "train-labels", &lb, msg, sizeof msg),
                 IDX_ERR_FORMAT);
    expect_msg("train-labels", "2 labels", "train-images", "3 images", NULL);
}

Test(idx, gzip_compressed_bad_files)
{
    /* A well-formed gzip stream around a bad IDX file: the message names the
     * file, says the sizes are decompressed ones, and what is wrong. */
    size_t n;
    uint8_t *b = idx_images_bytes(0x803, 3, 2, 2, pix12, 12, &n);
    idx_images im;
    cr_expect_eq(read_images_file(b, n - 4, 1, &im), IDX_ERR_FORMAT);
    expect_msg(path, "(gunzipped)", "truncated", "data has 24 bytes", NULL);
    put_be32(b, 0x0803u << 8);
    cr_expect_eq(read_images_file(b, n, 1, &im), IDX_ERR_FORMAT);
    expect_msg(path, "(gunzipped)", "bad magic number", NULL);
    free(b);
}

Test(idx, broken_gzip_streams)
{
    size_t n;
    uint8_t *b = idx_images_bytes(0x803, 3, 2, 2, pix12, 12, &n);
    idx_images im;
    /* compress, then cut the .gz file short */
    write_file(dir, "full.gz", b, n, 1, path, sizeof path);
    FILE *f = fopen(path, "rb");
    uint8_t gz[512];
    size_t gn = fread(gz, 1, sizeof gz, f);
    fclose(f);
    cr_assert_gt(gn, 20);
    write_file(dir, "cut.gz", gz, gn - 6, 0, path, sizeof path);
    cr_expect_eq(idx_read_images(path, &im, msg, sizeof msg), IDX_ERR_FORMAT);
    expect_msg(path, "truncated gzip stream", NULL);
    /* a corrupt deflate block / checksum */
    uint8_t bad[512];
    memcpy(bad, gz, gn);
    for (size_t i = 12; i < gn; i++) bad[i] ^= 0x5a;
    write_file(dir, "corrupt.gz", bad, gn, 0, path, sizeof path);
    cr_expect_eq(idx_read_images(path, &im, msg, sizeof msg), IDX_ERR_FORMAT);
    expect_msg(path, "gzip", NULL);
    /* junk after a complete stream */
    memcpy(bad, gz, gn);
    memcpy(bad + gn, "JUNK", 4);
    write_file(dir, "junk.gz", bad, gn + 4, 0, path, sizeof path);
    cr_expect_eq(idx_read_images(path, &im, msg, sizeof msg), IDX_ERR_FORMAT);
    expect_msg(path, "4 bytes of trailing garbage", NULL);
    /* just the gzip magic */
    write_file(dir, "magic.gz", gz, 2, 0, path, sizeof path);
    cr_expect_eq(idx_read_images(path, &im, msg, sizeof msg), IDX_ERR_FORMAT);
    expect_msg(path, "truncated gzip stream", NULL);
    free(b);
}

Test(idx, empty_files)
{
    idx_images im;
    idx_labels lb;
    cr_expect_eq(read_images_file("", 0, 0, &im), IDX_ERR_FORMAT);
    expect_msg(path, "empty file", "16 bytes", "got 0 bytes", NULL);
    cr_expect_eq(read_labels_file("", 0, 0, &lb), IDX_ERR_FORMAT);
    expect_msg(path, "empty file", "8 bytes", NULL);
    /* an empty gzip stream decompresses to nothing */
    cr_expect_eq(read_images_file("", 0, 1, &im), IDX_ERR_FORMAT);
    expect_msg(path, "(gunzipped)", "empty file", NULL);
}

Test(idx, missing_file_is_an_io_error)
{
    snprintf(path, sizeof path, "%s/no-such-file", dir);
    idx_images im;
    cr_expect_eq(idx_read_images(path, &im, msg, sizeof msg), IDX_ERR_IO);
    expect_msg(path, "cannot open", "No such file", NULL);
}

Test(idx, memory_api_never_reads_past_the_buffer)
{
    /* Every prefix of a good file, parsed from an exact-size heap copy
     * (run under a sanitizer/valgrind this catches over-reads). */
    size_t n;
    uint8_t *b = idx_images_bytes(0x803, 3, 2, 2, pix12, 12, &n);
    for (size_t k = 0; k <= n; k++) {
        uint8_t *copy = malloc(k ? k : 1);
        memcpy(copy, b, k);
        idx_images im;
        idx_status st = idx_parse_images("mem", copy, k, &im, msg, sizeof msg);
        cr_expect_eq(st, k == n ? IDX_OK : IDX_ERR_FORMAT, "prefix %zu: %s", k, msg);
        idx_images_free(&im);
        free(copy);
    }
    free(b);
}

Test(idx, decode_passes_plain_bytes_through)
{
    const uint8_t raw[5] = {0, 0, 8, 1, 7};
    uint8_t *out;
    size_t n;
    cr_assert_eq(idx_decode("mem", raw, 5, &out, &n, msg, sizeof msg), IDX_OK);
    cr_expect_eq(n, 5);
    cr_expect_arr_eq(out, raw, 5);
    free(out);
}
