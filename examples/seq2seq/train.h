/* The seq2seq program's training loop (train.c): epochs of length-bucketed
 * batches, each step's shards forward and backward, evaluation on the test
 * set after each epoch (and every --eval-every steps), and keep-best --save.
 * The bookkeeping (stops, guard, checkpoints, log) is the training run's
 * (trainrun.h); main.c builds the model, the tapes and the run and hands
 * them over in an s2s_trainer. */
#ifndef S2S_TRAIN_H
#define S2S_TRAIN_H

#include <stdint.h>

#include "program.h"
#include "tapegrad.h"
#include "tg_optim.h"
#include "trainrun.h"

/* Everything the loop reads and the state it keeps. */
typedef struct s2s_trainer {
    const s2s_options *o;
    s2s_model *m;
    tg_tape *tape;          /* evaluation, and training with one shard */
    tg_workers *workers;    /* training with several shards */
    tg_dist *dist;          /* MPI ranks running the shards, NULL: one process */
    s2s_model *shard_model; /* each worker's view of the parameters */
    tg_optim *opt;
    tgx_run run;            /* steps, stops, guard, checkpoints, log */
    /* the loop's own state, in training checkpoints */
    tg_rng rng;             /* batch order (and dropout with one shard) */
    tg_rng order_rng;       /* rng as it was before this epoch's order was drawn */
    uint64_t epoch, batch;  /* the epoch in progress (from 1) and its batches done */
    /* keep-best (with --save): the best test BLEU so far and its step, in
     * training checkpoints so a resume keeps comparing against it */
    double best_bleu;       /* -1: none yet */
    uint64_t best_step;
    /* evaluation: the test set, its reference text, how output becomes text */
    const s2s_id_set *test_set;
    const s2s_pairs *refs;
    const s2s_pieces *pc;
    const s2s_vocab *vs, *vt;
    const s2s_tokenize_options *tok;
    int **out, *lens;
    uint64_t last_eval_step; /* step of the last evaluation (UINT64_MAX: none) */
    int kept_here;           /* this process wrote the kept model (at best_step) */
    s2s_scores last;         /* its scores */
} s2s_trainer;

/* s2s_evaluate of set s with beam on rank 0 only (tr->out, tr->lens get its
 * decodes there); the other ranks, which hold the same model, get its
 * scores: under mpirun every rank decoded the whole test set. */
s2s_scores s2s_evaluate_on_root(s2s_trainer *tr, const s2s_id_set *s, int beam);

/* With --save, writes the model there when sc beats every evaluation of
 * the run so far (a resumed run's included), and says so. */
void s2s_keep_best(s2s_trainer *tr, s2s_scores sc);

/* Greedy evaluation on the test set now: the line, the log row, keep-best
 * (why, when not NULL, is said after the line: "--eval-every", a stop). */
s2s_scores s2s_evaluate_now(s2s_trainer *tr, const char *why);

/* Training (unless there is nothing to train: said after a resume), then
 * the final checkpoint. Returns the last evaluation's scores; *evaluated
 * says whether there was one. */
s2s_scores s2s_run_training(s2s_trainer *tr, const s2s_id_set *train_s, int *evaluated);

#endif
