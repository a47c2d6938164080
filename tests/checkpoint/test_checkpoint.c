/* Checkpoints: safetensors round trips, every rejection path of the loader
 * (each must fail with a message naming the field and leave the model
 * untouched), atomic writes that keep the old file when a write fails, and
 * exact resume (N steps + save + load + M steps == N+M steps, bitwise) for
 * every optimizer. */
#include <criterion/criterion.h>
#include <dirent.h>
#include <jansson.h>
#include <errno.h>
#include <math.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "ckptedit.h"
#include "st_header.h"
#include "tapegrad.h"
#include "tg_checkpoint.h"
#include "tg_optim.h"

/* ------------------------------------------------------------------ helpers */

static char dir[64];

static void make_dir(void)
{
    strcpy(dir, "/tmp/tg_ckpt_XXXXXX");
    cr_assert_not_null(mkdtemp(dir), "mkdtemp: %s", strerror(errno));
}

/* Removes the test's directory (files only, one level). */
static void remove_dir(void)
{
    DIR *d = opendir(dir);
    if (!d) return;
    struct dirent *e;
    char p[512];
    while ((e = readdir(d)))
        if (strcmp(e->d_name, ".") && strcmp(e->d_name, "..")) {
            snprintf(p, sizeof p, "%s/%s", dir, e->d_name);
            if (rmdir(p) != 0) unlink(p);
        }
    closedir(d);
    rmdir(dir);
}

TestSuite(checkpoint, .init = make_dir, .fini = remove_dir);

static char *path_in_dir(const char *name)
{
    static char p[4][256];
    static int k;
    k = (k + 1) % 4;
    snprintf(p[k], sizeof p[k], "%s/%s", dir, name);
    return p[k];
}

static int count_tmp_files(void)
{
    DIR *d = opendir(dir);
    int n = 0;
    struct dirent *e;
    while (d && (e = readdir(d)))
        if (strstr(e->d_name, ".tmp.")) n++;
    if (d) closedir(d);
    return n;
}

static unsigned char *slurp(const char *path, size_t *len)
{
    FILE *f = fopen(path, "rb");
    cr_assert_not_null(f, "cannot open %s", path);
    fseek(f, 0, SEEK_END);
    long n = ftell(f);
    fseek(f, 0, SEEK_SET);
    unsigned char *b = malloc((size_t)n + 1);
    cr_assert_eq(fread(b, 1, (size_t)n, f), (size_t)n);
    fclose(f);
    *len = (size_t)n;
    return b;
}

static void spit(const char *path, const void *b, size_t n)
{
    FILE *f = fopen(path, "wb");
    cr_assert_not_null(f);
    cr_assert_eq(fwrite(b, 1, n, f), n);
    fclose(f);
}

/* A model: w 2x3, b 1x3, emb 4x2, random values from seed. */
static tg_params *model(uint64_t seed)
{
    tg_rng r;
    tg_rng_seed(&r, seed);
    tg_params *p = tg_params_new();
    cr_assert_not_null(tg_param_uniform(p, "w", 2, 3, &r, 1.0));
    cr_assert_not_null(tg_param_uniform(p, "b", 1, 3, &r, 1.0));
    cr_assert_not_null(tg_param_uniform(p, "emb", 4, 2, &r, 1.0));
    return p;
}

static void fill(tg_params *p, tg_real v)
{
    for (size_t i = 0; i < tg_params_numel(p); i++) tg_params_data(p)[i] = v;
}

static int all_equal(tg_params *p, tg_real v)
{
    for (size_t i = 0; i < tg_params_numel(p); i++)
        if (tg_params_data(p)[i] != v) return 0;
    return 1;
}

static int same_values(tg_params *a, tg_params *b)
{
    return tg_params_numel(a) == tg_params_numel(b) &&
           memcmp(tg_params_data(a), tg_params_data(b), tg_params_numel(a) * sizeof(tg_real)) == 0;
}

/* A safetensors file from a header string and raw data bytes. */
static size_t build(unsigned char *out, size_t cap, const char *header, const void *data,
                    size_t dlen)
{
    size_t h = strlen(header);
    cr_assert(8 + h + dlen <= cap);
    for (int k = 0; k < 8; k++) out[k] = (unsigned char)((uint64_t)h >> (8 * k));
    memcpy(out + 8, header, h);
    if (dlen) memcpy(out + 8 + h, data, dlen);
    return 8 + h + dlen;
}

/* ------------------------------------------------------------------ round trips */

Test(checkpoint, save_load_round_trip_is_bitwise)
{
    tg_params *a = model(1), *b = model(2);
    char err[512];
    const char *path = path_in_dir("m.safetensors");
    cr_assert_eq(tg_checkpoint_save(path, a, NULL, 0, NULL, 0, err, sizeof err), 0, "%s", err);
    cr_assert(!same_values(a, b));
    cr_assert_eq(tg_checkpoint_load(path, b, err, sizeof err), 0, "%s", err);
    cr_assert(same_values(a, b), "loaded values differ from saved ones");

    /* Layout: 8-byte length, header padded to 8, then 17 values. */
    size_t len;
    unsigned char *raw = slurp(path, &len);
    uint64_t h = pt_header_len(raw);
    cr_assert_eq(h % 8, 0, "header padded to a multiple of 8");
    cr_assert_eq(len, 8 + h + 17 * sizeof(tg_real));
    cr_assert(strstr((char *)raw + 8, sizeof(tg_real) == 4 ? "\"F32\"" : "\"F64\""));
    cr_assert_eq(count_tmp_files(), 0);
    free(raw);
    tg_params_free(a);
    tg_params_free(b);
}

/* TG_CKPT_CRC_KEY: every data byte is covered; a file without the key (as
 * other tools write) loads unchecked; a malformed value is named. */
Test(checkpoint, data_checksum_catches_any_changed_byte)
{
    tg_params *a = model(1), *b = model(2);
    char err[512];
    const char *path = path_in_dir("crc.safetensors"), *bad = path_in_dir("crc_bad.safetensors");
    cr_assert_eq(tg_checkpoint_save(path, a, NULL, 0, NULL, 0, err, sizeof err), 0, "%s", err);
    tg_checkpoint *c = tg_checkpoint_open(path, err, sizeof err);
    cr_assert_not_null(c, "%s", err);
    const char *crc = tg_checkpoint_meta(c, TG_CKPT_CRC_KEY);
    cr_assert(crc && strlen(crc) == 8, "the save wrote no checksum");
    cr_assert_eq(tg_checkpoint_meta_count(c), 0, "the checksum is listed as model metadata");
    tg_checkpoint_close(c);
    size_t len;
    unsigned char *raw = slurp(path, &len);
    size_t data = len - 17 * sizeof(tg_real);
    for (size_t at = data; at < len; at++) /* one bit of every data byte in turn */
        for (int bit = 0; bit < 8; bit += 7) {
            raw[at] ^= (unsigned char)(1u << bit);
            spit(bad, raw, len);
            raw[at] ^= (unsigned char)(1u << bit);
            cr_assert_eq(tg_checkpoint_load(bad, b, err, sizeof err), -1, "byte %zu bit %d", at,
                         bit);
            cr_assert(strstr(err, "checksum") && strstr(err, "damaged"), "%s", err);
        }
    cr_assert(!same_values(a, b), "a refused file changed the model");
    unsigned char *longer = malloc(len + 4);
    memcpy(longer, raw, len);
    memset(longer + len, 0, 4);
    spit(bad, longer, len + 4); /* refused before the checksum: no tensor holds them */
    cr_assert_eq(tg_checkpoint_load(bad, b, err, sizeof err), -1, "bytes appended");
    cr_assert(strstr(err, "4 bytes follow the last tensor's data"), "%s", err);

    /* the same file with the key's digits changed: the header's checksum
     * tells; with that made to match (a tool that kept the key), the data's
     * checksum is malformed, or wrong */
    char *key = strstr((char *)raw + 8, TG_CKPT_CRC_KEY "\":\"");
    cr_assert_not_null(key);
    char *digits = key + strlen(TG_CKPT_CRC_KEY "\":\""), first = digits[0];
    const char other[] = {'G', first == '0' ? '1' : '0'};
    const char *want[] = {"8 lowercase hex digits", "the header's '" TG_CKPT_CRC_KEY "' says"};
    for (int i = 0; i < 2; i++) {
        digits[0] = other[i];
        spit(bad, raw, len);
        cr_assert_eq(tg_checkpoint_load(bad, b, err, sizeof err), -1);
        cr_assert(strstr(err, "'" TG_CKPT_HEADER_CRC_KEY "' says"), "%s", err);
        char *fixed = malloc(len);
        size_t fixed_len = len;
        memcpy(fixed, raw, len);
        pt_fix_header_crc(&fixed, &fixed_len);
        spit(bad, fixed, fixed_len);
        free(fixed);
        cr_assert_eq(tg_checkpoint_load(bad, b, err, sizeof err), -1);
        cr_assert(strstr(err, want[i]), "%s", err);
    }
    digits[0] = first;

    /* no key (tg_checkpoint_save_tensors, as for other tools): loads */
    const tg_tensor *w = tg_params_find(a, "w");
    const tg_ckpt_tensor t[] = {{"w", w->data, w->rows, w->cols}};
    cr_assert_eq(tg_checkpoint_save_tensors(bad, t, 1, NULL, 0, err, sizeof err), 0, "%s", err);
    c = tg_checkpoint_open(bad, err, sizeof err);
    cr_assert_not_null(c, "%s", err);
    cr_assert_null(tg_checkpoint_meta(c, TG_CKPT_CRC_KEY));
    tg_checkpoint_close(c);
    const tg_ckpt_meta reserved[] = {{TG_CKPT_CRC_KEY, "00000000"}};
    cr_assert_eq(tg_checkpoint_save(bad, a, NULL, 0, reserved, 1, err, sizeof err), -1);
    cr_assert(strstr(err, "reserved"), "%s", err);
    free(longer);
    free(raw);
    tg_params_free(a);
    tg_params_free(b);
}

