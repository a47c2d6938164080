/* charlm internals: the trainer over B parallel streams of a text, shared by
 * charlm.c (the program) and train.c (steps and evaluation). */
#ifndef CHARLM_H
#define CHARLM_H

#include <stddef.h>
#include <stdint.h>

#include "charmodel.h"
#include "tg_optim.h"

#define CHARLM_MAX_SHARDS 64

/* B streams over ids[0 .. B*L]: stream b reads ids[b*L + pos + t] and
 * predicts the id after it. Each shard keeps the recurrent state of its
 * streams between windows (truncated BPTT: values carried, history cut). */
typedef struct charlm_streams {
    const int *ids;
    size_t L;   /* inputs per stream */
    size_t pos; /* start of the next window in every stream */
    int B;
    tg_state_buf state[CHARLM_MAX_SHARDS];
} charlm_streams;

/* One data-parallel shard: streams b0 .. b0+nb-1, its model view over a
 * replica of the parameters, its window buffers and dropout generator. */
typedef struct charlm_shard {
    int b0, nb;
    charmodel model;
    int *in, *tg; /* T*nb, time-major */
    tg_rng dropout_rng;
} charlm_shard;

typedef struct charlm_trainer {
    charmodel *model; /* master */
    int T, B, shards, threads;
    tg_workers *workers;
    charlm_shard shard[CHARLM_MAX_SHARDS];
    charlm_streams train;
    /* evaluation: one no-grad tape over the whole batch */
    tg_tape *eval_tape;
    int eval_B;
    int *eval_in, *eval_tg;
    charlm_streams valid;
    /* the window being run by tg_workers_run */
    charlm_streams *cur;
    int cur_T, training;
} charlm_trainer;

/* Sets up shards, tapes and stream states. train_ids: n_train ids; valid_ids:
 * n_valid ids (may be 0). 0 ok; -1 with a message. */
int charlm_trainer_init(charlm_trainer *tr, charmodel *m, const int *train_ids, size_t n_train,
                        const int *valid_ids, size_t n_valid, int T, int B, int shards,
                        int threads, uint64_t seed, char *err, size_t errlen);
void charlm_trainer_free(charlm_trainer *tr);

/* Forward + backward of the next window of every stream; leaves the batch
 * gradient in the master's parameters (zeroed first) and returns the mean
 * loss in nats. Wraps to the start of the text (zero state) at the end. */
double charlm_train_window(charlm_trainer *tr);

/* Mean loss (nats per character) over the whole validation split, from a
 * zero state, without dropout; NAN when there is no validation split. */
double charlm_evaluate(charlm_trainer *tr);

#endif
