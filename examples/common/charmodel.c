/* Character-level language model (see charmodel.h). */
#include "charmodel.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "text.h"
#include "trainrun.h" /* tgx_arena_measure */

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
    tg_rnn_run run = {.T = T, .B = B, .emb = &m->embed, .ids = ids, .init = init,
                      .final = final, .dropout_rng = dropout_rng};
    tg_tensor *h = tg_rnn_forward(t, &m->rnn, &run);
    if (dropout_rng && m->cfg.dropout > 0) h = tg_dropout(t, h, m->cfg.dropout, dropout_rng);
    return tg_linear_forward(t, &m->head, h); /* all T*B rows in one matmul */
}

tg_tensor *charmodel_loss(tg_tape *t, const charmodel *m, const int *ids, const int *targets, int T,
                          int B, const tg_state *init, tg_state *final, tg_rng *dropout_rng)
{
    tg_tensor *logits = charmodel_logits(t, m, ids, T, B, init, final, dropout_rng);
    return tg_softmax_xent(t, logits, targets, -1);
}

/* One training step of T x B (dropout on) on probe tape t; ids: (T + 1) B
 * of tgx_probe_ids, held by the caller (tgx_arena_measure may cut the step
 * short). */
typedef struct arena_probe {
    const charmodel *m;
    int T, B;
    const int *ids;
} arena_probe;

static void probe_step(void *ctx, tg_tape *t)
{
    const arena_probe *p = ctx;
    tg_rng r;
    tg_rng_seed(&r, 1);
    tg_state final[TG_MAX_LAYERS];
    tg_tensor *loss = charmodel_loss(t, p->m, p->ids, p->ids + p->B, p->T, p->B, NULL, final, &r);
    tg_backward(t, loss);
}

/* Measured, not guessed: one training step of T x B on a throwaway model
 * of the same configuration, on a probe tape (tgx_arena_measure: its high
 * water + 1/8 + 1 MiB). Works for any cell, user-defined ones included. */
size_t charmodel_arena_bytes(const charmodel_config *c, int T, int B)
{
    charmodel probe;
    char err[256];
    tg_rng r;
    tg_rng_seed(&r, 1);
    if (T < 1 || B < 1 || charmodel_init(&probe, c, &r, err, sizeof err) != 0)
        return (size_t)1 << 20; /* the step itself will say what it lacks */
    size_t read = (size_t)T * (size_t)B; /* then B more, only targets */
    int *ids = malloc((read + (size_t)B) * sizeof *ids);
    if (ids) { /* the distinct ids counted over what the network reads */
        tgx_probe_ids(ids, read, 0, c->vocab);
        tgx_probe_ids(ids + read, (size_t)B, 0, c->vocab);
    }
    arena_probe p = {&probe, T, B, ids};
    size_t bytes = ids ? tgx_arena_measure(probe_step, &p) : 0;
    free(ids);
    charmodel_free(&probe);
    return bytes;
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
    size_t bytes = charmodel_arena_bytes(c, n_prime, 1);
    tg_tape *t = bytes && bytes != TGX_ARENA_TOO_BIG ? tg_tape_new(bytes) : NULL;
    double *probs = malloc((size_t)c->vocab * sizeof *probs);
    int rc = -1;
    if (t && probs) {
        tg_tape_set_grad(t, 0);
        const tg_real *logits = run_window(t, m, &buf, prime, n_prime);
        rc = 0;
        for (int i = 0; i < n; i++) {
            out[i] = tg_sample_logits(logits, c->vocab, temperature, r, probs);
            if (out[i] < 0) { /* not finite: no draw from here on */
                for (int k = i; k < n; k++) out[k] = -1;
                rc = CHARMODEL_NONFINITE;
                break;
            }
            if (i + 1 < n) logits = run_window(t, m, &buf, &out[i], 1);
        }
    }
    free(probs);
    tg_tape_free(t);
    tg_state_buf_free(&buf);
    return rc;
}