/* Replaces the first `from` in the header of raw (its 8 + header bytes)
 * with `to`, of the same length. */
static void edit_header(unsigned char *raw, const char *from, const char *to)
{
    cr_assert_eq(strlen(from), strlen(to));
    uint64_t h = pt_header_len(raw);
    size_t n = strlen(from), at = 8;
    while (at + n <= 8 + h && memcmp(raw + at, from, n) != 0) at++;
    cr_assert(at + n <= 8 + h, "no '%s' in the header", from);
    memcpy(raw + at, to, n);
}

/* TG_CKPT_HEADER_CRC_KEY: an edited metadata value or shape is refused; the
 * same header written another way (sorted keys, indented, as a tool that
 * reads and writes JSON would) still loads; unlisted, and reserved. */
Test(checkpoint, header_checksum_catches_edits_and_survives_rewrites)
{
    tg_params *a = model(1), *b = model(2);
    char err[512];
    const char *path = path_in_dir("hcrc.safetensors"), *bad = path_in_dir("hcrc_bad.safetensors");
    const tg_ckpt_meta meta[] = {{"step", "1000"}, {"lr", "0.002"}};
    cr_assert_eq(tg_checkpoint_save(path, a, NULL, 0, meta, 2, err, sizeof err), 0, "%s", err);
    tg_checkpoint *c = tg_checkpoint_open(path, err, sizeof err);
    cr_assert_not_null(c, "%s", err);
    cr_assert_not_null(tg_checkpoint_meta(c, TG_CKPT_HEADER_CRC_KEY), "no header checksum");
    cr_assert_eq(tg_checkpoint_meta_count(c), 2, "the checksum is listed as model metadata");
    tg_checkpoint_close(c);
    size_t len;
    unsigned char *raw = slurp(path, &len);
    const char *edits[][2] = {{"\"1000\"", "\"1900\""}, {"\"0.002\"", "\"0.003\""},
                              {"[2,3]", "[3,2]"}, {"\"step\"", "\"stop\""}};
    for (size_t i = 0; i < sizeof edits / sizeof *edits; i++) {
        unsigned char *copy = malloc(len);
        memcpy(copy, raw, len);
        edit_header(copy, edits[i][0], edits[i][1]);
        spit(bad, copy, len);
        free(copy);
        cr_assert_eq(tg_checkpoint_load(bad, b, err, sizeof err), -1, "%s -> %s loaded",
                     edits[i][0], edits[i][1]);
        cr_assert(strstr(err, "'" TG_CKPT_HEADER_CRC_KEY "' says") && strstr(err, "damaged"),
                  "%s", err);
    }
    cr_assert(!same_values(a, b), "a refused file changed the model");
    /* the checksum's own key damaged (any one byte of its name): refused,
     * not loaded as a file without the check */
    const char *name = TG_CKPT_HEADER_CRC_KEY;
    for (size_t at = 0; at < strlen(name); at++) {
        char from[64], to[64];
        snprintf(from, sizeof from, "\"%s\"", name);
        snprintf(to, sizeof to, "\"%s\"", name);
        to[1 + at] = (char)(to[1 + at] == 'x' ? 'y' : 'x');
        unsigned char *copy = malloc(len);
        memcpy(copy, raw, len);
        edit_header(copy, from, to);
        spit(bad, copy, len);
        free(copy);
        cr_assert_eq(tg_checkpoint_load(bad, b, err, sizeof err), -1, "%s loaded", to);
        cr_assert(strstr(err, "one byte changed") && strstr(err, "damaged"), "%s", err);
    }
    /* a byte changed to '\\' escapes the next ("\\r": one control byte for two);
     * two bytes changed is another key: the file loads, unchecked, as one
     * without the checksum (older files, other tools') */
    const char *others[][2] = {{"\"tape\\rad.header_crc32\"", "one byte changed"},
                               {"\"tapegrad.heaxer_crx32\"", NULL}};
    for (size_t i = 0; i < sizeof others / sizeof *others; i++) {
        unsigned char *copy = malloc(len);
        memcpy(copy, raw, len);
        edit_header(copy, "\"" TG_CKPT_HEADER_CRC_KEY "\"", others[i][0]);
        spit(bad, copy, len);
        free(copy);
        int rc = tg_checkpoint_load(bad, b, err, sizeof err);
        if (others[i][1])
            cr_assert(rc == -1 && strstr(err, others[i][1]), "%s: %s", others[i][0], err);
        else
            cr_assert_eq(rc, 0, "%s: %s", others[i][0], err);
    }

    /* rewritten: sorted keys, indented, the data as it was */
    uint64_t h = pt_header_len(raw);
    json_t *root = json_loadb((const char *)raw + 8, (size_t)h, 0, NULL);
    cr_assert_not_null(root);
    char *other = json_dumps(root, JSON_INDENT(2) | JSON_SORT_KEYS);
    cr_assert_not_null(other);
    cr_assert_neq(strlen(other), (size_t)h, "the rewrite kept the same bytes");
    unsigned char *re = malloc(8 + strlen(other) + len);
    size_t n = build(re, 8 + strlen(other) + len, other, raw + 8 + h, len - 8 - (size_t)h);
    spit(bad, re, n);
    cr_assert_eq(tg_checkpoint_load(bad, b, err, sizeof err), 0, "%s", err);
    cr_assert(same_values(a, b), "the rewritten file loads other values");

    /* the key, and a name the reader would take for it damaged, are the
     * library's: a file it writes always loads */
    const tg_ckpt_meta reserved[][1] = {{{TG_CKPT_HEADER_CRC_KEY, "00000000"}},
                                        {{"tapegrad.header_crc33", "x"}}};
    for (size_t i = 0; i < 2; i++) {
        cr_assert_eq(tg_checkpoint_save(bad, a, NULL, 0, reserved[i], 1, err, sizeof err), -1);
        cr_assert(strstr(err, "reserved"), "%s", err);
    }
    free(re);
    free(other);
    json_decref(root);
    free(raw);
    tg_params_free(a);
    tg_params_free(b);
}

Test(checkpoint, loaded_model_gives_bitwise_identical_outputs)
{
    tg_params *a = model(3), *b = model(4);
    char err[512];
    const char *path = path_in_dir("m.safetensors");
    cr_assert_eq(tg_checkpoint_save(path, a, NULL, 0, NULL, 0, err, sizeof err), 0, "%s", err);
    cr_assert_eq(tg_checkpoint_load(path, b, err, sizeof err), 0, "%s", err);
    tg_tape *t = tg_tape_new(1 << 20);
    const tg_real xin[4] = {0.5f, -1, 2, 0.25f};
    tg_tensor *x = tg_tensor_from(t, 2, 2, xin);
    tg_tensor *ya = tg_tanh(t, tg_add(t, tg_matmul(t, x, tg_params_find(a, "w"), 0, 0),
                                      tg_params_find(a, "b")));
    tg_tensor *yb = tg_tanh(t, tg_add(t, tg_matmul(t, x, tg_params_find(b, "w"), 0, 0),
                                      tg_params_find(b, "b")));
    cr_assert(memcmp(ya->data, yb->data, tg_numel(ya) * sizeof(tg_real)) == 0);
    tg_tape_free(t);
    tg_params_free(a);
    tg_params_free(b);
}

