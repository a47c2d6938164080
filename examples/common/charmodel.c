/* Character-level language model (see charmodel.h). */
#include "charmodel.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "text.h"

int charmodel_config_check(const charmodel_config *c, char *err, size_t errlen)
{
    const char *bad = !c->kind                                   ? "cell kind"
                      : c->vocab < 1                             ? "vocab"
                      : c->embed < 1                             ? "embed"
                      : c->hidden < 1                            ? "hidden"
                      : c->layers < 1 || c->layers > TG_MAX_LAYERS ? "layers"
                      : !(c->dropout >= 0 && c->dropout < 1)     ? "dropout"
                                                                 : NULL;
    if (bad) {
        snprintf(err, errlen, "model config: bad %s (vocab=%d embed=%d hidden=%d layers=%d "
                 "(max %d) dropout=%g)", bad, c->vocab, c->embed, c->hidden, c->layers,
                 TG_MAX_LAYERS, c->dropout);
        return -1;
    }
    return 0;
}

int charmodel_build(charmodel *m, tg_params *p, const charmodel_config *cfg, tg_rng *r)
{
    memset(m, 0, sizeof *m);
    m->cfg = *cfg;
    m->params = p;
    if (tg_embed_init(&m->embed, p, "embed", cfg->vocab, cfg->embed, r) != 0) return -1;
    if (tg_rnn_stack_init(&m->rnn, p, "rnn", cfg->kind, cfg->embed, cfg->hidden, cfg->layers,
                          cfg->dropout, r) != 0)
        return -1;
    return tg_linear_init(&m->head, p, "head", cfg->hidden, cfg->vocab, r);
}

int charmodel_init(charmodel *m, const charmodel_config *cfg, tg_rng *r, char *err, size_t errlen)
{
    memset(m, 0, sizeof *m);
    if (charmodel_config_check(cfg, err, errlen) != 0) return -1;
    tg_params *p = tg_params_new();
    if (!p || charmodel_build(m, p, cfg, r) != 0) {
        tg_params_free(p);
        memset(m, 0, sizeof *m);
        snprintf(err, errlen, "out of memory making the model (hidden=%d layers=%d vocab=%d)",
                 cfg->hidden, cfg->layers, cfg->vocab);
        return -1;
    }
    m->owns_params = 1;
    return 0;
}

void charmodel_free(charmodel *m)
{
    if (m->owns_params) tg_params_free(m->params);
    memset(m, 0, sizeof *m);
}

tg_tensor *charmodel_logits(tg_tape *t, const charmodel *m, const int *ids, int T, int B,
                            const tg_state *init, tg_state *final, tg_rng *dropout_rng)
{
    tg_tensor *h =
        tg_rnn_stack_forward_ids(t, &m->rnn, &m->embed, ids, T, B, init, NULL, final, dropout_rng);
    if (dropout_rng && m->cfg.dropout > 0) h = tg_dropout(t, h, m->cfg.dropout, dropout_rng);
    return tg_linear_forward(t, &m->head, h); /* all T*B rows in one matmul */
}

tg_tensor *charmodel_loss(tg_tape *t, const charmodel *m, const int *ids, const int *targets, int T,
                          int B, const tg_state *init, tg_state *final, tg_rng *dropout_rng)
{
    tg_tensor *logits = charmodel_logits(t, m, ids, T, B, init, final, dropout_rng);
    return tg_softmax_xent(t, logits, targets, -1);
}

/* A generous upper bound from counting tensors: per tensor a 64-byte-aligned
 * header, values and gradient, plus a node record (an LSTM step makes ~16
 * tensors of B x H or B x 4H). Up to 8x too large for simple cells, so it
 * only sizes the probe below. */
