/* The C half of the PyTorch interchange test (test_torch_io.py is the
 * other): makes small charlm and rowseq models, exports them with their
 * logits on fixed inputs, and computes logits of imported PyTorch files.
 *
 *   torch_driver export-char CELL MODEL REF    CharRNN export + REF {ids, logits}
 *   torch_driver logits-char MODEL IN OUT      import MODEL, logits of IN's ids
 *   torch_driver export-row CELL MODEL REF     RowRNN export + REF {images, logits}
 *   torch_driver logits-row MODEL IN OUT       import MODEL, logits of IN's images
 *
 * Tensors of REF/IN/OUT: "ids" [T, B] (time-major), "images" [B, rows*cols]
 * (bytes as reals), "logits" [T*B, V] or [B, classes]. Exit 1 with the
 * error message on stderr when a call refuses. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "charmodel.h"
#include "rowseq_model.h"
#include "torch_io.h"

#define TAPE_BYTES ((size_t)64 << 20)
#define ROWS 6
#define COLS 5
#define IMAGES 3

static int fail(const char *msg)
{
    fprintf(stderr, "torch_driver: %s\n", msg);
    return 1;
}

/* A vocabulary with ASCII and non-ASCII code points. */
static int make_vocab(tg_vocab *v)
{
    static const char text[] = "hello, world\n\xc3\xa9t\xc3\xa9 \xed\x95\x9c\xea\xb8\x80";
    uint32_t cps[64];
    size_t n = 0;
    for (const unsigned char *s = (const unsigned char *)text; *s && n < 64;) {
        uint32_t cp = *s;
        int len = cp < 0x80 ? 1 : cp < 0xe0 ? 2 : cp < 0xf0 ? 3 : 4;
        if (len > 1) cp &= 0x3fu >> (len - 1);
        for (int k = 1; k < len; k++) cp = (cp << 6) | (s[k] & 0x3fu);
        cps[n++] = cp;
        s += len;
    }
    return tg_vocab_build(v, cps, n);
}

static int save_pair(const char *path, const char *in_name, const tg_real *in, int in_rows,
                     int in_cols, const tg_tensor *logits, char *err, size_t errlen)
{
    const tg_ckpt_tensor t[2] = {{in_name, in, in_rows, in_cols},
                                 {"logits", logits->data, logits->rows, logits->cols}};
    return tg_checkpoint_save_tensors(path, t, 2, NULL, 0, err, errlen);
}

static tg_tensor *char_logits(tg_tape *t, const charmodel *m, const int *ids, int T, int B)
{
    tg_tape_set_grad(t, 0);
    return charmodel_logits(t, m, ids, T, B, NULL, NULL, NULL);
}

static int export_char(const char *cell, const char *model_path, const char *ref_path)
{
    char err[1024];
    tg_vocab v;
    charmodel m;
    tg_rng r;
    tg_rng_seed(&r, 7);
    const tg_cell_kind *kind = tg_cell_kind_by_name(cell);
    if (!kind || make_vocab(&v) != 0) return fail("bad cell name or vocabulary");
    charmodel_config cfg = {kind, v.size, 6, 8, 2, 0.25};
    if (charmodel_init(&m, &cfg, &r, err, sizeof err) != 0) return fail(err);
    enum { T = 5, B = 3 };
    int ids[T * B];
    tg_real ids_real[T * B];
    for (int i = 0; i < T * B; i++) ids_real[i] = (tg_real)(ids[i] = (i * 7 + 3) % v.size);
    tg_tape *t = tg_tape_new(TAPE_BYTES);
    int rc = tgx_torch_export_charmodel(&m, &v, model_path, err, sizeof err);
    if (rc == 0)
        rc = save_pair(ref_path, "ids", ids_real, T, B, char_logits(t, &m, ids, T, B), err,
                       sizeof err);
    tg_tape_free(t);
    charmodel_free(&m);
    tg_vocab_free(&v);
    return rc ? fail(err) : 0;
}

static int logits_char(const char *model_path, const char *in_path, const char *out_path)
{
    char err[1024];
    tg_vocab v;
    charmodel m;
    if (tgx_torch_import_charmodel(model_path, &m, &v, err, sizeof err) != 0) return fail(err);
    tg_checkpoint *in = tg_checkpoint_open(in_path, err, sizeof err);
    int T = 0, B = 0, rc = in ? tg_checkpoint_tensor_shape(in, "ids", &T, &B) : -1;
    tg_real *ids_real = rc == 0 ? malloc((size_t)T * B * sizeof *ids_real) : NULL;
    int *ids = rc == 0 ? malloc((size_t)T * B * sizeof *ids) : NULL;
    if (rc == 0 && (!ids_real || !ids)) rc = -1;
    if (rc == 0) rc = tg_checkpoint_read_array(in, "ids", ids_real, (size_t)T * B, err, sizeof err);
    for (int i = 0; rc == 0 && i < T * B; i++) {
        ids[i] = (int)ids_real[i];
        if (ids[i] < 0 || ids[i] >= v.size) rc = -1;
    }
    tg_tape *t = tg_tape_new(TAPE_BYTES);
    if (rc == 0) rc = save_pair(out_path, "ids", ids_real, T, B, char_logits(t, &m, ids, T, B),
                                err, sizeof err);
    tg_tape_free(t);
    free(ids);
    free(ids_real);
    tg_checkpoint_close(in);
    charmodel_free(&m);
    tg_vocab_free(&v);
    return rc ? fail(err[0] ? err : "bad input ids") : 0;
}