Test(checkpoint, other_precision_file_is_converted)
{
    /* Write w, b, emb in the dtype this build does NOT use. */
    tg_params *p = model(5);
    enum { N = 17 };
    double vals[N];
    for (int i = 0; i < N; i++) vals[i] = 0.1 * (i + 1) - 0.75;
    unsigned char data[N * 8], file[4096];
    const char *header;
    size_t dlen;
#ifdef TG_REAL_DOUBLE
    for (int i = 0; i < N; i++) {
        float f = (float)vals[i];
        memcpy(data + 4 * i, &f, 4);
    }
    dlen = N * 4;
    header = "{\"w\":{\"dtype\":\"F32\",\"shape\":[2,3],\"data_offsets\":[0,24]},"
             "\"b\":{\"dtype\":\"F32\",\"shape\":[3],\"data_offsets\":[24,36]},"
             "\"emb\":{\"dtype\":\"F32\",\"shape\":[4,2],\"data_offsets\":[36,68]}}";
#else
    memcpy(data, vals, sizeof vals);
    dlen = N * 8;
    header = "{\"w\":{\"dtype\":\"F64\",\"shape\":[2,3],\"data_offsets\":[0,48]},"
             "\"b\":{\"dtype\":\"F64\",\"shape\":[3],\"data_offsets\":[48,72]},"
             "\"emb\":{\"dtype\":\"F64\",\"shape\":[4,2],\"data_offsets\":[72,136]}}";
#endif
    const char *path = path_in_dir("other.safetensors");
    spit(path, file, build(file, sizeof file, header, data, dlen));
    char err[512];
    cr_assert_eq(tg_checkpoint_load(path, p, err, sizeof err), 0, "%s", err);
    for (int i = 0; i < N; i++) {
#ifdef TG_REAL_DOUBLE
        tg_real want = (tg_real)(float)vals[i];
#else
        tg_real want = (tg_real)vals[i];
#endif
        cr_assert_eq(tg_params_data(p)[i], want, "value %d: %.9g vs %.9g", i,
                     (double)tg_params_data(p)[i], (double)want);
    }
    tg_params_free(p);
}

Test(checkpoint, metadata_round_trip)
{
    tg_params *p = model(6);
    tg_rng r, back;
    tg_rng_seed(&r, 99);
    tg_rng_u64(&r);
    char hex[TG_RNG_HEX_LEN], err[512];
    tg_checkpoint_rng_hex(&r, hex);
    cr_assert_eq(strlen(hex), 64);
    const tg_ckpt_meta meta[] = {
        {"cell", "lstm"},
        {"hidden", "256"},
        {"vocab", "ab\xed\x95\x9c\xea\xb8\x80\"\\\n"}, /* Korean, quote, backslash, newline */
        {"rng.dropout", hex},
        {"data.position", "18446744073709551615"},
    };
    const char *path = path_in_dir("meta.safetensors");
    cr_assert_eq(tg_checkpoint_save(path, p, NULL, 0, meta, 5, err, sizeof err), 0, "%s", err);
    tg_checkpoint *c = tg_checkpoint_open(path, err, sizeof err);
    cr_assert_not_null(c, "%s", err);
    cr_assert_eq(tg_checkpoint_meta_count(c), 5);
    for (size_t i = 0; i < 5; i++) {
        cr_assert_str_eq(tg_checkpoint_meta_key(c, i), meta[i].key, "order kept");
        cr_assert_str_eq(tg_checkpoint_meta(c, meta[i].key), meta[i].value);
    }
    cr_assert_null(tg_checkpoint_meta(c, "absent"));
    uint64_t pos = 0;
    cr_assert_eq(tg_checkpoint_meta_u64(c, "data.position", &pos, err, sizeof err), 0, "%s", err);
    cr_assert_eq(pos, UINT64_MAX);
    cr_assert_eq(tg_checkpoint_meta_rng(c, "rng.dropout", &back, err, sizeof err), 0, "%s", err);
    cr_assert(memcmp(&back, &r, sizeof r) == 0);
    cr_assert_eq(tg_checkpoint_meta_u64(c, "cell", &pos, err, sizeof err), -1);
    cr_assert(strstr(err, "cell"), "%s", err);
    cr_assert_eq(tg_checkpoint_meta_u64(c, "absent", &pos, err, sizeof err), -1);
    cr_assert(strstr(err, "absent"), "%s", err);
    cr_assert_eq(tg_checkpoint_meta_rng(c, "hidden", &back, err, sizeof err), -1);
    cr_assert(strstr(err, "hidden"), "%s", err);
    int rows = 0, cols = 0;
    cr_assert_eq(tg_checkpoint_tensor_count(c), 3);
    cr_assert_str_eq(tg_checkpoint_tensor_name(c, 2), "emb");
    cr_assert_eq(tg_checkpoint_tensor_shape(c, "emb", &rows, &cols), 0);
    cr_assert(rows == 4 && cols == 2);
    cr_assert_eq(tg_checkpoint_tensor_shape(c, "nope", &rows, &cols), -1);
    tg_checkpoint_close(c);
    tg_params_free(p);
}

Test(checkpoint, u64_and_rng_parsers_reject_garbage)
{
    tg_params *p = model(6);
    const tg_ckpt_meta meta[] = {
        {"a", ""}, {"b", "-1"}, {"c", "12a"}, {"d", " 1"}, {"e", "18446744073709551616"},
        {"f", "007"},
        {"zero", "0000000000000000000000000000000000000000000000000000000000000000"}};
    char err[512];
    const char *path = path_in_dir("u64.safetensors");
    cr_assert_eq(tg_checkpoint_save(path, p, NULL, 0, meta, 7, err, sizeof err), 0, "%s", err);
    tg_checkpoint *c = tg_checkpoint_open(path, err, sizeof err);
    cr_assert_not_null(c, "%s", err);
    uint64_t v = 5;
    for (int i = 0; i < 5; i++) {
        cr_expect_eq(tg_checkpoint_meta_u64(c, meta[i].key, &v, err, sizeof err), -1,
                     "'%s' accepted", meta[i].value);
        cr_expect_eq(v, 5);
    }
    cr_expect_eq(tg_checkpoint_meta_u64(c, "f", &v, err, sizeof err), 0);
    cr_expect_eq(v, 7);
    /* the zero state: a resumed run's batch order drew from it for ever */
    tg_rng r = {{1, 2, 3, 4}};
    cr_assert_eq(tg_checkpoint_meta_rng(c, "zero", &r, err, sizeof err), -1);
    cr_assert(strstr(err, "'zero' is an all-zero rng state"), "%s", err);
    cr_assert_eq(r.s[0], 1, "untouched after a refusal");
    tg_checkpoint_close(c);
    char hex[TG_RNG_HEX_LEN];
    tg_checkpoint_rng_hex(&r, hex);
    cr_assert_str_eq(hex, "0000000000000001000000000000000200000000000000030000000000000004");
    hex[10] = 'g';
    cr_assert_eq(tg_checkpoint_rng_parse(hex, &r), -1);
    cr_assert_eq(tg_checkpoint_rng_parse("abc", &r), -1);
    cr_assert_eq(r.s[3], 4, "untouched after a failed parse");
    tg_params_free(p);
}

/* The zero state is refused by the parser itself, not only by
 * tg_checkpoint_meta_rng: any other caller would have run a generator
 * whose every draw is 0 (tg_rng_below rejects them for ever). */
Test(checkpoint, rng_parse_refuses_the_zero_state)
{
    tg_rng r = {{1, 2, 3, 4}};
    char zero[TG_RNG_HEX_LEN];
    memset(zero, '0', 64);
    zero[64] = 0;
    cr_expect_eq(tg_checkpoint_rng_parse(zero, &r), TG_RNG_PARSE_ZERO);
    cr_expect(r.s[0] == 1 && r.s[3] == 4, "untouched after a refusal");
    cr_expect_eq(tg_checkpoint_rng_parse("abc", &r), TG_RNG_PARSE_MALFORMED);
    zero[63] = '1'; /* one bit set: a state the generator can be in */
    cr_expect_eq(tg_checkpoint_rng_parse(zero, &r), 0);
    cr_expect(r.s[0] == 0 && r.s[3] == 1);
}

