/* Subword units (examples/seq2seq/subword.h): training, determinism, ids of
 * the specials, encode/decode round trips on accented Latin and Hangul, the
 * checked text form, and the refusal of damaged or foreign piece models. */
#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "pairs.h"
#include "pieces.h"
#include "subword.h"

static const char *const german[] = {
    "Der Hund läuft schnell über die Straße.",
    "Die Kinder spielen im Garten, während es regnet.",
    "Ich möchte einen Kaffee und ein Stück Kuchen, bitte.",
    "Können Sie mir sagen, wie spät es ist?",
    "Wir fahren morgen früh nach München.",
    "Das Wetter ist heute schöner als gestern.",
    "Er hat das Buch gelesen, das du ihm gegeben hast.",
    "Über den Wolken muss die Freiheit wohl grenzenlos sein.",
    "Die Äpfel und die Birnen sind reif.",
    "Sie wohnt in einem großen Haus am Fluss.",
};

static const char *const korean[] = {
    "나는 학교에 갑니다.",
    "그는 빨리 달립니다.",
    "우리는 내일 아침에 서울로 갑니다.",
    "오늘 날씨가 어제보다 좋습니다.",
    "아이들이 정원에서 놀고 있습니다.",
    "커피 한 잔 주세요.",
    "그녀는 강가의 큰 집에 삽니다.",
    "지금 몇 시인지 말해 줄 수 있어요?",
};

#define N_GERMAN (sizeof german / sizeof *german)
#define N_KOREAN (sizeof korean / sizeof *korean)

/* The German and Korean sentences, each repeated `times` times. */
static const char **corpus(size_t times, size_t *n)
{
    size_t each = N_GERMAN + N_KOREAN;
    const char **s = malloc(times * each * sizeof *s);
    cr_assert_not_null(s);
    for (size_t t = 0; t < times; t++) {
        for (size_t i = 0; i < N_GERMAN; i++) s[t * each + i] = german[i];
        for (size_t i = 0; i < N_KOREAN; i++) s[t * each + N_GERMAN + i] = korean[i];
    }
    *n = times * each;
    return s;
}

static s2s_subword *train(int pieces)
{
    size_t n;
    const char **s = corpus(5, &n);
    char err[512] = "";
    s2s_subword *sw = s2s_subword_train(s, n, pieces, err, sizeof err);
    free(s);
    cr_assert_not_null(sw, "training failed: %s", err);
    return sw;
}

/* encode -> decode gives the text back; no <unk> for characters seen. */
static void assert_round_trip(const s2s_subword *sw, const char *text)
{
    int ids[512];
    char err[512] = "";
    int n = s2s_subword_encode(sw, text, ids, 512, err, sizeof err);
    cr_assert(n > 0 && n <= 512, "encode '%s': %d (%s)", text, n, err);
    for (int i = 0; i < n; i++) {
        cr_assert(ids[i] >= S2S_N_SPECIAL && ids[i] < s2s_subword_size(sw),
                  "'%s': piece %d has id %d", text, i, ids[i]);
    }
    char *back = s2s_subword_decode(sw, ids, n, err, sizeof err);
    cr_assert_not_null(back, "decode: %s", err);
    cr_assert_str_eq(back, text);
    free(back);
}

Test(subword, trains_with_our_specials_and_round_trips)
{
    s2s_subword *sw = train(240);
    int n = s2s_subword_size(sw);
    cr_assert(n >= S2S_SUBWORD_MIN && n <= 240, "size %d", n);
    cr_assert_eq(s2s_subword_id(sw, "<pad>"), S2S_PAD);
    cr_assert_eq(s2s_subword_id(sw, "<unk>"), S2S_UNK);
    cr_assert_eq(s2s_subword_id(sw, "<s>"), S2S_BOS);
    cr_assert_eq(s2s_subword_id(sw, "</s>"), S2S_EOS);
    cr_assert_eq(s2s_subword_id(sw, "no such piece at all"), -1);
    cr_assert_null(s2s_subword_piece(sw, n));
    cr_assert_null(s2s_subword_piece(sw, -1));
    for (int id = 0; id < n; id++) {
        const char *p = s2s_subword_piece(sw, id);
        cr_assert_not_null(p);
        cr_assert_eq(s2s_subword_id(sw, p), id, "piece '%s'", p);
    }
    for (size_t i = 0; i < N_GERMAN; i++) assert_round_trip(sw, german[i]);
    for (size_t i = 0; i < N_KOREAN; i++) assert_round_trip(sw, korean[i]);
    /* new sentences made of seen characters: still no <unk> */
    assert_round_trip(sw, "Die Straße ist schön.");
    assert_round_trip(sw, "커피 한 잔 갑니다.");
    s2s_subword_free(sw);
}

