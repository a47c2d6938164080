/* Rows-as-a-sequence classifier: model, data-parallel training step and
 * no-grad evaluation (see rowseq_model.h). */
#include "rowseq_model.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "trainrun.h" /* tgx_arena_measure */

int rowseq_model_init(rowseq_model *m, tg_params *p, const tg_cell_kind *kind, int steps, int in,
                      int hidden, int layers, double dropout, int classes, tg_rng *r)
{
    memset(m, 0, sizeof *m);
    m->steps = steps;
    m->in = in;
    m->hidden = hidden;
    m->classes = classes;
    if (tg_rnn_stack_init(&m->rnn, p, "rnn", kind, in, hidden, layers, dropout, r) != 0) return -1;
    return tg_linear_init(&m->head, p, "head", hidden, classes, r);
}

/* X (T*B x C), time-major: row t*B + b holds row t of image idx[b], / 255. */
static tg_tensor *image_rows(tg_tape *t, const rowseq_data *d, const uint32_t *idx, int B)
{
    int T = d->rows, C = d->cols;
    tg_tensor *X = tg_tensor_new(t, T * B, C, 0);
    const size_t image = (size_t)T * (size_t)C;
    for (int b = 0; b < B; b++) {
        const uint8_t *px = d->pixels + (size_t)idx[b] * image;
        for (int step = 0; step < T; step++) {
            tg_real *dst = X->data + ((size_t)step * B + b) * C;
            for (int j = 0; j < C; j++) dst[j] = (tg_real)(px[(size_t)step * C + j] / 255.0);
        }
    }
    return X;
}

tg_tensor *rowseq_logits(tg_tape *t, const rowseq_model *m, const rowseq_data *d,
                         const uint32_t *idx, int B, tg_rng *dropout_rng)
{
    TG_CHECK(d->rows == m->steps && d->cols == m->in, TG_HERE, "rowseq_logits",
             "images are %dx%d, the model reads %d steps of %d pixels", d->rows, d->cols,
             m->steps, m->in);
    tg_tensor *X = image_rows(t, d, idx, B);
    tg_state final[TG_MAX_LAYERS];
    tg_rnn_run run = {.T = m->steps, .B = B, .x = X, .final = final, .dropout_rng = dropout_rng};
    tg_rnn_forward(t, &m->rnn, &run);
    return tg_linear_forward(t, &m->head, final[m->rnn.layers - 1].h);
}

/* ------------------------------------------------------------------ trainer */

/* First row of shard s when B rows are cut into K nearly equal shards. */
static int shard_begin(int B, int K, int s) { return (int)((long)B * s / K); }

static int *shard_targets(tg_tape *t, const rowseq_data *d, const uint32_t *idx, int n)
{
    int *y = tg_tape_ints(t, (size_t)n);
    for (int i = 0; i < n; i++) y[i] = d->labels[idx[i]];
    return y;
}

/* A step of d's images on probe tape t: training (forward, backward) or
 * evaluation (no grad). The images are the caller's (tgx_arena_measure
 * may cut the step short). */
typedef struct arena_probe {
    rowseq_trainer *tr;
    int grad;
    rowseq_data d;
    const uint32_t *idx;
} arena_probe;

static void probe_step(void *ctx, tg_tape *t)
{
    const arena_probe *p = ctx;
    const rowseq_trainer_config *c = &p->tr->cfg;
    tg_rng drop;
    tg_rng_seed(&drop, 1);
    tg_tape_set_grad(t, p->grad);
    tg_tape_set_threads(t, c->shards == 1 ? c->threads : 1);
    tg_tensor *logits = rowseq_logits(t, &p->tr->model, &p->d, p->idx, p->d.count,
                                      p->grad && c->dropout > 0 ? &drop : NULL);
    tg_tensor *loss = tg_softmax_xent(t, logits, shard_targets(t, &p->d, p->idx, p->d.count), -1);
    if (p->grad) tg_backward(t, loss);
}

/* The arena of a step of `rows` blank images (the arena does not depend
 * on the pixels); the probe's gradients are zeroed again. */
static size_t measure_rows(rowseq_trainer *tr, int rows, int grad)
{
    const rowseq_trainer_config *c = &tr->cfg;
    size_t n = (size_t)rows, bytes = 0;
    uint8_t *pixels = calloc(n * (size_t)c->steps * (size_t)c->in + 1, 1);
    uint8_t *labels = calloc(n + 1, 1);
    uint32_t *idx = malloc((n + 1) * sizeof *idx);
    if (pixels && labels && idx) {
        for (size_t i = 0; i < n; i++) idx[i] = (uint32_t)i;
        arena_probe p = {tr, grad, {rows, c->steps, c->in, pixels, labels}, idx};
        bytes = tgx_arena_measure(probe_step, &p);
        tg_params_zero_grad(tr->params);
    }
    free(pixels);
    free(labels);
    free(idx);
    return bytes;
}