static tg_tensor *row_logits(tg_tape *t, const rowseq_model *m, const uint8_t *pixels)
{
    static uint8_t labels[IMAGES];
    const uint32_t idx[IMAGES] = {0, 1, 2};
    rowseq_data d = {IMAGES, ROWS, COLS, pixels, labels};
    tg_tape_set_grad(t, 0);
    return rowseq_logits(t, m, &d, idx, IMAGES, NULL);
}

static int export_row(const char *cell, const char *model_path, const char *ref_path)
{
    char err[1024];
    tg_rng r;
    tg_rng_seed(&r, 11);
    const tg_cell_kind *kind = tg_cell_kind_by_name(cell);
    tg_params *p = tg_params_new();
    rowseq_model m;
    if (!kind || !p || rowseq_model_init(&m, p, kind, ROWS, COLS, 7, 2, 0.0, 4, &r) != 0)
        return fail("bad cell name or out of memory");
    uint8_t pixels[IMAGES * ROWS * COLS];
    tg_real real[IMAGES * ROWS * COLS];
    for (int i = 0; i < IMAGES * ROWS * COLS; i++) real[i] = pixels[i] = (uint8_t)(i * 37 % 256);
    tg_tape *t = tg_tape_new(TAPE_BYTES);
    int rc = tgx_torch_export(p, kind, model_path, NULL, 0, err, sizeof err);
    if (rc == 0)
        rc = save_pair(ref_path, "images", real, IMAGES, ROWS * COLS, row_logits(t, &m, pixels),
                       err, sizeof err);
    tg_tape_free(t);
    tg_params_free(p);
    return rc ? fail(err) : 0;
}

/* Builds a rowseq model from a PyTorch file, the way rowseq would. */
static int import_row(const char *path, tg_params *p, rowseq_model *m, char *err, size_t errlen)
{
    tgx_torch_arch a;
    tg_checkpoint *c = tgx_torch_open(path, &a, err, errlen);
    if (!c) return -1;
    tg_rng r;
    tg_rng_seed(&r, 0);
    int rc = 0;
    if (a.embed != 0 || a.in != COLS) {
        snprintf(err, errlen, "%s: not a RowRNN for images of %d columns", path, COLS);
        rc = -1;
    }
    if (rc == 0 && rowseq_model_init(m, p, a.kind, ROWS, a.in, a.hidden, a.layers, 0.0, a.out,
                                     &r) != 0) {
        snprintf(err, errlen, "out of memory");
        rc = -1;
    }
    if (rc == 0) rc = tgx_torch_import(c, p, err, errlen);
    tg_checkpoint_close(c);
    return rc;
}

static int logits_row(const char *model_path, const char *in_path, const char *out_path)
{
    char err[1024] = "";
    tg_params *p = tg_params_new();
    rowseq_model m;
    if (!p || import_row(model_path, p, &m, err, sizeof err) != 0) {
        tg_params_free(p);
        return fail(err);
    }
    tg_checkpoint *in = tg_checkpoint_open(in_path, err, sizeof err);
    tg_real real[IMAGES * ROWS * COLS];
    uint8_t pixels[IMAGES * ROWS * COLS];
    int rc = in ? tg_checkpoint_read_array(in, "images", real, sizeof real / sizeof real[0], err,
                                           sizeof err)
                : -1;
    for (size_t i = 0; rc == 0 && i < sizeof pixels; i++) pixels[i] = (uint8_t)real[i];
    tg_tape *t = tg_tape_new(TAPE_BYTES);
    if (rc == 0)
        rc = save_pair(out_path, "images", real, IMAGES, ROWS * COLS, row_logits(t, &m, pixels),
                       err, sizeof err);
    tg_tape_free(t);
    tg_checkpoint_close(in);
    tg_params_free(p);
    return rc ? fail(err) : 0;
}

int main(int argc, char **argv)
{
    if (argc == 5 && strcmp(argv[1], "export-char") == 0)
        return export_char(argv[2], argv[3], argv[4]);
    if (argc == 5 && strcmp(argv[1], "logits-char") == 0)
        return logits_char(argv[2], argv[3], argv[4]);
    if (argc == 5 && strcmp(argv[1], "export-row") == 0)
        return export_row(argv[2], argv[3], argv[4]);
    if (argc == 5 && strcmp(argv[1], "logits-row") == 0)
        return logits_row(argv[2], argv[3], argv[4]);
    fprintf(stderr, "usage: torch_driver export-char|export-row CELL MODEL REF\n"
                    "       torch_driver logits-char|logits-row MODEL IN OUT\n");
    return 2;
}