Test(subword, pieces_join_with_spaces_and_unknown_chars_become_unk)
{
    s2s_subword *sw = train(240);
    char err[512] = "";
    char *p = s2s_subword_encode_pieces(sw, "Die Äpfel", err, sizeof err);
    cr_assert_not_null(p, "%s", err);
    cr_assert(strncmp(p, "\xe2\x96\x81", 3) == 0, "first piece starts a word: '%s'", p);
    cr_assert_null(strstr(p, "  "));
    free(p);
    int ids[16];
    int n = s2s_subword_encode(sw, "\xce\xa9", ids, 16, err, sizeof err); /* Omega: never seen */
    int unk = 0;
    for (int i = 0; i < n && i < 16; i++) unk += ids[i] == S2S_UNK;
    cr_assert_eq(unk, 1, "an unseen character is one <unk> (n=%d)", n);
    /* the count is returned even when the buffer is too small */
    int full = s2s_subword_encode(sw, german[1], ids, 16, err, sizeof err);
    cr_assert_eq(s2s_subword_encode(sw, german[1], ids, 1, err, sizeof err), full);
    /* specials are dropped by decode; a bad id is an error */
    int with_specials[] = {S2S_BOS, ids[0], S2S_EOS, S2S_PAD};
    char *t = s2s_subword_decode(sw, with_specials, 4, err, sizeof err);
    cr_assert_not_null(t, "%s", err);
    char *t1 = s2s_subword_decode(sw, ids, 1, err, sizeof err);
    cr_assert_str_eq(t, t1);
    free(t);
    free(t1);
    int bad[] = {ids[0], s2s_subword_size(sw)};
    cr_assert_null(s2s_subword_decode(sw, bad, 2, err, sizeof err));
    cr_assert_not_null(strstr(err, "is not a piece"), "%s", err);
    s2s_subword_free(sw);
}

Test(subword, training_is_deterministic)
{
    s2s_subword *a = train(200), *b = train(200);
    void *ba, *bb;
    size_t la, lb;
    char err[256];
    cr_assert_eq(s2s_subword_serialize(a, &ba, &la, err, sizeof err), 0);
    cr_assert_eq(s2s_subword_serialize(b, &bb, &lb, err, sizeof err), 0);
    cr_assert_eq(la, lb);
    cr_assert(memcmp(ba, bb, la) == 0, "two trainings on the same text differ");
    free(ba);
    free(bb);
    s2s_subword_free(a);
    s2s_subword_free(b);
}

Test(subword, bytes_and_text_forms_round_trip)
{
    s2s_subword *sw = train(200);
    char err[512] = "";
    void *bytes;
    size_t len;
    cr_assert_eq(s2s_subword_serialize(sw, &bytes, &len, err, sizeof err), 0, "%s", err);
    s2s_subword *from_bytes = s2s_subword_load(bytes, len, "bytes", err, sizeof err);
    cr_assert_not_null(from_bytes, "%s", err);
    char *text = s2s_subword_to_text(sw, err, sizeof err);
    cr_assert_not_null(text, "%s", err);
    cr_assert(strncmp(text, "spm1:", 5) == 0);
    s2s_subword *from_text = s2s_subword_from_text(text, "m.safetensors", err, sizeof err);
    cr_assert_not_null(from_text, "%s", err);
    cr_assert_eq(s2s_subword_size(from_bytes), s2s_subword_size(sw));
    cr_assert_eq(s2s_subword_size(from_text), s2s_subword_size(sw));
    char *pa = s2s_subword_encode_pieces(sw, german[3], err, sizeof err);
    char *pb = s2s_subword_encode_pieces(from_text, german[3], err, sizeof err);
    cr_assert_str_eq(pa, pb);
    cr_assert_eq(s2s_subword_check_size(from_text, s2s_subword_size(sw), "m", err, sizeof err), 0);
    cr_assert_eq(s2s_subword_check_size(from_text, 8000, "m.safetensors", err, sizeof err), -1);
    cr_assert_not_null(strstr(err, "m.safetensors: piece model has"), "%s", err);
    cr_assert_not_null(strstr(err, "expects 8000"), "%s", err);
    free(pa);
    free(pb);
    free(text);
    free(bytes);
    s2s_subword_free(from_bytes);
    s2s_subword_free(from_text);
    s2s_subword_free(sw);
}