Test(checkpoint, extras_are_kept_apart_from_parameters)
{
    tg_params *p = model(7), *q = model(8);
    tg_real m[5] = {1, 2, 3, 4, 5}, back[5] = {0};
    const tg_ckpt_array ex[] = {{"optim.m", m, 5}};
    char err[512];
    const char *path = path_in_dir("ex.safetensors");
    cr_assert_eq(tg_checkpoint_save(path, p, ex, 1, NULL, 0, err, sizeof err), 0, "%s", err);
    tg_checkpoint *c = tg_checkpoint_open(path, err, sizeof err);
    cr_assert_not_null(c, "%s", err);
    cr_assert_eq(tg_checkpoint_load_params(c, q, err, sizeof err), 0, "%s", err);
    cr_assert(same_values(p, q));
    cr_assert_eq(tg_checkpoint_read_array(c, "optim.m", back, 5, err, sizeof err), 0, "%s", err);
    cr_assert(memcmp(back, m, sizeof m) == 0);
    cr_assert_eq(tg_checkpoint_read_array(c, "optim.m", back, 4, err, sizeof err), -1);
    cr_assert(strstr(err, "optim.m") && strstr(err, "5"), "%s", err);
    cr_assert_eq(tg_checkpoint_read_array(c, "optim.v", back, 5, err, sizeof err), -1);
    cr_assert(strstr(err, "optim.v"), "%s", err);
    tg_checkpoint_close(c);
    tg_params_free(p);
    tg_params_free(q);
}

Test(checkpoint, save_refuses_bad_input_and_keeps_old_file)
{
    tg_params *p = model(9);
    char err[512];
    const char *path = path_in_dir("keep.safetensors");
    cr_assert_eq(tg_checkpoint_save(path, p, NULL, 0, NULL, 0, err, sizeof err), 0, "%s", err);
    size_t n0, n1;
    unsigned char *before = slurp(path, &n0);

    tg_params_find(p, "b")->data[1] = NAN;
    cr_assert_eq(tg_checkpoint_save(path, p, NULL, 0, NULL, 0, err, sizeof err), -1);
    cr_assert(strstr(err, "'b'") && strstr(err, "NaN") && strstr(err, "intact"), "%s", err);
    tg_params_find(p, "b")->data[1] = 0;

    const tg_ckpt_meta dup[] = {{"k", "1"}, {"k", "2"}};
    cr_assert_eq(tg_checkpoint_save(path, p, NULL, 0, dup, 2, err, sizeof err), -1);
    cr_assert(strstr(err, "'k'"), "%s", err);
    const tg_ckpt_meta bad_utf8[] = {{"k", "\xff\xfe"}};
    cr_assert_eq(tg_checkpoint_save(path, p, NULL, 0, bad_utf8, 1, err, sizeof err), -1);
    cr_assert(strstr(err, "UTF-8"), "%s", err);
    const tg_ckpt_meta reserved[] = {{TG_CKPT_EXTRAS_KEY, "[]"}};
    cr_assert_eq(tg_checkpoint_save(path, p, NULL, 0, reserved, 1, err, sizeof err), -1);
    tg_real v[2] = {1, 2};
    const tg_ckpt_array clash[] = {{"w", v, 2}};
    cr_assert_eq(tg_checkpoint_save(path, p, clash, 1, NULL, 0, err, sizeof err), -1);
    cr_assert(strstr(err, "'w'"), "%s", err);

    unsigned char *after = slurp(path, &n1);
    cr_assert(n0 == n1 && memcmp(before, after, n0) == 0, "old checkpoint changed");
    cr_assert_eq(count_tmp_files(), 0);
    free(before);
    free(after);
    tg_params_free(p);
}

/* ------------------------------------------------------------------ failed writes */

Test(checkpoint, missing_directory_fails_cleanly)
{
    tg_params *p = model(10);
    char err[512];
    const char *path = path_in_dir("no/such/dir/m.safetensors");
    cr_assert_eq(tg_checkpoint_save(path, p, NULL, 0, NULL, 0, err, sizeof err), -1);
    cr_assert(strstr(err, "m.safetensors") && strstr(err, "No such file"), "%s", err);
    /* no previous file to keep (a folder removed under a run): not "left intact" */
    cr_assert(strstr(err, "; no file there") && !strstr(err, "left intact"), "%s", err);
    tg_params_free(p);
}

Test(checkpoint, target_that_is_a_directory_is_left_alone)
{
    tg_params *p = model(11);
    char err[512];
    const char *path = path_in_dir("adir");
    cr_assert_eq(mkdir(path, 0755), 0);
    cr_assert_eq(tg_checkpoint_save(path, p, NULL, 0, NULL, 0, err, sizeof err), -1);
    cr_assert(strstr(err, "rename") && strstr(err, "intact"), "%s", err);
    struct stat st;
    cr_assert(stat(path, &st) == 0 && S_ISDIR(st.st_mode));
    cr_assert_eq(count_tmp_files(), 0, "temporary file left behind");
    cr_assert_eq(tg_checkpoint_load(path, p, err, sizeof err), -1);
    cr_assert(strstr(err, "directory"), "%s", err);
    tg_params_free(p);
}

Test(checkpoint, disk_full_keeps_previous_checkpoint)
{
    tg_params *small = model(12);
    char err[512];
    const char *path = path_in_dir("full.safetensors");
    cr_assert_eq(tg_checkpoint_save(path, small, NULL, 0, NULL, 0, err, sizeof err), 0, "%s", err);
    size_t n0, n1;
    unsigned char *before = slurp(path, &n0);

    /* A bigger model, and a file-size limit below its size: write() fails
     * with EFBIG the way it fails with ENOSPC on a full disk. */
    tg_params *big = tg_params_new();
    cr_assert_not_null(tg_param(big, "w", 64, 64));
    signal(SIGXFSZ, SIG_IGN);
    struct rlimit lim = {4096, 4096};
    cr_assert_eq(setrlimit(RLIMIT_FSIZE, &lim), 0);
    cr_assert_eq(tg_checkpoint_save(path, big, NULL, 0, NULL, 0, err, sizeof err), -1);
    cr_assert(strstr(err, "write") && strstr(err, "intact"), "%s", err);
    cr_log_info("disk full: %s", err);

    unsigned char *after = slurp(path, &n1);
    cr_assert(n0 == n1 && memcmp(before, after, n0) == 0, "previous checkpoint changed");
    cr_assert_eq(count_tmp_files(), 0, "temporary file left behind");
    tg_params *q = model(13);
    cr_assert_eq(tg_checkpoint_load(path, q, err, sizeof err), 0, "%s", err);
    cr_assert(same_values(small, q));
    free(before);
    free(after);
    tg_params_free(q);
    tg_params_free(big);
    tg_params_free(small);
}

/* ------------------------------------------------------------------ rejections */

/* The model of these cases: w 2x3, b 1x3, emb 4x2 (68 bytes of F32). */
#define HDR_W "\"w\":{\"dtype\":\"F32\",\"shape\":[2,3],\"data_offsets\":[0,24]}"
#define HDR_B "\"b\":{\"dtype\":\"F32\",\"shape\":[1,3],\"data_offsets\":[24,36]}"
#define HDR_E "\"emb\":{\"dtype\":\"F32\",\"shape\":[4,2],\"data_offsets\":[36,68]}"

typedef struct bad_case {
    const char *what;
    const char *header; /* NULL: raw bytes below */
    size_t data_len;    /* bytes of data after the header (<= 68 + 8) */
    const char *field;  /* must appear in the message */
    const char *field2; /* and this, if not NULL */
} bad_case;