static size_t arena_bound(const charmodel_config *c, int T, int B)
{
    const size_t real = sizeof(tg_real), node = 512, align = 64;
    size_t rows = (size_t)T * (size_t)B;
    size_t H = (size_t)c->hidden, G = 4 * H; /* widest gate block of any built-in cell */
    size_t per_step_layer = 40 * (2 * (size_t)B * H * real + node + 3 * align) +
                            4 * (2 * (size_t)B * G * real + align);
    size_t per_layer = 4 * rows * (G + H) * real + (size_t)T * per_step_layer;
    size_t top = rows * (3 * (size_t)c->embed + 6 * H + 4 * (size_t)c->vocab) * real +
                 rows * 2 * sizeof(int) + 64 * node;
    return (size_t)c->layers * per_layer + top + ((size_t)1 << 20);
}

/* High-water mark of one training step of T x B on a throwaway model. */
static size_t probe_step(const charmodel *m, int T, int B)
{
    size_t hw = 0;
    tg_tape *t = tg_tape_new(arena_bound(&m->cfg, T, B));
    int *ids = calloc((size_t)(T + 1) * (size_t)B, sizeof *ids);
    if (t && ids) {
        tg_rng r;
        tg_rng_seed(&r, 1);
        tg_state final[TG_MAX_LAYERS];
        tg_tensor *loss = charmodel_loss(t, m, ids, ids + B, T, B, NULL, final, &r);
        tg_backward(t, loss);
        hw = tg_tape_arena_high_water(t);
    }
    free(ids);
    tg_tape_free(t);
    return hw;
}

/* Measured, not guessed: every step of the unroll allocates the same, and
 * the rest grows linearly with the T*B rows, so two probe steps (T = 1, 2)
 * on a throwaway model of the same configuration fix the line. Works for
 * any cell, user-defined ones included. 1/8 + 1 MiB of slack on top. */
size_t charmodel_arena_bytes(const charmodel_config *c, int T, int B)
{
    charmodel probe;
    char err[256];
    tg_rng r;
    tg_rng_seed(&r, 1);
    if (T < 1 || B < 1 || charmodel_init(&probe, c, &r, err, sizeof err) != 0)
        return arena_bound(c, T > 0 ? T : 1, B > 0 ? B : 1);
    size_t h1 = probe_step(&probe, 1, B), h2 = probe_step(&probe, 2, B);
    charmodel_free(&probe);
    if (h1 == 0 || h2 < h1) return arena_bound(c, T, B);
    size_t need = h1 + (size_t)(T - 1) * (h2 - h1);
    return need + need / 8 + ((size_t)1 << 20);
}

/* Feeds T ids (one stream) from state buf, stores the new state, and
 * returns the logits of the last position. */
static const tg_real *run_window(tg_tape *t, const charmodel *m, tg_state_buf *buf, const int *ids,
                                 int T)
{
    tg_state init[TG_MAX_LAYERS], final[TG_MAX_LAYERS];
    tg_tape_reset(t);
    tg_state_buf_load(buf, t, init);
    tg_tensor *logits = charmodel_logits(t, m, ids, T, 1, init, final, NULL);
    tg_state_buf_store(buf, final);
    return logits->data + (size_t)(T - 1) * (size_t)m->cfg.vocab;
}

int charmodel_sample(const charmodel *m, const int *prime, int n_prime, int n, double temperature,
                     tg_rng *r, int *out)
{
    const charmodel_config *c = &m->cfg;
    tg_state_buf buf;
    if (n_prime < 1 || tg_state_buf_init(&buf, c->kind, c->layers, 1, c->hidden) != 0) return -1;
    tg_tape *t = tg_tape_new(charmodel_arena_bytes(c, n_prime, 1));
    double *probs = malloc((size_t)c->vocab * sizeof *probs);
    int rc = -1;
    if (t && probs) {
        tg_tape_set_grad(t, 0);
        const tg_real *logits = run_window(t, m, &buf, prime, n_prime);
        for (int i = 0; i < n; i++) {
            out[i] = tg_sample_logits(logits, c->vocab, temperature, r, probs);
            if (i + 1 < n) logits = run_window(t, m, &buf, &out[i], 1);
        }
        rc = 0;
    }
    free(probs);
    tg_tape_free(t);
    tg_state_buf_free(&buf);
    return rc;
}