/* from_text must refuse `text` with a message containing `want`. */
static void assert_refused(const char *text, const char *want)
{
    char err[512] = "";
    s2s_subword *sw = s2s_subword_from_text(text, "ck.safetensors", err, sizeof err);
    cr_assert_null(sw, "accepted: %.60s", text);
    cr_assert(strncmp(err, "ck.safetensors: ", 16) == 0, "message names the file: %s", err);
    cr_assert_not_null(strstr(err, want), "'%s' lacks '%s'", err, want);
    cr_assert_null(strchr(err, '\n'));
}

Test(subword, damaged_text_forms_are_refused)
{
    s2s_subword *sw = train(200);
    char err[512] = "";
    char *text = s2s_subword_to_text(sw, err, sizeof err);
    cr_assert_not_null(text);
    size_t len = strlen(text);
    char *bad = malloc(len + 8);
    cr_assert_not_null(bad);

    assert_refused("", "does not start with 'spm1:'");
    assert_refused("spm2:00000000:4:AAAA", "does not start with 'spm1:'");
    assert_refused("spm1:0000000:4:AAAA", "header");
    assert_refused("spm1:00000000:x:AAAA", "header");
    assert_refused("spm1:00000000:99999999999:AAAA", "length");
    assert_refused("spm1:00000000:3:AA*A", "base64");
    assert_refused("spm1:00000000:3:AAA", "base64");

    /* a flipped character in the middle of the payload: crc32 mismatch */
    strcpy(bad, text);
    char *mid = bad + len / 2;
    *mid = *mid == 'A' ? 'B' : 'A';
    assert_refused(bad, "damaged");

    /* cut short (a truncated metadata value) */
    strcpy(bad, text);
    bad[len - 400] = '\0';
    assert_refused(bad, "truncated");

    /* a wrong length in the header */
    const char *colon = strchr(text + 14, ':');
    snprintf(bad, len + 8, "%.14s%d%s", text, atoi(text + 14) + 3, colon);
    assert_refused(bad, "header says");

    /* correct crc and length over bytes that are not a model */
    assert_refused("spm1:3d0ea5f2:3:AAAA", "damaged"); /* crc of 00 00 00 is 0xff41d912 */
    assert_refused("spm1:ff41d912:3:AAAA", "not a SentencePiece model");

    free(bad);
    free(text);
    s2s_subword_free(sw);
}

Test(subword, raw_bytes_that_are_not_a_model_are_refused)
{
    char err[512] = "";
    const unsigned char junk[] = {0x0a, 0xff, 0xff, 0xff, 0x0f, 0x01, 0x02};
    cr_assert_null(s2s_subword_load(junk, sizeof junk, "x.bin", err, sizeof err));
    cr_assert_not_null(strstr(err, "x.bin: not a SentencePiece model"), "%s", err);
    cr_assert_null(s2s_subword_load(junk, 0, "x.bin", err, sizeof err));
    cr_assert_not_null(strstr(err, "empty"), "%s", err);
}

/* A model trained by spm_train with SentencePiece's default ids (unk=0,
 * bos=1, eos=2, no pad): a valid model, not ours (fuzz/make_seeds.py). */
Test(subword, a_model_with_other_special_ids_is_refused)
{
    const char *path = getenv("SUBWORD_FOREIGN");
    cr_assert_not_null(path, "SUBWORD_FOREIGN not set");
    FILE *f = fopen(path, "rb");
    cr_assert_not_null(f, "%s", path);
    static char text[1 << 20];
    size_t n = fread(text, 1, sizeof text - 1, f);
    fclose(f);
    text[n] = '\0';
    while (n && text[n - 1] == '\n') text[--n] = '\0';
    assert_refused(text, "specials pad=-1 unk=0 bos=1 eos=2, not 0 1 2 3");
}