static const bad_case bad_cases[] = {
    {"header not JSON", "{\"w\": {\"dtype\": \"F32\",", 68, "JSON", NULL},
    {"header a JSON list", "[1, 2, 3]", 68, "JSON object", NULL},
    {"duplicate tensor", "{" HDR_W "," HDR_W "," HDR_B "," HDR_E "}", 68, "JSON", "duplicate"},
    {"missing dtype", "{\"w\":{\"shape\":[2,3],\"data_offsets\":[0,24]}," HDR_B "," HDR_E "}", 68,
     "dtype", "'w'"},
    {"unknown dtype", "{\"w\":{\"dtype\":\"BF16\",\"shape\":[2,3],\"data_offsets\":[0,24]}," HDR_B
                      "," HDR_E "}", 68, "dtype", "BF16"},
    {"dtype not a string", "{\"w\":{\"dtype\":4,\"shape\":[2,3],\"data_offsets\":[0,24]}," HDR_B
                           "," HDR_E "}", 68, "dtype", NULL},
    {"entry not an object", "{\"w\":[1,2]," HDR_B "," HDR_E "}", 68, "'w'", "object"},
    {"unknown field", "{\"w\":{\"dtype\":\"F32\",\"shape\":[2,3],\"data_offsets\":[0,24],"
                      "\"x\":1}," HDR_B "," HDR_E "}", 68, "unknown field", "'w'"},
    {"missing shape", "{\"w\":{\"dtype\":\"F32\",\"data_offsets\":[0,24]}," HDR_B "," HDR_E "}", 68,
     "shape", "'w'"},
    {"shape with zero", "{\"w\":{\"dtype\":\"F32\",\"shape\":[0,3],\"data_offsets\":[0,0]}," HDR_B
                        "," HDR_E "}", 68, "shape", NULL},
    {"shape of rank 3", "{\"w\":{\"dtype\":\"F32\",\"shape\":[1,2,3],\"data_offsets\":[0,24]},"
                        HDR_B "," HDR_E "}", 68, "shape", NULL},
    {"shape of rank 0", "{\"w\":{\"dtype\":\"F32\",\"shape\":[],\"data_offsets\":[0,4]}," HDR_B
                        "," HDR_E "}", 68, "shape", NULL},
    {"shape not integers", "{\"w\":{\"dtype\":\"F32\",\"shape\":[2.0,3],\"data_offsets\":[0,24]},"
                           HDR_B "," HDR_E "}", 68, "shape", NULL},
    {"shape negative", "{\"w\":{\"dtype\":\"F32\",\"shape\":[-2,-3],\"data_offsets\":[0,24]},"
                       HDR_B "," HDR_E "}", 68, "shape", NULL},
    {"shape huge", "{\"w\":{\"dtype\":\"F32\",\"shape\":[2147483647,2147483647],"
                   "\"data_offsets\":[0,24]}," HDR_B "," HDR_E "}", 68, "data_offsets", NULL},
    {"shape of another model", "{\"w\":{\"dtype\":\"F32\",\"shape\":[3,2],\"data_offsets\":[0,24]},"
                               HDR_B "," HDR_E "}", 68, "[3, 2]", "[2, 3]"},
    {"1-D shape of another model", "{\"w\":{\"dtype\":\"F32\",\"shape\":[6],\"data_offsets\":[0,24]},"
                                   HDR_B "," HDR_E "}", 68, "[6]", "'w'"},
    {"missing offsets", "{\"w\":{\"dtype\":\"F32\",\"shape\":[2,3]}," HDR_B "," HDR_E "}", 68,
     "data_offsets", NULL},
    {"offsets beyond data", "{" HDR_W "," HDR_B ",\"emb\":{\"dtype\":\"F32\",\"shape\":[4,2],"
                            "\"data_offsets\":[60,92]}}", 68, "data_offsets", "'emb'"},
    {"offsets reversed", "{\"w\":{\"dtype\":\"F32\",\"shape\":[2,3],\"data_offsets\":[24,0]},"
                         HDR_B "," HDR_E "}", 68, "data_offsets", NULL},
    {"offsets negative", "{\"w\":{\"dtype\":\"F32\",\"shape\":[2,3],\"data_offsets\":[-8,16]},"
                         HDR_B "," HDR_E "}", 68, "data_offsets", NULL},
    {"offsets wrong size", "{\"w\":{\"dtype\":\"F32\",\"shape\":[2,3],\"data_offsets\":[0,20]},"
                           HDR_B "," HDR_E "}", 68, "data_offsets", "'w'"},
    {"offsets one number", "{\"w\":{\"dtype\":\"F32\",\"shape\":[2,3],\"data_offsets\":[0]},"
                           HDR_B "," HDR_E "}", 68, "data_offsets", NULL},
    {"offsets overlap", "{" HDR_W ",\"b\":{\"dtype\":\"F32\",\"shape\":[1,3],"
                        "\"data_offsets\":[20,32]}," HDR_E "}", 68, "overlap",
     "[0, 24) and [20, 32)"},
    {"truncated data", "{" HDR_W "," HDR_B "," HDR_E "}", 40, "data_offsets", "'emb'"},
    {"extra tensor", "{" HDR_W "," HDR_B "," HDR_E ",\"h0\":{\"dtype\":\"F32\",\"shape\":[1,2],"
                     "\"data_offsets\":[68,76]}}", 76, "'h0'", "not a parameter"},
    {"missing tensor", "{" HDR_W ",\"emb\":{\"dtype\":\"F32\",\"shape\":[4,2],"
                       "\"data_offsets\":[24,56]}}", 56, "'b'", "missing"},
    {"hole in the data", "{" HDR_W "," HDR_E "}", 68, "bytes [24, 36)", "no holes"},
    {"hole before the first tensor", "{\"w\":{\"dtype\":\"F32\",\"shape\":[2,3],"
                                     "\"data_offsets\":[4,28]}}", 28, "bytes [0, 4)", "'w'"},
    {"bytes after the last tensor", "{" HDR_W "," HDR_B "," HDR_E "}", 69, "1 bytes follow",
     "appended"},
    {"no tensor, some data", "{\"__metadata__\":{\"a\":\"b\"}}", 8, "lists no tensor",
     "8 bytes"},
    {"metadata not an object", "{" HDR_W "," HDR_B "," HDR_E ",\"__metadata__\":[\"a\"]}", 68,
     "__metadata__", NULL},
    {"metadata value not a string", "{" HDR_W "," HDR_B "," HDR_E ",\"__metadata__\":{\"step\":3}}",
     68, "__metadata__", "step"},
    {"extras list malformed", "{" HDR_W "," HDR_B "," HDR_E ",\"__metadata__\":{"
                              "\"tapegrad.extra_tensors\":\"[oops\"}}", 68,
     "tapegrad.extra_tensors", NULL},
    {"extras list names nothing", "{" HDR_W "," HDR_B "," HDR_E ",\"__metadata__\":{"
                                  "\"tapegrad.extra_tensors\":\"[\\\"zz\\\"]\"}}", 68,
     "tapegrad.extra_tensors", NULL},
    {"empty tensor name", "{" HDR_W "," HDR_B "," HDR_E ",\"\":{\"dtype\":\"F32\",\"shape\":[1],"
                          "\"data_offsets\":[68,72]}}", 72, "empty name", NULL},
};

static void data_values(unsigned char *d, size_t n_floats)
{
    for (size_t i = 0; i < n_floats; i++) {
        float f = (float)(i + 1) / 8.0f;
        memcpy(d + 4 * i, &f, 4);
    }
}

static void expect_rejected(const char *what, const unsigned char *bytes, size_t len,
                            const char *field, const char *field2)
{
    char err[512] = "";
    tg_params *p = model(20);
    fill(p, (tg_real)42);
    const char *path = path_in_dir("bad.safetensors");
    spit(path, bytes, len);
    int rc = tg_checkpoint_load(path, p, err, sizeof err);
    cr_expect_eq(rc, -1, "%s: accepted", what);
    cr_expect(strstr(err, field) != NULL, "%s: message '%s' lacks '%s'", what, err, field);
    if (field2) cr_expect(strstr(err, field2) != NULL, "%s: message '%s' lacks '%s'", what, err, field2);
    cr_expect(strstr(err, "bad.safetensors") != NULL, "%s: message '%s' lacks the file", what, err);
    cr_expect(all_equal(p, 42), "%s: model modified by a failed load", what);
    cr_log_info("%-28s -> %s", what, err);
    tg_params_free(p);
}

Test(checkpoint, valid_reference_file_loads)
{
    /* The base of every bad case, unmodified, must load. */
    unsigned char data[80], file[4096];
    data_values(data, 19);
    size_t n = build(file, sizeof file, "{" HDR_W "," HDR_B "," HDR_E "}", data, 68);
    tg_params *p = model(21);
    char err[512];
    const char *path = path_in_dir("good.safetensors");
    spit(path, file, n);
    cr_assert_eq(tg_checkpoint_load(path, p, err, sizeof err), 0, "%s", err);
    cr_assert_eq(tg_params_find(p, "emb")->data[7], (tg_real)(17.0 / 8.0)); /* float 16 of the data */
    tg_params_free(p);
}

Test(checkpoint, every_malformed_header_is_rejected)
{
    unsigned char data[80], file[4096];
    data_values(data, 19);
    for (size_t k = 0; k < sizeof bad_cases / sizeof bad_cases[0]; k++) {
        const bad_case *b = &bad_cases[k];
        size_t n = build(file, sizeof file, b->header, data, b->data_len);
        expect_rejected(b->what, file, n, b->field, b->field2);
    }
}

