/* The training run of resume_model.h. */
#include "resume_model.h"

#include <stdio.h>
#include <string.h>

/* "sgd" (plain, no state), "sgd_nesterov" (momentum buffer), "adam",
 * "adamw". -1 for another name. */
static int config_for(const char *name, tg_optim_config *c)
{
    tg_optim_kind kind;
    int nesterov = strcmp(name, "sgd_nesterov") == 0;
    if (tg_optim_kind_parse(nesterov ? "sgd" : name, &kind) != 0) return -1;
    *c = tg_optim_defaults(kind);
    if (kind == TG_OPTIM_SGD) {
        c->lr = 0.1;
        c->weight_decay = 1e-4;
        c->momentum = nesterov ? 0.9 : 0.0;
        c->nesterov = nesterov;
    } else {
        c->lr = 1e-2;
    }
    return 0;
}

/* The corpus: fixed, independent of every rng the run owns. */
static void make_stream(int *s)
{
    tg_rng g;
    tg_rng_seed(&g, 12345);
    for (int i = 0; i < RM_STREAM; i++)
        s[i] = i % 5 == 4 ? 0 : 1 + (int)tg_rng_below(&g, RM_VOCAB - 1);
}

static int register_state(rm_run *r, const char *optimizer)
{
    tg_trainckpt *ck = r->ck;
    int rc = tg_trainckpt_config(ck, "cell", "lstm") | tg_trainckpt_config_int(ck, "hidden", RM_HIDDEN) |
             tg_trainckpt_config_int(ck, "layers", RM_LAYERS) |
             tg_trainckpt_config(ck, "optimizer", optimizer) |
             tg_trainckpt_info(ck, "note", "resume test model") |
             tg_trainckpt_rng(ck, "data", &r->data_rng) | tg_trainckpt_rng(ck, "dropout", &r->drop_rng) |
             tg_trainckpt_u64(ck, "step", &r->step) | tg_trainckpt_f64(ck, "loss_avg", &r->loss_avg);
    for (int b = 0; b < RM_B; b++) {
        char name[16];
        snprintf(name, sizeof name, "cursor%d", b);
        rc |= tg_trainckpt_u64(ck, name, &r->cursor[b]);
    }
    size_t n = (size_t)RM_LAYERS * RM_B * RM_HIDDEN;
    rc |= tg_trainckpt_array(ck, "carry.h", r->carry.h, n);
    rc |= tg_trainckpt_array(ck, "carry.c", r->carry.c, n);
    return rc ? -1 : 0;
}

int rm_init(rm_run *r, const char *optimizer, uint64_t init_seed, char *err, size_t errlen)
{
    memset(r, 0, sizeof *r);
    tg_optim_config cfg;
    if (config_for(optimizer, &cfg) != 0) {
        snprintf(err, errlen, "unknown optimizer '%s'", optimizer);
        return -1;
    }
    tg_rng init;
    tg_rng_seed(&init, init_seed);
    tg_rng_seed(&r->data_rng, init_seed + 1);
    tg_rng_seed(&r->drop_rng, init_seed + 2);
    make_stream(r->stream);
    for (int b = 0; b < RM_B; b++) r->cursor[b] = (uint64_t)(b * (RM_STREAM / RM_B));
    r->sched = (tg_lr_schedule){.kind = TG_LR_COSINE, .base_lr = cfg.lr,
                                .warmup_steps = 3, .decay_steps = 40, .min_lr = 1e-4};
    r->params = tg_params_new();
    r->tape = tg_tape_new(1u << 20);
    if (!r->params || !r->tape || tg_embed_init(&r->emb, r->params, "emb", RM_VOCAB, RM_DIM, &init) ||
        tg_rnn_stack_init(&r->rnn, r->params, "rnn", &tg_cell_lstm, RM_DIM, RM_HIDDEN, RM_LAYERS,
                          0.25, &init) ||
        tg_linear_init(&r->out, r->params, "out", RM_HIDDEN, RM_VOCAB, &init) ||
        tg_state_buf_init(&r->carry, &tg_cell_lstm, RM_LAYERS, RM_B, RM_HIDDEN)) {
        snprintf(err, errlen, "out of memory building the model");
        return -1;
    }
    r->opt = tg_optim_new(&cfg, tg_params_numel(r->params), err, errlen);
    if (!r->opt) return -1;
    r->ck = tg_trainckpt_new("resume_test", r->params, r->opt);
    if (!r->ck || register_state(r, optimizer)) {
        snprintf(err, errlen, "cannot register the training state");
        return -1;
    }
    return 0;
}

void rm_free(rm_run *r)
{
    tg_trainckpt_free(r->ck);
    if (r->opt) tg_optim_free(r->opt);
    tg_state_buf_free(&r->carry);
    if (r->tape) tg_tape_free(r->tape);
    if (r->params) tg_params_free(r->params);
    memset(r, 0, sizeof *r);
}

/* Inputs (time-major T*B) and targets of the next window; a stream that
 * would run off the end restarts at a position drawn from the data rng,
 * and then the carried state is dropped. */
static void next_window(rm_run *r, int *ids, int *targets)
{
    int restart = 0;
    for (int b = 0; b < RM_B; b++) {
        if (r->cursor[b] + RM_T + 1 > RM_STREAM) {
            r->cursor[b] = tg_rng_below(&r->data_rng, RM_STREAM - RM_T - 1);
            restart = 1;
        }
        for (int t = 0; t < RM_T; t++) {
            ids[t * RM_B + b] = r->stream[r->cursor[b] + (uint64_t)t];
            targets[t * RM_B + b] = r->stream[r->cursor[b] + (uint64_t)t + 1];
        }
        r->cursor[b] += RM_T;
    }
    if (restart) tg_state_buf_zero(&r->carry);
}

int rm_step(rm_run *r, double *loss, char *err, size_t errlen)
{
    int ids[RM_T * RM_B], targets[RM_T * RM_B];
    next_window(r, ids, targets);
    tg_tape *t = r->tape;
    tg_tape_reset(t);
    tg_params_zero_grad(r->params);
    tg_state init[RM_LAYERS], final[RM_LAYERS];
    tg_state_buf_load(&r->carry, t, init);
    tg_rnn_run run = {.T = RM_T, .B = RM_B, .emb = &r->emb, .ids = ids, .init = init,
                      .final = final, .dropout_rng = &r->drop_rng};
    tg_tensor *h = tg_rnn_forward(t, &r->rnn, &run);
    h = tg_dropout(t, h, 0.1, &r->drop_rng);
    tg_tensor *l = tg_softmax_xent(t, tg_linear_forward(t, &r->out, h), targets, -1);
    tg_backward(t, l);
    tg_state_buf_store(&r->carry, final);
    *loss = (double)l->data[0];
    r->step++;
    if (tg_trainckpt_guard(r->ck, *loss, r->step, err, errlen) != 0) return -1;
    tg_clip_grad_norm(r->params, 1.0);
    tg_optim_set_lr(r->opt, tg_lr_at(&r->sched, r->step - 1));
    tg_optim_step(r->opt, r->params);
    r->loss_avg = r->step == 1 ? *loss : 0.9 * r->loss_avg + 0.1 * *loss;
    return 0;
}

uint64_t rm_params_hash(rm_run *r)
{
    const unsigned char *b = (const unsigned char *)tg_params_data(r->params);
    size_t n = tg_params_numel(r->params) * sizeof(tg_real);
    uint64_t h = 1469598103934665603ull;
    for (size_t i = 0; i < n; i++) h = (h ^ b[i]) * 1099511628211ull;
    return h;
}
