/* rowseq's training checkpoints (--checkpoint, --every, --resume) over
 * examples/common/trainckpt.h: which settings a resume inherits and which it
 * must match, and the run's configuration. The loop's state itself (step,
 * data position, generators, running sums) is registered by main.c. The
 * conventions are charlm's (examples/charlm/resume.c): same flags, same
 * messages. */
#include <stdio.h>
#include <string.h>

#include "rowseq.h"

#define PROG "rowseq"

/* ------------------------------------------------------------------ inheritance */

/* A resume must match these: they fix the model's shape, what the data
 * position points at and what the optimizer state means. (Stored as
 * config.<flag>; the image size and the training data are checked too.) */
static const char *const config_flags[] = {"cell",  "hidden", "layers", "dropout",
                                           "batch", "shards", "optim",  "momentum", NULL};
/* Recorded and inherited, but a resume may change them. limit-train picks
 * the training images, which config 'train-data' then checks. */
static const char *const setting_flags[] = {"lr",      "weight-decay", "clip",
                                            "schedule", "epochs",      "steps",
                                            "seconds",  "seed",        "limit-train",
                                            "limit-test", NULL};
/* The data folder: in checkpoints written since it is recorded. */
static const char *const data_flag[] = {"data", NULL};

void rowseq_inherit_settings(const char *path, const tg_cmdline *cl, tg_inherited *keep)
{
    const tg_resume_flags which = {config_flags, setting_flags, NULL, data_flag, 1};
    tg_trainckpt_inherit(PROG, path, &which, cl, keep);
}

/* ------------------------------------------------------------------ configuration */

/* FNV-1a over the image size, every pixel and every label: another data set
 * (or the same files edited) with the same number of images would put the
 * data position somewhere else. About 0.1 s for Fashion-MNIST's 47 MB. */
static uint64_t data_hash(const rowseq_data *d)
{
    uint64_t h = tg_fnv1a_u32(tg_fnv1a_u32(TG_FNV1A_BASIS, (uint32_t)d->rows), (uint32_t)d->cols);
    h = tg_fnv1a(h, d->pixels, (size_t)d->count * (size_t)d->rows * (size_t)d->cols);
    return tg_fnv1a(h, d->labels, (size_t)d->count);
}

void rowseq_data_identity(const rowseq_data *d, char *out, size_t cap)
{
    snprintf(out, cap, "%dx%dx%d fnv1a %016llx", d->count, d->rows, d->cols,
             (unsigned long long)data_hash(d));
}

/* As given (lr 0 and weight-decay -1 mean "the optimizer's default"), so
 * that they parse back as flags. */
static int register_settings(tg_trainckpt *ck, const rowseq_options *o)
{
    char seed[32];
    snprintf(seed, sizeof seed, "%llu", (unsigned long long)o->seed);
    return tg_trainckpt_info_double(ck, "lr", o->lr) ||
           tg_trainckpt_info_double(ck, "weight-decay", o->weight_decay) ||
           tg_trainckpt_info_double(ck, "clip", o->clip) ||
           tg_trainckpt_info(ck, "schedule", o->schedule) ||
           tg_trainckpt_info_int(ck, "epochs", o->epochs) ||
           tg_trainckpt_info_int(ck, "steps", o->steps) ||
           tg_trainckpt_info_double(ck, "seconds", o->seconds) ||
           tg_trainckpt_info(ck, "seed", seed) ||
           tg_trainckpt_info_int(ck, "limit-train", o->limit_train) ||
           tg_trainckpt_info_int(ck, "limit-test", o->limit_test) ||
           tg_trainckpt_info(ck, "data", o->data);
}

int rowseq_register_config(tg_trainckpt *ck, const rowseq_options *o,
                           const rowseq_trainer_config *cfg, const rowseq_data *train)
{
    char data[80];
    rowseq_data_identity(train, data, sizeof data);
    /* in the order a mismatch is reported: the model, its data, the optimizer */
    int bad = tg_trainckpt_config(ck, "cell", cfg->kind->name) ||
              tg_trainckpt_config_int(ck, "hidden", cfg->hidden) ||
              tg_trainckpt_config_int(ck, "layers", cfg->layers) ||
              tg_trainckpt_config_double(ck, "dropout", cfg->dropout) ||
              tg_trainckpt_config_int(ck, "rows", cfg->steps) ||
              tg_trainckpt_config_int(ck, "cols", cfg->in) ||
              tg_trainckpt_config(ck, "train-data", data) ||
              tg_trainckpt_config_int(ck, "batch", cfg->batch) ||
              tg_trainckpt_config_int(ck, "shards", cfg->shards) ||
              tg_trainckpt_config(ck, "optim", o->optim) ||
              tg_trainckpt_config_double(ck, "momentum", cfg->optim.momentum) ||
              register_settings(ck, o);
    return bad ? -1 : 0;
}