Test(checkpoint, bad_header_lengths_are_rejected)
{
    unsigned char data[80], file[4096];
    data_values(data, 19);
    size_t n = build(file, sizeof file, "{" HDR_W "," HDR_B "," HDR_E "}", data, 68);
    expect_rejected("truncated to 5 bytes", file, 5, "header length", NULL);
    expect_rejected("empty file", file, 0, "header length", NULL);
    expect_rejected("truncated inside header", file, 40, "header length", "beyond");
    expect_rejected("truncated inside data", file, n - 3, "data_offsets", "'emb'");
    unsigned char big[16];
    memcpy(big, file, sizeof big);
    big[5] = 1; /* 2^40 + ... bytes */
    expect_rejected("header length over cap", big, sizeof big, "header length", "limit");
    memset(big, 0, 8);
    expect_rejected("header length zero", big, sizeof big, "header length", NULL);
    memcpy(big, file, sizeof big);
    big[0] = 0xff; /* 255 + ...: beyond the 16 bytes */
    expect_rejected("header length beyond file", big, sizeof big, "header length", "beyond");
}

Test(checkpoint, nonfinite_values_are_rejected)
{
    unsigned char data[80], file[4096];
    const float bad[3] = {NAN, INFINITY, -INFINITY};
    const char *names[3] = {"NaN", "infinity", "infinity"};
    for (int k = 0; k < 3; k++) {
        data_values(data, 19);
        memcpy(data + 4 * 7, &bad[k], 4); /* b[1] */
        size_t n = build(file, sizeof file, "{" HDR_W "," HDR_B "," HDR_E "}", data, 68);
        expect_rejected(names[k], file, n, "'b'", names[k]);
    }
}

Test(checkpoint, f64_too_large_for_the_build)
{
    unsigned char data[136], file[4096];
    for (int i = 0; i < 17; i++) {
        double d = i == 3 ? 1e300 : 0.5;
        memcpy(data + 8 * i, &d, 8);
    }
    const char *h = "{\"w\":{\"dtype\":\"F64\",\"shape\":[2,3],\"data_offsets\":[0,48]},"
                    "\"b\":{\"dtype\":\"F64\",\"shape\":[1,3],\"data_offsets\":[48,72]},"
                    "\"emb\":{\"dtype\":\"F64\",\"shape\":[4,2],\"data_offsets\":[72,136]}}";
    size_t n = build(file, sizeof file, h, data, 136);
#ifdef TG_REAL_DOUBLE
    tg_params *p = model(22);
    char err[512];
    tg_checkpoint *c = tg_checkpoint_parse(file, n, "f64", err, sizeof err);
    cr_assert_not_null(c, "1e300 fits in double: %s", err);
    cr_assert_eq(tg_checkpoint_load_params(c, p, err, sizeof err), 0, "%s", err);
    cr_assert_eq(tg_params_data(p)[3], 1e300);
    tg_checkpoint_close(c);
    tg_params_free(p);
#else
    expect_rejected("1e300 into float", file, n, "'w'", "does not fit");
#endif
}

Test(checkpoint, missing_file_is_reported)
{
    tg_params *p = model(23);
    char err[512];
    cr_assert_eq(tg_checkpoint_load(path_in_dir("absent.safetensors"), p, err, sizeof err), -1);
    cr_assert(strstr(err, "absent.safetensors") && strstr(err, "cannot open"), "%s", err);
    tg_params_free(p);
}

/* A FIFO (a named pipe) with no writer is refused at once: opened plainly
 * it would block open() forever, before the check could see it. */
Test(checkpoint, a_fifo_is_refused_not_waited_on, .timeout = 10)
{
    const char *fifo = path_in_dir("pipe.safetensors");
    cr_assert_eq(mkfifo(fifo, 0600), 0, "mkfifo: %s", strerror(errno));
    char err[512];
    cr_assert_null(tg_checkpoint_open(fifo, err, sizeof err));
    cr_assert(strstr(err, "pipe.safetensors: is not a regular file"), "%s", err);
}

/* The address space this process maps now, in bytes; 0 when unknown. */
static size_t mapped_bytes(void)
{
    FILE *f = fopen("/proc/self/statm", "r");
    long pages = 0;
    if (!f) return 0;
    if (fscanf(f, "%ld", &pages) != 1) pages = 0;
    fclose(f);
    return pages > 0 ? (size_t)pages * (size_t)sysconf(_SC_PAGESIZE) : 0;
}

/* A file larger than the memory the process may have (a sparse one: no
 * disk) is read with a bounded buffer, not into memory: open checks it
 * (header, layout, every value) and a caller's refusal of it (a tensor of
 * the wrong size, no metadata of its own) comes cleanly. Read whole, and
 * converted whole, it failed for want of memory, or was killed for it. */
Test(checkpoint, a_file_larger_than_the_memory_limit_is_checked_in_bounded_memory, .timeout = 60)
{
    const size_t numel = (size_t)1 << 27; /* 512 MB of F32 */
    char header[160];
    snprintf(header, sizeof header,
             "{\"junk\":{\"dtype\":\"F32\",\"shape\":[%zu],\"data_offsets\":[0,%zu]}}", numel,
             numel * 4);
    size_t h = strlen(header);
    unsigned char head[8 + sizeof header];
    size_t len = build(head, sizeof head, header, NULL, 0);
    const char *big = path_in_dir("big.safetensors");
    spit(big, head, len);
    cr_assert_eq(truncate(big, (off_t)(8 + h + numel * 4)), 0, "truncate: %s", strerror(errno));

    size_t now = mapped_bytes();
    if (now == 0) cr_skip_test("no /proc/self/statm to size the address-space limit");
#ifdef __SANITIZE_ADDRESS__
    cr_skip_test("ASan's shadow mapping is most of the address space: no limit to test under");
#endif
    struct rlimit hard;
    if (getrlimit(RLIMIT_AS, &hard) == 0 && hard.rlim_max != RLIM_INFINITY &&
        hard.rlim_max < (rlim_t)(now + ((size_t)128 << 20)))
        cr_skip_test("the hard address-space limit is below the test's");
    fflush(NULL);
    pid_t pid = fork();
    cr_assert_neq(pid, -1);
    if (pid == 0) { /* the limit: what is mapped now, and 128 MB, a quarter of the file */
        struct rlimit lim;
        getrlimit(RLIMIT_AS, &lim);
        lim.rlim_cur = (rlim_t)(now + ((size_t)128 << 20));
        if (setrlimit(RLIMIT_AS, &lim) != 0) _exit(10);
        char err[512];
        tg_checkpoint *c = tg_checkpoint_open(big, err, sizeof err);
        if (!c) {
            fprintf(stderr, "open: %s\n", err);
            _exit(2);
        }
        int rows = 0, cols = 0;
        if (tg_checkpoint_tensor_shape(c, "junk", &rows, &cols) != 0 || rows != 1 ||
            (size_t)cols != numel || tg_checkpoint_meta(c, "charmodel.format") != NULL)
            _exit(3);
        tg_real few[4];
        if (tg_checkpoint_read_array(c, "junk", few, 4, err, sizeof err) != -1 ||
            !strstr(err, "has 134217728 values in the file, 4 expected")) {
            fprintf(stderr, "read_array: %s\n", err);
            _exit(4);
        }
        tg_checkpoint_close(c);
        _exit(0);
    }
    int st = 0;
    cr_assert_eq(waitpid(pid, &st, 0), pid);
    cr_assert(WIFEXITED(st) && WEXITSTATUS(st) == 0,
              "the child %s %d (2: open refused the file)",
              WIFEXITED(st) ? "exited" : "was killed by signal",
              WIFEXITED(st) ? WEXITSTATUS(st) : WTERMSIG(st));
}

/* Values are read from the file when loaded: one written over in place
 * after it was opened (by another program) is reported, not loaded, as is
 * one cut short. */
