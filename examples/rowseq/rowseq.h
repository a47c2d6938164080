/* rowseq program internals shared by main.c (flags, data, training loop),
 * modelfile.c (--save, --load) and resume.c (training checkpoints:
 * --checkpoint, --every, --resume). */
#ifndef ROWSEQ_H
#define ROWSEQ_H

#include <stddef.h>
#include <stdint.h>

#include "cli.h"
#include "idx.h"
#include "rowseq_model.h"
#include "tg_checkpoint.h"
#include "trainckpt.h"

typedef struct rowseq_options {
    const char *data, *preset, *cell, *optim, *schedule, *save, *load, *log;
    const char *checkpoint, *resume;
    const char *export_torch, *import_torch; /* PyTorch interchange (torch_io.h) */
    int hidden, layers, batch, eval_batch, epochs, steps, threads, shards, limit_train,
        limit_test;
    int every, skip_nonfinite;
    double lr, momentum, weight_decay, clip, dropout, seconds;
    uint64_t seed;
    uint64_t fault_step; /* ROWSEQ_FAULT_STEP (tests): poison a gradient at this step */
} rowseq_options;

/* Parses argv into o (defaults, --preset, flags; --resume's settings
 * inherited into inh; --shards resolved); exits 2 on a bad command line. */
void rowseq_parse_options(int argc, char **argv, rowseq_options *o, tg_cmdline *c,
                          tg_inherited *inh);
/* The run's checkpoint and output files. */
tg_run_files rowseq_run_files(const rowseq_options *o);
/* The optimizer of --optim, --lr, --momentum, --weight-decay. */
tg_optim_config rowseq_optim_config(const rowseq_options *o);
/* The --schedule over --epochs, and its rate at a step (the step schedule
 * halves from the second half of the epochs on). */
tg_lr_schedule rowseq_lr_schedule(const rowseq_options *o, double base, uint64_t steps_per_epoch);
double rowseq_lr_for_step(const rowseq_options *o, const tg_lr_schedule *s, uint64_t step,
                          uint64_t steps_per_epoch);

/* --resume FILE: every setting of the run (model shape, batch, shards,
 * optimizer, schedule, stopping rules, data folder and limits, seed) that
 * the command line leaves out is taken from FILE, as if it had been given;
 * explicit ones stay (and those that must match are checked when FILE is
 * loaded). Exits 1 naming FILE when it is unreadable or not a rowseq
 * training checkpoint; 1 too when a stored setting does not parse. */
void rowseq_inherit_settings(const char *path, const tg_cmdline *c, tg_inherited *keep);

/* Registers what a resume must match (cell, hidden, layers, dropout, the
 * image size, the training images as count, size and FNV-1a hash, batch,
 * shards, optim, momentum) and the settings it inherits but may change (lr,
 * weight-decay, clip, schedule, epochs, steps, seconds, seed, limit-train,
 * limit-test, data). 0, or -1 on out of memory. */
int rowseq_register_config(tg_trainckpt *ck, const rowseq_options *o,
                           const rowseq_trainer_config *cfg, const rowseq_data *train);

/* ------------------------------------------------------------------ model files (modelfile.c) */

/* --save FILE: weights, optimizer state, the shuffling generator and
 * "rowseq.*" metadata (cell, hidden, layers, steps, in, epochs), atomically.
 * Exits 1 with a message on failure (the previous file stays). */
void rowseq_save_model(const char *path, rowseq_trainer *tr, uint64_t epochs_done);
/* --load: opens o->load (a --save file, or a rowseq --checkpoint file) and
 * sets o's cell, hidden and layers from it; *epochs_done and *training
 * (whether it is a training checkpoint) are set. Exits 1 on a bad file, 2
 * when a model flag given in cl contradicts it. */
tg_checkpoint *rowseq_open_model(rowseq_options *o, const tg_cmdline *cl, uint64_t *epochs_done,
                                 int *training);
/* Exits 2 when --cell, --hidden or --layers, given in cl, contradicts the
 * model in file (cell, hidden, layers). */
void rowseq_check_model_flags(const rowseq_options *o, const tg_cmdline *cl, const char *cell,
                              int hidden, int layers, const char *file);
/* Exits 1 unless the model in c reads images of rows x cols. */
void rowseq_check_model_shape(const rowseq_options *o, const tg_checkpoint *c, int training,
                              int rows, int cols);
/* Copies the weights (all or nothing), the optimizer state when its kind
 * matches (else says so on stderr), and a --save file's shuffling
 * generator. Exits 1 on a bad file. */
void rowseq_restore_model(const rowseq_options *o, tg_checkpoint *c, rowseq_trainer *tr);

/* ------------------------------------------------------------------ data (data.c) */

#define ROWSEQ_CLASSES 10

/* A split's IDX files as read, and the images and labels the trainer reads. */
typedef struct rowseq_split {
    idx_images im;
    idx_labels lb;
    rowseq_data d;
} rowseq_split;

/* The files a --data folder may hold: each split's images and labels,
 * plain or .gz (ROWSEQ_DATA_FILES paths of up to ROWSEQ_PATH_BYTES, cut
 * short past it: names to compare, not to open). */
#define ROWSEQ_DATA_FILES 8
#define ROWSEQ_PATH_BYTES 4096
void rowseq_data_files(const char *dir, char paths[ROWSEQ_DATA_FILES][ROWSEQ_PATH_BYTES]);

/* Reads DIR/PREFIX-images-idx3-ubyte and -labels-idx1-ubyte (or their .gz),
 * checks they pair, and keeps the first limit images (all when limit <= 0).
 * Exits 1 naming the file; when resume is not NULL (the folder came from
 * --resume's checkpoint), the message names the checkpoint too; and,
 * before reading, when reading the images would not fit in memory beside
 * the held bytes other splits hold. */
void rowseq_load_split(const char *dir, const char *prefix, int limit, const char *resume,
                       size_t held, rowseq_split *s);
/* The bytes a split's images and labels hold. */
size_t rowseq_split_bytes(const rowseq_split *s);
void rowseq_split_free(rowseq_split *s);
/* The confusion matrix (ROWSEQ_CLASSES x ROWSEQ_CLASSES counts, rows the
 * true class) with each class's recall, on stdout. */
void rowseq_print_confusion(const long *cm);

/* ------------------------------------------------------------------ training checkpoints (resume.c) */

/* "COUNTxROWSxCOLS fnv1a HASH" of the images and labels of d, into out. */
void rowseq_data_identity(const rowseq_data *d, char *out, size_t cap);

#endif
