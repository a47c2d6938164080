/* seq2seq's command line and its training checkpoints (--checkpoint,
 * --every, --resume) over examples/common/trainckpt.h: which settings a
 * resume inherits and which it must match, and the run's configuration.
 * The loop's state itself (step, data position, generators, running
 * averages) is registered by main.c. */
#ifndef S2S_RESUME_H
#define S2S_RESUME_H

#include <stdint.h>

#include "cli.h"
#include "model.h"
#include "pairs.h"
#include "pieces.h"
#include "trainckpt.h"

typedef struct s2s_options {
    const char *train, *test, *save, *load, *log, *write_corpus;
    const char *checkpoint, *resume;
    /* PyTorch interchange (torch_s2s.h): --import-torch FILE is read as
     * --load FILE is (o->load points to it too); --export-torch FILE */
    const char *import_torch, *export_torch;
    double valid_frac;
    int pairs, test_pairs;
    uint64_t corpus_seed;
    const char *cell;
    int hidden, embed, layers, feed_context, reverse;
    const char *attention; /* none, dot, general, mlp */
    int bidirectional;
    const char *attention_map; /* SVG of the --show (or --translate) sentences' attention */
    double dropout;
    double label_smoothing; /* of the training loss's targets */
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
    int subwords;   /* pieces per side (0: word vocabularies); -1 until resolved */
    int subword_sample; /* training pairs the pieces are learned from (0: all) */
    int eval_every; /* steps between evaluations (0: after each epoch only) */
    uint64_t fault_step; /* SEQ2SEQ_FAULT_STEP (tests): poison a gradient at this step */
} s2s_options;

/* --resume FILE: every setting of the run (model, data, batching,
 * optimizer, stopping rule, seed; --train and --test when neither is given)
 * that the command line leaves out is taken from FILE, as if it had been
 * given; explicit ones stay (and are checked against FILE when it is
 * loaded). Exits 1 naming FILE when it is unreadable or not a seq2seq
 * training checkpoint. */
void s2s_inherit_settings(const char *path, const tg_cmdline *c, tg_inherited *keep);

/* Registers the run's configuration, which a resume must match (the model:
 * cell, embed, hidden, layers, dropout, feed-context, reverse, attention and
 * bidirectional (these two only when set, so older checkpoints match); the data:
 * corpus kind, corpus-seed and pairs or lowercase, max-tokens and
 * valid-frac, min-count, both vocabularies, the training pairs' count and
 * hash; batch, shards, optim, seed; a mismatch is reported in this order),
 * with --subwords the piece models after the vocabularies; and its
 * settings, recorded and inherited but free to change (lr, clip,
 * label-smoothing, epochs, steps, seconds, test-pairs, the --train/--test
 * paths). train: the training pairs as trained on. 0, or -1 on out of
 * memory. */
int s2s_register_config(tg_trainckpt *ck, const s2s_options *o, const s2s_config *m,
                        const s2s_vocab *src, const s2s_vocab *tgt, const s2s_pairs *train,
                        const s2s_pieces *pc);

/* The piece models of --resume's checkpoint FILE (configs src-pieces and
 * tgt-pieces, subword.h's checked text form), so a resume never learns them
 * again. 0, or -1 with "FILE: config 'src-pieces': problem". */
int s2s_resume_pieces(const char *path, s2s_pieces *p, char *err, size_t errlen);

#endif