/* One shard tape's arena, measured: its largest training step and its
 * largest evaluation pass (tgx_arena_measure: 0 or TGX_ARENA_TOO_BIG when
 * either has no size). */
static size_t measure_arena(rowseq_trainer *tr)
{
    const rowseq_trainer_config *c = &tr->cfg;
    /* --batch 65536 over 64 images takes steps of 64: measure those */
    int rows = c->train_count > 0 && c->train_count < c->batch ? c->train_count : c->batch;
    size_t a = measure_rows(tr, (rows + c->shards - 1) / c->shards, 1);
    size_t b = measure_rows(tr, (c->eval_batch + c->shards - 1) / c->shards, 0);
    if (a == 0 || b == 0) return 0;
    return a > b ? a : b; /* TGX_ARENA_TOO_BIG is the largest size_t */
}

int rowseq_trainer_init(rowseq_trainer *tr, const rowseq_trainer_config *cfg, char *err,
                        size_t errlen)
{
    memset(tr, 0, sizeof *tr);
    tr->cfg = *cfg;
    if (cfg->shards < 1 || cfg->shards > ROWSEQ_MAX_SHARDS || cfg->classes < 2 ||
        cfg->classes > ROWSEQ_MAX_CLASSES) {
        snprintf(err, errlen, "shards must be 1..%d and classes 2..%d (got %d, %d)",
                 ROWSEQ_MAX_SHARDS, ROWSEQ_MAX_CLASSES, cfg->shards, cfg->classes);
        return -1;
    }
    tg_rng_seed(&tr->rng, cfg->seed);
    tr->params = tg_params_new();
    if (!tr->params ||
        rowseq_model_init(&tr->model, tr->params, cfg->kind, cfg->steps, cfg->in, cfg->hidden,
                          cfg->layers, cfg->dropout, cfg->classes, &tr->rng) != 0)
        goto oom;
    tr->arena_bytes = measure_arena(tr);
    if (tgx_arena_problem(tr->arena_bytes, ROWSEQ_LOWER, err, errlen)) {
        rowseq_trainer_free(tr);
        return -1;
    }
    tr->workers = tg_workers_new(tr->params, cfg->shards, tr->arena_bytes);
    if (!tr->workers) goto oom;
    for (int s = 0; s < cfg->shards; s++) {
        tg_rng unused = tr->rng; /* a replica draws nothing; keep the master stream intact */
        if (rowseq_model_init(&tr->shard_model[s], tg_workers_params(tr->workers, s), cfg->kind,
                              cfg->steps, cfg->in, cfg->hidden, cfg->layers, cfg->dropout,
                              cfg->classes, &unused) != 0)
            goto oom;
        tg_rng_seed(&tr->shard_rng[s], cfg->seed ^ (0x9e3779b97f4a7c15ull * (uint64_t)(s + 1)));
        /* One thread per shard: pools must never nest. A single shard may
         * use the threads inside its kernels instead. */
        tg_tape_set_threads(tg_workers_tape(tr->workers, s), cfg->shards == 1 ? cfg->threads : 1);
    }
    tg_blas_set_threads(cfg->shards == 1 ? cfg->threads : 1);
    tr->opt = tg_optim_new(&cfg->optim, tg_params_numel(tr->params), err, errlen);
    if (!tr->opt) {
        rowseq_trainer_free(tr);
        return -1;
    }
    return 0;
oom:
    snprintf(err, errlen, "out of memory building a %s model of %d x %d", cfg->kind->name,
             cfg->layers, cfg->hidden);
    rowseq_trainer_free(tr);
    return -1;
}

void rowseq_trainer_free(rowseq_trainer *tr)
{
    tg_optim_free(tr->opt);
    tg_workers_free(tr->workers);
    tg_params_free(tr->params);
    memset(tr, 0, sizeof *tr);
}

void rowseq_trainer_share_state(void *trainer)
{
    rowseq_trainer *tr = trainer;
    for (int s = 0; tr->dist && s < tr->cfg.shards; s++)
        tg_dist_share_shard(tr->dist, s, &tr->shard_rng[s], sizeof tr->shard_rng[s]);
}

/* What a shard needs to find its rows. */
typedef struct shard_ctx {
    rowseq_trainer *tr;
    const rowseq_data *d;
    const uint32_t *idx;
    int B;
    int *pred; /* evaluation: predicted class of each of the B rows */
} shard_ctx;

/* Forward and backward of one shard; its loss is scaled by n / B so that the
 * shards' gradients add up to the gradient of the batch mean. */
