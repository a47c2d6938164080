/* The rows-as-a-sequence classifier and its trainer.
 *
 * An image of R x C bytes is read as R time steps of C pixels scaled to
 * [0, 1]; a stack of recurrent layers runs over the R steps and a linear
 * layer maps the top layer's last hidden state to class logits
 * (many-to-one). Training is data-parallel over a fixed number of shards
 * (tg_workers), so results depend on the shard count, never on threads.
 * Evaluation runs the same shards with the tape in no-grad mode. */
#ifndef ROWSEQ_MODEL_H
#define ROWSEQ_MODEL_H

#include <stddef.h>
#include <stdint.h>

#include "tg_dist.h"
#include "tapegrad.h"
#include "tg_layers.h"
#include "tg_optim.h"

#define ROWSEQ_MAX_SHARDS 64
/* The flags a run that needs too much memory is told to lower. */
#define ROWSEQ_LOWER "--hidden, --layers, --batch or --eval-batch"
#define ROWSEQ_MAX_CLASSES 16

/* A split of a data set: count images of rows x cols bytes and their labels. */
typedef struct rowseq_data {
    int count, rows, cols;
    const uint8_t *pixels; /* count * rows * cols */
    const uint8_t *labels; /* count, each < classes */
} rowseq_data;

typedef struct rowseq_model {
    int steps, in, hidden, classes; /* steps = image rows, in = image cols */
    tg_rnn_stack rnn;
    tg_linear head;
} rowseq_model;

/* Registers "rnn.l<k>.*" and "head.*" on p (a master: random init from r; a
 * replica: the master's tensors). 0 ok, -1 out of memory. */
int rowseq_model_init(rowseq_model *m, tg_params *p, const tg_cell_kind *kind, int steps, int in,
                      int hidden, int layers, double dropout, int classes, tg_rng *r);

/* Logits (B x classes) of images idx[0..B) of d. dropout_rng NULL: no dropout. */
tg_tensor *rowseq_logits(tg_tape *t, const rowseq_model *m, const rowseq_data *d,
                         const uint32_t *idx, int B, tg_rng *dropout_rng);

typedef struct rowseq_trainer_config {
    const tg_cell_kind *kind;
    int steps, in, hidden, layers, classes;
    double dropout;
    tg_optim_config optim;
    double clip;      /* global gradient-norm clip; <= 0 off */
    int batch;        /* training rows per step (all shards together) */
    int eval_batch;   /* rows per evaluation pass (all shards together) */
    int train_count;  /* training images, when known (0: not): no step holds more, so
                       * the arena probe's training step takes no more than these */
    int shards;       /* data-parallel shards: fixes the arithmetic */
    int threads;      /* threads running the shards: changes nothing but speed */
    uint64_t seed;
} rowseq_trainer_config;

typedef struct rowseq_trainer {
    rowseq_trainer_config cfg;
    tg_params *params; /* master */
    rowseq_model model;
    tg_workers *workers;
    tg_dist *dist; /* MPI ranks (tg_dist_attach'ed to workers), NULL: one process; evaluation
                    * runs every shard on every rank */
    rowseq_model shard_model[ROWSEQ_MAX_SHARDS];
    tg_rng shard_rng[ROWSEQ_MAX_SHARDS]; /* dropout streams, one per shard */
    tg_optim *opt;
    tg_rng rng; /* init, then shuffling (the only draws: one shuffle per epoch) */
    size_t arena_bytes; /* of each shard tape: measured by a probe training step and a
                         * probe evaluation pass at init */
} rowseq_trainer;

/* Builds the model, workers and optimizer. 0, or -1 with a message. */
int rowseq_trainer_init(rowseq_trainer *tr, const rowseq_trainer_config *cfg, char *err,
                        size_t errlen);
void rowseq_trainer_free(rowseq_trainer *tr);
/* With ranks, collective (tgx_run_hooks.before_checkpoint, ctx: the
 * trainer): each shard's dropout generator as the rank running it holds it,
 * copied to every rank, so that rank 0's checkpoint holds every shard's.
 * No-op without ranks. */
void rowseq_trainer_share_state(void *trainer);


/* Forward and backward on images idx[0..B): leaves the gradient of the
 * batch's mean loss in the master's gradients (zeroed first, not clipped)
 * and returns that loss. No update: the caller may check the gradient
 * first (the program's non-finite guard), then clip and step. */
double rowseq_train_backward(rowseq_trainer *tr, const rowseq_data *d, const uint32_t *idx,
                             int B);

/* One optimizer step on images idx[0..B): returns the batch's mean loss, and
 * the gradient norm before clipping in *grad_norm (may be NULL). A NaN or
 * infinite loss or gradient skips the update and is returned as is. */
double rowseq_train_step(rowseq_trainer *tr, const rowseq_data *d, const uint32_t *idx, int B,
                         double *grad_norm);

/* Mean loss and accuracy over the first n images of d (n <= d->count), in
 * no-grad mode, eval_batch images at a time. confusion (classes x classes,
 * row = true class, column = predicted; may be NULL) is filled, not added to. */
void rowseq_evaluate(rowseq_trainer *tr, const rowseq_data *d, int n, double *loss,
                     double *accuracy, long *confusion);

/* A fresh random order of 0..n-1 from the trainer's rng. */
void rowseq_shuffle(rowseq_trainer *tr, uint32_t *order, int n);

#endif
