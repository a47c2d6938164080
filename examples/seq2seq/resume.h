/* seq2seq's command line and its training checkpoints (--checkpoint,
 * --every, --resume) over examples/common/trainckpt.h: which settings a
 * resume inherits and which it must match, the start-up checks of the
 * checkpoint path, and the run's configuration. The loop's state itself
 * (step, data position, generators, running averages) is registered by
 * main.c. */
#ifndef S2S_RESUME_H
#define S2S_RESUME_H

#include <stdint.h>

#include "cli.h"
#include "model.h"
#include "pairs.h"
#include "trainckpt.h"

typedef struct s2s_options {
    const char *train, *test, *save, *load, *log, *write_corpus;
    const char *checkpoint, *resume;
    double valid_frac;
    int pairs, test_pairs;
    uint64_t corpus_seed;
    const char *cell;
    int hidden, embed, layers, feed_context, reverse;
    double dropout;
    int batch;
    double lr;
    const char *optim;
    double clip;
    int epochs, steps, every, skip_nonfinite;
    double seconds;
    int beam, max_len;
    double len_alpha;
    int threads, shards;
    uint64_t seed;
    int translate, min_count, lowercase, max_tokens, show, eval_batch;
    uint64_t fault_step; /* SEQ2SEQ_FAULT_STEP (tests): poison a gradient at this step */
} s2s_options;

#define S2S_MAX_FLAGS 56

/* The parsed command line: argv, and the flag table over an s2s_options. */
typedef struct s2s_cmdline {
    int argc;
    char **argv;
    tg_flag flags[S2S_MAX_FLAGS];
    int n;
} s2s_cmdline;

/* Whether --name was on the command line. */
int s2s_given(const s2s_cmdline *c, const char *name);

/* Settings that --resume takes from the checkpoint: strings made here,
 * pointed to by the options, freed by s2s_inherited_free. */
typedef struct s2s_inherited {
    char *arg[S2S_MAX_FLAGS + 1];
    int n;
} s2s_inherited;

/* --resume FILE: every setting of the run (model, data, batching,
 * optimizer, stopping rule, seed; --train and --test when neither is given)
 * that the command line leaves out is taken from FILE, as if it had been
 * given; explicit ones stay (and are checked against FILE when it is
 * loaded). Exits 1 naming FILE when it is unreadable or not a seq2seq
 * training checkpoint. */
void s2s_inherit_settings(const char *path, s2s_cmdline *c, s2s_inherited *keep);
void s2s_inherited_free(s2s_inherited *keep);

/* --checkpoint FILE, before any work: exits 1 with a message when FILE's
 * directory is missing or not writable (a probe file is made and removed),
 * when FILE is a directory, or when FILE already exists and is not the
 * --resume file (a fresh run would overwrite an earlier run's checkpoint). */

/* Registers the run's configuration, which a resume must match (the model:
 * cell, embed, hidden, layers, dropout, feed-context, reverse; the data:
 * corpus kind, corpus-seed and pairs or lowercase, max-tokens and
 * valid-frac, min-count, both vocabularies, the training pairs' count and
 * hash; batch, shards, optim, seed; a mismatch is reported in this order),
 * and its settings, recorded
 * and inherited but free to change (lr, clip, epochs, steps, seconds,
 * test-pairs, the --train/--test paths). train: the training pairs as
 * trained on. 0, or -1 on out of memory. */
int s2s_register_config(tg_trainckpt *ck, const s2s_options *o, const s2s_config *m,
                        const s2s_vocab *src, const s2s_vocab *tgt, const s2s_pairs *train);

#endif
