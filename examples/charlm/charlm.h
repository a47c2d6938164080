/* charlm internals: the trainer over B parallel streams of a text, shared by
 * charlm.c (the program), train.c (steps and evaluation) and resume.c
 * (training checkpoints: --checkpoint, --every, --resume). */
#ifndef CHARLM_H
#define CHARLM_H

#include <stddef.h>
#include <stdint.h>

#include "charmodel.h"
#include "cli.h"
#include "text.h"
#include "tg_dist.h"
#include "tg_optim.h"
#include "trainckpt.h"

#define CHARLM_MAX_SHARDS 64
/* The flags a run that needs too much memory is told to lower. */
#define CHARLM_LOWER "--hidden, --layers, --embed, --batch or --seq-len"
/* Memory a character of the text takes while the program holds it: its code
 * point and its id (a text of n bytes has at most n characters). */
#define CHARLM_BYTES_PER_CHAR (sizeof(uint32_t) + sizeof(int))
#define CHARLM_BYTES_PER_CHAR_HOW "8 bytes a character: its code point and its id"

/* B streams over ids[0 .. B*L]: stream b reads ids[b*L + pos + t] and
 * predicts the id after it. Each shard keeps the recurrent state of its
 * streams between windows (truncated BPTT: values carried, history cut). */
typedef struct charlm_streams {
    const int *ids;
    size_t L;   /* inputs per stream */
    uint64_t pos; /* start of the next window in every stream */
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
    tg_dist *dist; /* MPI ranks (charlm_trainer_attach_dist), NULL: one process */
    charlm_shard shard[CHARLM_MAX_SHARDS];
    charlm_streams train;
    /* evaluation: one no-grad tape over the whole batch */
    tg_tape *eval_tape;
    size_t arena_bytes, eval_arena_bytes; /* of each shard's tape, of the evaluation tape */
    int eval_B;
    int *eval_in, *eval_tg;
    charlm_streams valid;
    /* the window being run by tg_workers_run */
    charlm_streams *cur;
    int cur_T, training;
} charlm_trainer;

/* Sets up shards, tapes and stream states. train_ids: n_train ids; valid_ids:
 * n_valid ids (may be 0); trains: 0 when the run only evaluates (a loaded
 * model on a text too short to train on is still evaluated). 0 ok; with a
 * message, -1 when the flags do not fit the text (--shards, --batch x
 * --seq-len, when it trains), -2 when memory does not (a step larger than
 * the arena probe's room, out of memory) or the text cannot train at all
 * (fewer than 2 characters, when it trains). */
int charlm_trainer_init(charlm_trainer *tr, charmodel *m, const int *train_ids, size_t n_train,
                        const int *valid_ids, size_t n_valid, int T, int B, int shards,
                        int threads, uint64_t seed, int trains, char *err, size_t errlen);
void charlm_trainer_free(charlm_trainer *tr);
/* Runs this rank's shards of every window and reduces across ranks
 * (tg_dist_run); -1 with the reason in err (the size does not divide
 * --shards). */
int charlm_trainer_attach_dist(charlm_trainer *tr, tg_dist *d, char *err, size_t errlen);

/* Forward + backward of the next window of every stream; leaves the batch
 * gradient in the master's parameters (zeroed first) and returns the mean
 * loss in nats. Wraps to the start of the text (zero state) at the end. */
double charlm_train_window(charlm_trainer *tr);

/* Mean loss (nats per character) over the whole validation split, from a
 * zero state, without dropout; NAN when there is no validation split. */
double charlm_evaluate(charlm_trainer *tr);

/* Registers with a training checkpoint everything the trainer carries from
 * one step to the next: the data position ("u64.data_pos"), each shard's
 * dropout generator ("rng.dropout.<s>") and carried recurrent state
 * ("state.tbptt.<s>.h", ".c"). 0, or -1 on out of memory. */
int charlm_trainer_register(charlm_trainer *tr, tg_trainckpt *ck);
/* With ranks, collective (tgx_run_hooks.before_checkpoint, ctx: the
 * trainer): each shard's dropout generator and carried recurrent state, as
 * the rank running the shard holds them, copied to every rank, so that the
 * checkpoint rank 0 writes holds every shard's. No-op without ranks. */
