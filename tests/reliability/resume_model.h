/* A small but complete training run for the resume and kill tests: an
 * embedding, a 2-layer LSTM stack with dropout between layers and on its
 * output, a linear read-out, softmax cross-entropy; truncated BPTT over B
 * streams whose hidden state is carried from window to window; a data rng
 * that picks where a stream restarts when it runs off the end; a cosine
 * learning-rate schedule with warm-up; gradient clipping. Every piece of
 * state its step reads is registered with a tg_trainckpt, so N steps, save,
 * load, M steps must equal N+M steps bit for bit. */
#ifndef TG_TESTS_RESUME_MODEL_H
#define TG_TESTS_RESUME_MODEL_H

#include <stddef.h>
#include <stdint.h>

#include "tapegrad.h"
#include "tg_layers.h"
#include "tg_optim.h"
#include "trainckpt.h"

#define RM_VOCAB 7
#define RM_DIM 4
#define RM_HIDDEN 6
#define RM_LAYERS 2
#define RM_B 3
#define RM_T 5
#define RM_STREAM 257

typedef struct rm_run {
    tg_params *params;
    tg_optim *opt;
    tg_tape *tape;
    tg_trainckpt *ck;
    tg_embed emb;
    tg_rnn_stack rnn;
    tg_linear out;
    tg_state_buf carry;
    tg_rng data_rng, drop_rng;
    uint64_t step;
    uint64_t cursor[RM_B];
    double loss_avg; /* running average the loop keeps: state too */
    tg_lr_schedule sched;
    int stream[RM_STREAM];
} rm_run;

/* Builds the model (weights from init_seed), the optimizer ("sgd",
 * "sgd_nesterov", "adam", "adamw") and the registrations. 0, or -1 with a
 * message. */
int rm_init(rm_run *r, const char *optimizer, uint64_t init_seed, char *err, size_t errlen);
void rm_free(rm_run *r);
/* One training step (step++), its loss in *loss. 0, or -1 with a message
 * in err when the guard stops it (non-finite loss or gradient). */
int rm_step(rm_run *r, double *loss, char *err, size_t errlen);
/* FNV-1a of the parameter bytes, for programs that print a fingerprint. */
uint64_t rm_params_hash(rm_run *r);

#endif