Test(subword, bad_training_requests_get_messages)
{
    char err[512] = "";
    const char *one[] = {"ein Satz"};
    cr_assert_null(s2s_subword_train(one, 1, 3, err, sizeof err));
    cr_assert_not_null(strstr(err, "3 pieces asked"), "%s", err);
    cr_assert_null(s2s_subword_train(one, 0, 100, err, sizeof err));
    cr_assert_not_null(strstr(err, "no sentences"), "%s", err);
    /* text with too few characters for the minimum of pieces: an error
     * from SentencePiece, not an abort */
    const char *empty[] = {"", ""};
    s2s_subword *sw = s2s_subword_train(empty, 2, 100, err, sizeof err);
    if (!sw) {
        cr_assert(strncmp(err, "subwords: ", 10) == 0, "%s", err);
        cr_assert_null(strchr(err, '\n'));
    }
    s2s_subword_free(sw);
}

/* The model's serialized bytes (caller frees). */
static void *model_bytes(const s2s_subword *sw, size_t *len)
{
    void *bytes = NULL;
    char err[512] = "";
    cr_assert_eq(s2s_subword_serialize(sw, &bytes, len, err, sizeof err), 0, "%s", err);
    return bytes;
}

static int same_model(const s2s_subword *a, const s2s_subword *b)
{
    size_t la, lb;
    void *ba = model_bytes(a, &la), *bb = model_bytes(b, &lb);
    int same = la == lb && memcmp(ba, bb, la) == 0;
    free(ba);
    free(bb);
    return same;
}

/* --subword-sample (s2s_pieces_train's sample): the pairs are drawn from the
 * whole file, not its first lines and not every k-th line. Here the German
 * pairs come first and the Korean ones after, 20 times each, in periods (10
 * and 8 sentences) that every 4th line would fall in step with (it would
 * see 5 of the German sentences and 2 of the Korean); a sample of a quarter
 * learns every character of every sentence. The same sample twice gives
 * the same pieces; a sample as large as the corpus is the corpus. */
Test(subword, a_sample_is_drawn_from_the_whole_corpus)
{
    enum { TIMES = 20, N = TIMES * (N_GERMAN + N_KOREAN) };
    char *text[N];
    size_t n = 0;
    for (size_t t = 0; t < TIMES; t++)
        for (size_t i = 0; i < N_GERMAN; i++) text[n++] = (char *)german[i];
    for (size_t t = 0; t < TIMES; t++)
        for (size_t i = 0; i < N_KOREAN; i++) text[n++] = (char *)korean[i];
    s2s_pairs train = {.n = n, .cap = n, .src = text, .tgt = text};
    char err[512] = "", note[512];
    s2s_pieces a, b, first, all, same;
    cr_assert_eq(s2s_pieces_train(&a, &train, 240, n / 4, note, sizeof note, err, sizeof err),
                 0, "%s", err);
    for (size_t i = 0; i < N_KOREAN; i++) assert_round_trip(a.src, korean[i]);
    for (size_t i = 0; i < N_GERMAN; i++) assert_round_trip(a.tgt, german[i]);
    cr_assert_eq(s2s_pieces_train(&b, &train, 240, n / 4, note, sizeof note, err, sizeof err),
                 0, "%s", err);
    cr_assert(same_model(a.src, b.src) && same_model(a.tgt, b.tgt),
              "the same sample gave other pieces");
    /* the first quarter (German only) knows no Korean: the test can fail */
    s2s_pairs head = train;
    head.n = n / 4;
    cr_assert_eq(s2s_pieces_train(&first, &head, 240, 0, note, sizeof note, err, sizeof err), 0,
                 "%s", err);
    int ids[64];
    int k = s2s_subword_encode(first.src, korean[0], ids, 64, err, sizeof err);
    int unk = 0;
    for (int i = 0; i < k && i < 64; i++) unk += ids[i] == S2S_UNK;
    cr_assert(unk > 0, "the first quarter knew Korean");
    cr_assert_eq(s2s_pieces_train(&all, &train, 240, 0, note, sizeof note, err, sizeof err), 0,
                 "%s", err);
    cr_assert_eq(s2s_pieces_train(&same, &train, 240, n, note, sizeof note, err, sizeof err), 0,
                 "%s", err);
    cr_assert(same_model(all.src, same.src), "a sample of n changed the pieces");
    cr_assert_not(same_model(all.src, a.src), "the sample was the whole corpus");
    s2s_pieces *each[] = {&a, &b, &first, &all, &same};
    for (int i = 0; i < 5; i++) s2s_pieces_free(each[i]);
}
