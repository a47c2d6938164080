/* The C half of the seq2seq PyTorch interchange test (test_seq2seq.py is the
 * other): the teacher-forced logits and loss of a model on given pairs.
 *
 *   s2s_torch_driver torch|native MODEL PAIRS OUT
 *
 * MODEL: a Seq2Seq file read by s2s_torch_import (torch), or a --save file
 * read by s2s_load (native). PAIRS: one pair a line, source ids, "|",
 * target ids (without <bos>/<eos>). OUT: "logits" [Tt*B, V] (time-major,
 * step t of pair b at row t*B + b, s2s_logits) and "loss" [1, 1] (s2s_loss:
 * mean cross-entropy per target token). Exit 1 with the message on stderr
 * when the model is refused. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "model.h"
#include "model_io.h"
#include "torch_s2s.h"

#define MAX_PAIRS 64
#define MAX_IDS 256

typedef struct pairs {
    int n, src_len[MAX_PAIRS], tgt_len[MAX_PAIRS];
    int src[MAX_PAIRS][MAX_IDS], tgt[MAX_PAIRS][MAX_IDS];
} pairs;

/* Ids of one side of a line (up to '|' or the end) into ids; the count. */
static int read_ids(char **s, int *ids)
{
    int n = 0, used;
    while (n < MAX_IDS && sscanf(*s, "%d%n", &ids[n], &used) == 1) {
        *s += used;
        n++;
    }
    while (**s == ' ') (*s)++;
    if (**s == '|') (*s)++;
    return n;
}

static int read_pairs(const char *path, pairs *p)
{
    char line[4096];
    FILE *f = fopen(path, "r");
    if (!f) return -1;
    p->n = 0;
    while (p->n < MAX_PAIRS && fgets(line, sizeof line, f)) {
        char *s = line;
        p->src_len[p->n] = read_ids(&s, p->src[p->n]);
        p->tgt_len[p->n] = read_ids(&s, p->tgt[p->n]);
        if (p->src_len[p->n] > 0) p->n++;
    }
    fclose(f);
    return p->n > 0 ? 0 : -1;
}

static int write_logits(const s2s_model *m, const pairs *p, const char *out, char *err,
                        size_t errlen)
{
    const int *src[MAX_PAIRS], *tgt[MAX_PAIRS];
    int Ts = 1, Tt = 1;
    for (int i = 0; i < p->n; i++) {
        src[i] = p->src[i], tgt[i] = p->tgt[i];
        if (p->src_len[i] > Ts) Ts = p->src_len[i];
        if (p->tgt_len[i] + 1 > Tt) Tt = p->tgt_len[i] + 1;
    }
    tg_tape *t = tg_tape_new(s2s_arena_bytes(&m->cfg, p->n, Ts, Tt));
    if (!t) return snprintf(err, errlen, "out of memory"), -1;
    tg_tape_set_grad(t, 0);
    s2s_batch b;
    s2s_batch_make(&b, t, &m->cfg, p->n, src, p->src_len, tgt, p->tgt_len, 0, 0);
    tg_tensor *logits = s2s_logits(t, m, &b, NULL, NULL);
    tg_tensor *loss = tg_softmax_xent(t, logits, b.dec_out, 0);
    const tg_ckpt_tensor ts[2] = {{"logits", logits->data, logits->rows, logits->cols},
                                  {"loss", loss->data, 1, 1}};
    int rc = tg_checkpoint_save_tensors(out, ts, 2, NULL, 0, err, errlen);
    tg_tape_free(t);
    return rc;
}

int main(int argc, char **argv)
{
    char err[1024];
    if (argc != 5 || (strcmp(argv[1], "torch") && strcmp(argv[1], "native"))) {
        fprintf(stderr, "usage: s2s_torch_driver torch|native MODEL PAIRS OUT\n");
        return 2;
    }
    static pairs p;
    if (read_pairs(argv[3], &p) != 0) {
        fprintf(stderr, "s2s_torch_driver: %s: no pairs\n", argv[3]);
        return 2;
    }
    s2s_model m;
    s2s_vocab vs, vt;
    s2s_tokenize_options tok;
    int rc = strcmp(argv[1], "torch") == 0
                 ? s2s_torch_import(argv[2], &m, &vs, &vt, &tok, err, sizeof err)
                 : s2s_load(argv[2], &m, &vs, &vt, &tok, err, sizeof err);
    if (rc != 0) {
        fprintf(stderr, "s2s_torch_driver: %s\n", err);
        return 1;
    }
    rc = write_logits(&m, &p, argv[4], err, sizeof err);
    if (rc != 0) fprintf(stderr, "s2s_torch_driver: %s\n", err);
    s2s_model_free(&m);
    s2s_vocab_free(&vs);
    s2s_vocab_free(&vt);
    return rc ? 1 : 0;
}