Test(checkpoint, a_file_changed_after_open_is_reported_at_load)
{
    tg_params *p = model(31), *q = model(32);
    const char *path = path_in_dir("changed.safetensors");
    char err[512];
    cr_assert_eq(tg_checkpoint_save(path, p, NULL, 0, NULL, 0, err, sizeof err), 0, "%s", err);
    size_t len;
    unsigned char *b = slurp(path, &len);

    tg_checkpoint *c = tg_checkpoint_open(path, err, sizeof err);
    cr_assert_not_null(c, "%s", err);
    FILE *f = fopen(path, "r+b"); /* in place: the open file is this one */
    cr_assert_not_null(f);
    cr_assert_eq(fseek(f, (long)len - 2, SEEK_SET), 0);
    cr_assert_eq(fputc(b[len - 2] ^ 0x01, f), b[len - 2] ^ 0x01); /* a finite value still */
    cr_assert_eq(fclose(f), 0);
    cr_assert_eq(tg_checkpoint_load_params(c, q, err, sizeof err), -1);
    cr_assert(strstr(err, "changed.safetensors: tensor") &&
              strstr(err, "changed in the file since it was opened"), "%s", err);
    tg_checkpoint_close(c);

    spit(path, b, len); /* whole again: loads */
    c = tg_checkpoint_open(path, err, sizeof err);
    cr_assert_not_null(c, "%s", err);
    cr_assert_eq(truncate(path, (off_t)len - 4), 0);
    cr_assert_eq(tg_checkpoint_load_params(c, q, err, sizeof err), -1);
    cr_assert(strstr(err, "read failed") && strstr(err, "file shrank"), "%s", err);
    tg_checkpoint_close(c);

    spit(path, b, len);
    c = tg_checkpoint_open(path, err, sizeof err);
    cr_assert_not_null(c, "%s", err);
    cr_assert_eq(tg_checkpoint_load_params(c, q, err, sizeof err), 0, "%s", err);
    cr_assert(same_values(p, q));
    tg_checkpoint_close(c);
    free(b);
    tg_params_free(p);
    tg_params_free(q);
}

/* ------------------------------------------------------------------ exact resume */

enum { IN = 4, OUT = 5, BATCH = 6 };

typedef struct trainer {
    tg_params *p;
    tg_optim *opt;
    tg_tape *tape;
    tg_rng rng; /* dropout: its state must be resumed too */
    tg_lr_schedule sched;
} trainer;

static void trainer_init(trainer *tr, tg_optim_config cfg, uint64_t seed)
{
    tg_rng init;
    tg_rng_seed(&init, seed);
    tr->p = tg_params_new();
    tg_param_uniform(tr->p, "w", IN, OUT, &init, 0.5);
    tg_param_uniform(tr->p, "b", 1, OUT, &init, 0.5);
    char err[200];
    tr->opt = tg_optim_new(&cfg, tg_params_numel(tr->p), err, sizeof err);
    cr_assert_not_null(tr->opt, "%s", err);
    tr->tape = tg_tape_new(1 << 20);
    tg_rng_seed(&tr->rng, seed + 1000);
    tr->sched = (tg_lr_schedule){.kind = TG_LR_COSINE, .base_lr = cfg.lr, .warmup_steps = 2,
                                 .decay_steps = 10, .min_lr = cfg.lr / 10};
}

static void trainer_free(trainer *tr)
{
    tg_tape_free(tr->tape);
    tg_optim_free(tr->opt);
    tg_params_free(tr->p);
}

/* One step on batch number `step` of a fixed synthetic data set. */
static void train_step(trainer *tr)
{
    uint64_t step = tg_optim_steps(tr->opt);
    tg_real x[BATCH * IN];
    int y[BATCH];
    for (int i = 0; i < BATCH * IN; i++) x[i] = (tg_real)sin(0.7 * i + 0.3 * (double)step);
    for (int i = 0; i < BATCH; i++) y[i] = (int)((i + step) % OUT);
    tg_tape_reset(tr->tape);
    tg_params_zero_grad(tr->p);
    tg_tensor *xt = tg_dropout(tr->tape, tg_tensor_from(tr->tape, BATCH, IN, x), 0.25, &tr->rng);
    tg_tensor *logits = tg_add(tr->tape, tg_matmul(tr->tape, xt, tg_params_find(tr->p, "w"), 0, 0),
                               tg_params_find(tr->p, "b"));
    tg_backward(tr->tape, tg_softmax_xent(tr->tape, logits, y, -1));
    double norm = tg_clip_grad_norm(tr->p, 0.5);
    cr_assert(isfinite(norm));
    tg_optim_set_lr(tr->opt, tg_lr_at(&tr->sched, step));
    tg_optim_step(tr->opt, tr->p);
}

static void resume_is_exact(tg_optim_config cfg, const char *label)
{
    enum { N = 7, M = 6 };
    char err[512], hex[TG_RNG_HEX_LEN];
    const char *path = path_in_dir("resume.safetensors");

    trainer straight, first, second;
    trainer_init(&straight, cfg, 1);
    for (int s = 0; s < N + M; s++) train_step(&straight);

    trainer_init(&first, cfg, 1);
    for (int s = 0; s < N; s++) train_step(&first);
    tg_checkpoint_rng_hex(&first.rng, hex);
    const tg_ckpt_meta meta[] = {{"rng.dropout", hex}, {"model", "linear 4x5"}};
    cr_assert_eq(tg_checkpoint_save_training(path, first.p, first.opt, meta, 2, err, sizeof err),
                 0, "%s", err);
    trainer_free(&first);

    trainer_init(&second, cfg, 77); /* different init: everything must come from the file */
    tg_checkpoint *c = tg_checkpoint_open(path, err, sizeof err);
    cr_assert_not_null(c, "%s", err);
    cr_assert_eq(tg_checkpoint_load_params(c, second.p, err, sizeof err), 0, "%s", err);
    cr_assert_eq(tg_checkpoint_load_optim(c, second.opt, err, sizeof err), 0, "%s", err);
    cr_assert_eq(tg_checkpoint_meta_rng(c, "rng.dropout", &second.rng, err, sizeof err), 0, "%s",
                 err);
    tg_checkpoint_close(c);
    cr_assert_eq(tg_optim_steps(second.opt), (uint64_t)N);
    for (int s = 0; s < M; s++) train_step(&second);

    cr_expect(same_values(straight.p, second.p), "%s: resumed parameters differ", label);
    for (size_t i = 0; i < tg_optim_state_count(straight.opt); i++)
        cr_expect(memcmp(tg_optim_state_data(straight.opt, i), tg_optim_state_data(second.opt, i),
                         tg_optim_numel(straight.opt) * sizeof(tg_real)) == 0,
                  "%s: resumed %s differs", label, tg_optim_state_name(straight.opt, i));
    trainer_free(&straight);
    trainer_free(&second);
}

Test(checkpoint, resume_is_exact_for_every_optimizer)
{
    tg_optim_config c = tg_optim_defaults(TG_OPTIM_SGD);
    resume_is_exact(c, "sgd");
    c.momentum = 0.9;
    c.weight_decay = 1e-3;
    resume_is_exact(c, "sgd+momentum");
    c.nesterov = 1;
    resume_is_exact(c, "nesterov");
    c = tg_optim_defaults(TG_OPTIM_ADAM);
    c.lr = 0.05;
    resume_is_exact(c, "adam");
    c = tg_optim_defaults(TG_OPTIM_ADAMW);
    c.lr = 0.05;
    resume_is_exact(c, "adamw");
}

Test(checkpoint, optimizer_state_mismatch_is_rejected)
{
    char err[512];
    const char *path = path_in_dir("opt.safetensors");
    tg_params *p = model(30);
    tg_optim_config adam = tg_optim_defaults(TG_OPTIM_ADAM);
    tg_optim *a = tg_optim_new(&adam, tg_params_numel(p), err, sizeof err);
    for (size_t i = 0; i < tg_params_numel(p); i++) tg_params_grad(p)[i] = 0.5;
    tg_optim_step(a, p);
    cr_assert_eq(tg_checkpoint_save_training(path, p, a, NULL, 0, err, sizeof err), 0, "%s", err);
    tg_checkpoint *c = tg_checkpoint_open(path, err, sizeof err);
    cr_assert_not_null(c, "%s", err);

    tg_optim_config sgd = tg_optim_defaults(TG_OPTIM_SGD);
    sgd.momentum = 0.9;
    tg_optim *s = tg_optim_new(&sgd, tg_params_numel(p), err, sizeof err);
    cr_assert_eq(tg_checkpoint_load_optim(c, s, err, sizeof err), -1);
    cr_assert(strstr(err, "optim.kind") && strstr(err, "adam") && strstr(err, "sgd"), "%s", err);
    cr_assert_eq(tg_optim_steps(s), 0, "untouched");

    tg_optim *wrong_size = tg_optim_new(&adam, tg_params_numel(p) + 1, err, sizeof err);
    cr_assert_eq(tg_checkpoint_load_optim(c, wrong_size, err, sizeof err), -1);
    cr_assert(strstr(err, "optim.m"), "%s", err);
    cr_assert_eq(tg_optim_steps(wrong_size), 0);

    tg_optim *good = tg_optim_new(&adam, tg_params_numel(p), err, sizeof err);
    cr_assert_eq(tg_checkpoint_load_optim(c, good, err, sizeof err), 0, "%s", err);
    cr_assert_eq(tg_optim_steps(good), 1);
    cr_assert(memcmp(tg_optim_state_data(good, 1), tg_optim_state_data(a, 1),
                     tg_params_numel(p) * sizeof(tg_real)) == 0);
    tg_checkpoint_close(c);

    /* A weights-only file has no optimizer state. */
    cr_assert_eq(tg_checkpoint_save(path, p, NULL, 0, NULL, 0, err, sizeof err), 0, "%s", err);
    c = tg_checkpoint_open(path, err, sizeof err);
    cr_assert_eq(tg_checkpoint_load_optim(c, good, err, sizeof err), -1);
    cr_assert(strstr(err, "optim.kind"), "%s", err);
    tg_checkpoint_close(c);

    tg_optim_free(a);
    tg_optim_free(s);
    tg_optim_free(wrong_size);
    tg_optim_free(good);
    tg_params_free(p);
}

