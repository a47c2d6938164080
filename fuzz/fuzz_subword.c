/* Fuzz target: the piece-model readers (examples/seq2seq/subword.h).
 *
 * An input starting with "spm1:" goes to s2s_subword_from_text (the checked
 * text form stored in model files and checkpoints), anything else to
 * s2s_subword_load (raw ModelProto bytes). Either the reader refuses with a
 * one-line message naming the label, or it returns a model with our
 * specials that encodes and decodes text, and whose text form reads back. */
#include "fuzz_check.h"
#include "pairs.h"
#include "subword.h"

static void check_model(const s2s_subword *sw)
{
    char err[512];
    int n = s2s_subword_size(sw);
    FUZZ_CHECK(n >= S2S_SUBWORD_MIN, "model of %d pieces accepted", n);
    FUZZ_CHECK(s2s_subword_id(sw, s2s_subword_piece(sw, S2S_UNK)) == S2S_UNK, "unk id");
    int ids[64];
    int k = s2s_subword_encode(sw, "Über 3.5 km, 학교에 갑니다!", ids, 64, err, sizeof err);
    if (k < 0) {
        FUZZ_CHECK_MSG(err, sizeof err);
        return;
    }
    for (int i = 0; i < k && i < 64; i++)
        FUZZ_CHECK(ids[i] >= 0 && ids[i] < n, "piece id %d of %d", ids[i], n);
    char *text = s2s_subword_decode(sw, ids, k < 64 ? k : 64, err, sizeof err);
    if (text) free(text);
    else FUZZ_CHECK_MSG(err, sizeof err);
    char *form = s2s_subword_to_text(sw, err, sizeof err);
    if (!form) return; /* out of memory */
    s2s_subword *back = s2s_subword_from_text(form, "again", err, sizeof err);
    FUZZ_CHECK(back != NULL, "text form of an accepted model refused: %s", err);
    FUZZ_CHECK(s2s_subword_size(back) == n, "text form changed the size");
    s2s_subword_free(back);
    free(form);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char err[512];
    err[0] = '\0';
    s2s_subword *sw;
    if (size >= 5 && memcmp(data, "spm1:", 5) == 0) {
        char *text = malloc(size + 1);
        if (!text) return 0;
        memcpy(text, data, size);
        text[size] = '\0';
        sw = s2s_subword_from_text(text, "fuzz.safetensors", err, sizeof err);
        free(text);
    } else {
        sw = s2s_subword_load(data, size, "fuzz.safetensors", err, sizeof err);
    }
    if (sw) {
        check_model(sw);
        s2s_subword_free(sw);
    } else {
        FUZZ_CHECK_MSG(err, sizeof err);
        FUZZ_CHECK(strncmp(err, "fuzz.safetensors: ", 18) == 0, "message does not name the file: %s",
                   err);
    }
    return 0;
}