void charlm_trainer_share_state(void *trainer);
/* After a load: checks what the file could not (the data position lies
 * inside the text). 0, or -1 with a message naming path. */
int charlm_trainer_check_loaded(const charlm_trainer *tr, const char *path, char *err,
                                size_t errlen);
/* After a skipped step: zeroes the carried state of every shard whose state
 * holds a NaN or infinity (its streams go on from a zero state, as at the
 * start of the text).
 * Returns the number of shards reset. */
int charlm_trainer_reset_nonfinite(charlm_trainer *tr);

/* ------------------------------------------------------------------ the program */

typedef struct charlm_options {
    const char *text, *cell, *optim, *schedule, *save, *load, *prime, *log;
    const char *checkpoint, *resume;
    const char *export_torch, *import_torch; /* PyTorch interchange (torch_io.h) */
    int hidden, embed, layers, seq_len, batch, steps, threads, shards, sample, eval_every, warmup;
    int every, skip_nonfinite;
    double dropout, lr, clip, seconds, valid_frac, temperature, weight_decay, momentum;
    uint64_t seed;
    uint64_t fault_step; /* CHARLM_FAULT_STEP (tests): poison a gradient at this step */
} charlm_options;

/* Parses argv into o (defaults, flags; --resume's settings inherited
 * into inh; defaults that follow --optim; --shards resolved; with --load
 * and no training flag, no training); exits 2 on a bad command line. */
void charlm_parse_options(int argc, char **argv, charlm_options *o, tg_cmdline *c,
                          tg_inherited *inh);
/* The run's checkpoint and output files. */
tg_run_files charlm_run_files(const charlm_options *o);

/* --resume FILE: every setting of the run (model shape, data layout,
 * optimizer, schedule, stopping, seed, and the --text it was trained on)
 * that the command line leaves out is taken from FILE, as if it had been
 * given; explicit ones stay (and are checked against FILE when it is
 * loaded). Exits 1 naming FILE when it is unreadable or not a charlm
 * training checkpoint. */
void charlm_inherit_settings(const char *path, const tg_cmdline *c, tg_inherited *keep);

/* When --resume FILE gave the text (no --text): exits 1 naming FILE, the
 * text and what differs when the text is no longer the run's (another
 * vocabulary, or the same vocabulary in another text). v: the vocabulary
 * built from the text as read now; cps: the whole text. */
void charlm_check_inherited_text(const char *path, const char *text, const tg_vocab *v,
                                 const uint32_t *cps, size_t n);

/* Registers the run's configuration, which a resume must match (the
 * model's cell, embed, hidden, layers, dropout and vocab; the text, as its
 * length and hash; seq-len, batch, shards, valid-frac, optim, momentum),
 * and its settings, recorded and inherited but free to change (lr,
 * weight-decay, clip, schedule, warmup, steps, seconds, seed; the --text
 * path when given). cps: the whole text. 0, or -1 on out of memory. */
int charlm_register_config(tg_trainckpt *ck, const charlm_options *o,
                           const charmodel_config *m, const tg_vocab *v, const uint32_t *cps,
                           size_t n);

/* ------------------------------------------------------------------ the model (model.c) */

/* A new model over the vocabulary of the text's code points cps[0..n);
 * a configuration too large for the memory is refused first (exit 1). */
void charlm_new_model(const charlm_options *o, const uint32_t *cps, size_t n, charmodel *m,
                      tg_vocab *v);
/* Model and vocabulary from --load (or --import-torch), checked against
 * explicit model flags (exit 2 on a contradiction); *ck: the --load file,
 * for the optimizer state (NULL for --import-torch). */
void charlm_load_model(const charlm_options *o, const tg_cmdline *cl, charmodel *m, tg_vocab *v,
                       tg_checkpoint **ck);
/* --export-torch of a cell without a PyTorch module: refused before any
 * training (exit 2). */
void charlm_check_exportable(const charlm_options *o, const charmodel *m);
/* The --optim optimizer over m's parameters, with ck's state when it has
 * the same kind (else a note, and a fresh start). */
tg_optim *charlm_make_optim(const charlm_options *o, const charmodel *m, tg_checkpoint *ck);

#endif