/* Values no update writes are refused at load, naming the state and the
 * index, and nothing is loaded (all or nothing): a negative second moment
 * (Adam's v, a mean of squares: its square root made the first step NaN,
 * which the programs blamed on --lr), a step count past 2^53. (NaN and
 * infinities: the saver and the loader refuse them in any tensor.) */
Test(checkpoint, optimizer_state_no_update_writes_is_refused)
{
    char err[512];
    const char *path = path_in_dir("badopt.safetensors");
    tg_params *p = model(31);
    size_t n = tg_params_numel(p);
    tg_optim_config adam = tg_optim_defaults(TG_OPTIM_ADAM);
    tg_optim *a = tg_optim_new(&adam, n, err, sizeof err), *b = tg_optim_new(&adam, n, err, 512);
    for (size_t i = 0; i < n; i++) tg_params_grad(p)[i] = 0.5;
    tg_optim_step(a, p);
    struct { size_t state, at; tg_real value; uint64_t steps; const char *want; } bad[] = {
        {1, 3, -1, 1, "optimizer state 'optim.v' holds -1 at index 3, and it is never negative"},
        {1, 0, (tg_real)-1e-30, 1, "'optim.v' holds -1e-30 at index 0"},
        {0, 0, 0, (uint64_t)1 << 53, "metadata 'optim.steps' is 9007199254740992, more updates"},
    };
    for (size_t k = 0; k < sizeof bad / sizeof bad[0]; k++) {
        tg_real *x = tg_optim_state_data(a, bad[k].state), keep = x[bad[k].at];
        x[bad[k].at] = bad[k].value;
        tg_optim_set_steps(a, bad[k].steps);
        cr_assert_eq(tg_checkpoint_save_training(path, p, a, NULL, 0, err, sizeof err), 0, "%s",
                     err);
        x[bad[k].at] = keep;
        tg_checkpoint *c = tg_checkpoint_open(path, err, sizeof err);
        cr_assert_not_null(c, "%s", err);
        cr_assert_eq(tg_checkpoint_load_optim(c, b, err, sizeof err), -1, "case %zu loaded", k);
        cr_assert(strstr(err, bad[k].want), "case %zu: %s", k, err);
        cr_assert_eq(tg_optim_steps(b), 0, "untouched");
        for (size_t i = 0; i < n; i++)
            cr_assert(tg_optim_state_data(b, 0)[i] == 0 && tg_optim_state_data(b, 1)[i] == 0,
                      "case %zu: state loaded in part", k);
        tg_checkpoint_close(c);
    }
    tg_optim_set_steps(a, 1); /* the real state loads */
    cr_assert_eq(tg_checkpoint_save_training(path, p, a, NULL, 0, err, sizeof err), 0, "%s", err);
    tg_checkpoint *c = tg_checkpoint_open(path, err, sizeof err);
    cr_assert_eq(tg_checkpoint_load_optim(c, b, err, sizeof err), 0, "%s", err);
    cr_assert(memcmp(tg_optim_state_data(b, 1), tg_optim_state_data(a, 1), n * sizeof(tg_real)) ==
              0);
    tg_checkpoint_close(c);
    tg_optim_free(a);
    tg_optim_free(b);
    tg_params_free(p);
}

/* ------------------------------------------------------------------ killed writers */

/* A child saves checkpoints in a loop (every value of save k equals k) and is
 * killed with SIGKILL at a random moment, many times. After each kill the
 * file must load, and hold one whole save, never a mix or a torn write. */
Test(checkpoint, sigkill_during_saves_never_leaves_a_bad_file)
{
    enum { CYCLES = 40 };
    const char *path = path_in_dir("killed.safetensors");
    tg_params *p = tg_params_new();
    cr_assert_not_null(tg_param(p, "w", 128, 128));
    char err[512];
    fill(p, 0);
    cr_assert_eq(tg_checkpoint_save(path, p, NULL, 0, NULL, 0, err, sizeof err), 0, "%s", err);
    tg_rng r;
    tg_rng_seed(&r, (uint64_t)time(NULL));
    int last = 0;
    for (int cycle = 0; cycle < CYCLES; cycle++) {
        pid_t pid = fork();
        cr_assert_geq(pid, 0);
        if (pid == 0) {
            for (int k = 1;; k++) {
                fill(p, (tg_real)(last + k));
                if (tg_checkpoint_save(path, p, NULL, 0, NULL, 0, NULL, 0) != 0) _exit(3);
            }
        }
        struct timespec ts = {0, (long)tg_rng_below(&r, 20000) * 1000};
        nanosleep(&ts, NULL);
        kill(pid, SIGKILL);
        int status = 0;
        waitpid(pid, &status, 0);
        cr_assert(WIFSIGNALED(status), "writer exited by itself (status %d)", status);
        tg_checkpoint *c = tg_checkpoint_open(path, err, sizeof err);
        cr_assert_not_null(c, "cycle %d: %s", cycle, err);
        cr_assert_eq(tg_checkpoint_load_params(c, p, err, sizeof err), 0, "%s", err);
        tg_checkpoint_close(c);
        tg_real v = tg_params_data(p)[0];
        cr_assert(all_equal(p, v), "cycle %d: file mixes two saves", cycle);
        cr_assert_geq(v, (tg_real)last, "cycle %d: went back from %d to %g", cycle, last, (double)v);
        last = (int)v;
    }
    cr_log_info("%d kills survived, last save held %d", CYCLES, last);
    tg_params_free(p);
}

/* ------------------------------------------------------------------ seed corpus */

/* Files in tests/checkpoint/corpus (also the fuzzer's seeds): valid_* must
 * parse, invalid_* must be rejected with a message, none may crash. */
/* The valid_* and invalid_* files of one corpus folder; how many. */
static int check_corpus(const char *cdir)
{
    DIR *d = opendir(cdir);
    cr_assert_not_null(d, "cannot open %s", cdir);
    struct dirent *e;
    int seen = 0;
    char p[1024], err[512];
    while ((e = readdir(d))) {
        int valid = strncmp(e->d_name, "valid_", 6) == 0;
        if (!valid && strncmp(e->d_name, "invalid_", 8) != 0) continue;
        snprintf(p, sizeof p, "%s/%s", cdir, e->d_name);
        err[0] = 0;
        tg_checkpoint *c = tg_checkpoint_open(p, err, sizeof err);
        if (valid)
            cr_expect_not_null(c, "%s: %s", e->d_name, err);
        else
            cr_expect(c == NULL && err[0], "%s accepted", e->d_name);
        cr_log_info("%s: %s", e->d_name, c ? "ok" : err);
        tg_checkpoint_close(c);
        seen++;
    }
    closedir(d);
    return seen;
}

/* TG_CKPT_CORPUS: folders separated by ':' (this suite's corpus, and the
 * fuzzer's seeds, whose valid_* files must load: one carries both of our
 * checksums). */
Test(checkpoint, corpus_files)
{
    const char *dirs = getenv("TG_CKPT_CORPUS");
    cr_assert_not_null(dirs, "TG_CKPT_CORPUS not set");
    char list[4096];
    snprintf(list, sizeof list, "%s", dirs);
    for (char *save = NULL, *folder = strtok_r(list, ":", &save); folder;
         folder = strtok_r(NULL, ":", &save)) {
        int seen = check_corpus(folder);
        cr_assert_geq(seen, 4, "%s has %d files", folder, seen);
    }
}
