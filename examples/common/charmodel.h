/* The character-level language model shared by charlm and bench:
 *     ids -> embedding -> stacked recurrent cells -> dropout -> linear -> logits
 * and the loss, softmax cross-entropy over all T*B positions in one matmul.
 *
 * Batches are time-major like every recurrent layer: position (t, b) is
 * row t*B + b, so ids[t*B + b] is stream b's character at step t. */
#ifndef TG_EXAMPLES_CHARMODEL_H
#define TG_EXAMPLES_CHARMODEL_H

#include <stddef.h>

#include "tapegrad.h"
#include "text.h"
#include "tg_checkpoint.h"
#include "tg_layers.h"
#include "tg_optim.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct charmodel_config {
    const tg_cell_kind *kind;
    int vocab;     /* output classes = input ids */
    int embed;     /* embedding width */
    int hidden;    /* units per recurrent layer */
    int layers;    /* 1 .. TG_MAX_LAYERS */
    double dropout; /* between layers and before the output layer, training only */
} charmodel_config;

typedef struct charmodel {
    charmodel_config cfg;
    tg_params *params; /* owned when made by charmodel_init */
    int owns_params;
    tg_embed embed;    /* "embed.weight" */
    tg_rnn_stack rnn;  /* "rnn.l<k>.*" */
    tg_linear head;    /* "head.weight", "head.bias" */
} charmodel;

/* Checks a configuration; 0, or -1 with a message naming the field. */
int charmodel_config_check(const charmodel_config *cfg, char *err, size_t errlen);

/* Makes the model with its own parameters, initialised from r. 0 ok; -1
 * with a message in err (bad config, out of memory). */
int charmodel_init(charmodel *m, const charmodel_config *cfg, tg_rng *r, char *err, size_t errlen);
/* Builds the model over parameters p owned by the caller, e.g. a
 * data-parallel replica (which returns the master's tensors and draws
 * nothing from r). */
int charmodel_build(charmodel *m, tg_params *p, const charmodel_config *cfg, tg_rng *r);
void charmodel_free(charmodel *m);

/* Logits (T*B x vocab) for time-major ids. init: per-layer initial states
 * (NULL: zeros); final: receives per-layer final states (may be NULL).
 * dropout_rng == NULL: no dropout (evaluation). */
tg_tensor *charmodel_logits(tg_tape *t, const charmodel *m, const int *ids, int T, int B,
                            const tg_state *init, tg_state *final, tg_rng *dropout_rng);

/* Mean cross-entropy (nats) of targets given ids, 1 x 1. */
tg_tensor *charmodel_loss(tg_tape *t, const charmodel *m, const int *ids, const int *targets, int T,
                          int B, const tg_state *init, tg_state *final, tg_rng *dropout_rng);

/* Step-arena bytes that a training step (forward + backward, dropout on)
 * of T x B needs, with a safety margin: measured by one probe step on a
 * throwaway model of this configuration (tgx_arena_measure in trainrun.h:
 * 0 or TGX_ARENA_TOO_BIG when there is no size to give, tgx_arena_problem
 * says why). Inference (no-grad) needs less. */
size_t charmodel_arena_bytes(const charmodel_config *cfg, int T, int B);

/* Continues a text: feeds prime (n_prime >= 1 ids) through the model, then
 * draws n ids one at a time at the given temperature (<= 0: greedy) into
 * out. Uses its own tape and state; deterministic for a given r.
 * 0 ok; -1 out of memory; CHARMODEL_NONFINITE when the logits of a draw
 * were NaN or infinite (a model whose weights overflow float's range):
 * out[i] is -1 from that draw on. */
#define CHARMODEL_NONFINITE (-2)
int charmodel_sample(const charmodel *m, const int *prime, int n_prime, int n, double temperature,
                     tg_rng *r, int *out);

/* ------------------------------------------------------------------ checkpoints */

/* Metadata keys of a char-model checkpoint (values are decimal strings, the
 * cell's name, and the vocabulary in tg_vocab_format's form). */
#define CHARMODEL_KEY_FORMAT "charmodel.format" /* "1" */
#define CHARMODEL_KEY_CELL "charmodel.cell"
#define CHARMODEL_KEY_EMBED "charmodel.embed"
#define CHARMODEL_KEY_HIDDEN "charmodel.hidden"
#define CHARMODEL_KEY_LAYERS "charmodel.layers"
#define CHARMODEL_KEY_DROPOUT "charmodel.dropout"
#define CHARMODEL_KEY_VOCAB "charmodel.vocab"

/* Saves the parameters, configuration and vocabulary (v->size must equal
 * the model's vocab), and opt's state when opt != NULL, atomically: a
 * failure leaves an existing file as it was. extra: more metadata (may be
 * NULL). 0 ok; -1 with a message naming the file. */
int charmodel_save(const char *path, const charmodel *m, const tg_vocab *v, tg_optim *opt,
                   const tg_ckpt_meta *extra, size_t n_extra, char *err, size_t errlen);

/* Reads the configuration and vocabulary stored in an open checkpoint,
 * checking every field (name, presence, range, vocabulary size against the
 * head's shape). 0 ok; -1 with "PATH: metadata 'KEY': reason". */
int charmodel_read_config(const tg_checkpoint *c, const char *path, charmodel_config *cfg,
                          tg_vocab *v, char *err, size_t errlen);

/* open + read_config + init + load parameters + close: m and v are made
 * from the file. 0 ok; -1 with a message (nothing to free then). */
int charmodel_load(const char *path, charmodel *m, tg_vocab *v, char *err, size_t errlen);

#ifdef __cplusplus
}
#endif
#endif