static double train_shard(int s, tg_tape *t, tg_params *p, void *vctx)
{
    (void)p;
    const shard_ctx *c = vctx;
    rowseq_trainer *tr = c->tr;
    int r0 = shard_begin(c->B, tr->cfg.shards, s);
    int n = shard_begin(c->B, tr->cfg.shards, s + 1) - r0;
    if (n == 0) return 0;
    tg_tape_set_grad(t, 1);
    tg_rng *drop = tr->cfg.dropout > 0 ? &tr->shard_rng[s] : NULL;
    tg_tensor *logits = rowseq_logits(t, &tr->shard_model[s], c->d, c->idx + r0, n, drop);
    tg_tensor *loss = tg_softmax_xent(t, logits, shard_targets(t, c->d, c->idx + r0, n), -1);
    tg_tensor *scaled = tg_scale(t, loss, (double)n / c->B);
    tg_backward(t, scaled);
    return scaled->data[0];
}

double rowseq_train_backward(rowseq_trainer *tr, const rowseq_data *d, const uint32_t *idx,
                             int B)
{
    shard_ctx c = {tr, d, idx, B, NULL};
    if (tr->dist) return tg_dist_run(tr->dist, tr->workers, tr->cfg.threads, train_shard, &c);
    return tg_workers_run(tr->workers, tr->cfg.threads, train_shard, &c);
}

double rowseq_train_step(rowseq_trainer *tr, const rowseq_data *d, const uint32_t *idx, int B,
                         double *grad_norm)
{
    double loss = rowseq_train_backward(tr, d, idx, B);
    double norm = tg_clip_grad_norm(tr->params, tr->cfg.clip);
    if (grad_norm) *grad_norm = norm;
    if (!isfinite(loss) || !isfinite(norm)) return isfinite(loss) ? NAN : loss;
    tg_optim_step(tr->opt, tr->params);
    return loss;
}

/* Forward only; writes each row's arg-max class and returns the summed loss. */
static double eval_shard(int s, tg_tape *t, tg_params *p, void *vctx)
{
    (void)p;
    const shard_ctx *c = vctx;
    rowseq_trainer *tr = c->tr;
    int r0 = shard_begin(c->B, tr->cfg.shards, s);
    int n = shard_begin(c->B, tr->cfg.shards, s + 1) - r0;
    if (n == 0) return 0;
    tg_tape_set_grad(t, 0);
    tg_tensor *logits = rowseq_logits(t, &tr->shard_model[s], c->d, c->idx + r0, n, NULL);
    tg_tensor *loss = tg_softmax_xent(t, logits, shard_targets(t, c->d, c->idx + r0, n), -1);
    for (int i = 0; i < n; i++) {
        const tg_real *row = logits->data + (size_t)i * logits->cols;
        int best = 0;
        for (int k = 1; k < logits->cols; k++)
            if (row[k] > row[best]) best = k;
        c->pred[r0 + i] = best;
    }
    double sum = loss->data[0] * (double)n;
    tg_tape_set_grad(t, 1);
    return sum;
}

void rowseq_evaluate(rowseq_trainer *tr, const rowseq_data *d, int n, double *loss,
                     double *accuracy, long *confusion)
{
    int K = tr->cfg.classes, chunk = tr->cfg.eval_batch;
    uint32_t *idx = malloc((size_t)chunk * sizeof *idx);
    int *pred = malloc((size_t)chunk * sizeof *pred);
    TG_CHECK(idx && pred, TG_HERE, "rowseq_evaluate", "out of memory for %d rows", chunk);
    if (confusion) memset(confusion, 0, (size_t)K * (size_t)K * sizeof *confusion);
    double total = 0;
    long correct = 0;
    for (int start = 0; start < n; start += chunk) {
        int B = n - start < chunk ? n - start : chunk;
        for (int i = 0; i < B; i++) idx[i] = (uint32_t)(start + i);
        shard_ctx c = {tr, d, idx, B, pred};
        /* every shard, and no gradient summed: master's stays as it is */
        total += tg_workers_run_range(tr->workers, tr->cfg.threads, 0, tr->cfg.shards,
                                      eval_shard, &c);
        for (int i = 0; i < B; i++) {
            int y = d->labels[start + i];
            correct += pred[i] == y;
            if (confusion) confusion[y * K + pred[i]]++;
        }
    }
    free(idx);
    free(pred);
    *loss = n > 0 ? total / n : 0;
    *accuracy = n > 0 ? (double)correct / n : 0;
}

void rowseq_shuffle(rowseq_trainer *tr, uint32_t *order, int n)
{
    for (int i = 0; i < n; i++) order[i] = (uint32_t)i;
    for (int i = n - 1; i > 0; i--) {
        uint32_t j = tg_rng_below(&tr->rng, (uint32_t)i + 1);
        uint32_t tmp = order[i];
        order[i] = order[j];
        order[j] = tmp;
    }
}
