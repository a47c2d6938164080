/* Translation with a trained model: greedy decoding and beam search.
 *
 * Both run in no-grad mode, many sentences at once (a batch of rows, K rows
 * per sentence for a beam of K). The decoder state lives on the heap between
 * steps and the tape is reset after every step, so a step's arena use does
 * not grow with the output length. A batch drops the rows of the sentences
 * that have ended once they are an eighth of it; s2s_translate decodes its
 * sentences shortest source first. Neither changes an output where the
 * products run on the weights' panels, on which a row's result does not
 * depend on the rows beside it (BLAS's rounding may: seq2seq's README,
 * --translate).
 *
 * Beam search keeps the K best partial outputs per sentence by total
 * log-probability. A hypothesis that emits <eos> is finished and scored
 * with length normalisation, log p / len^alpha (len counts the <eos>);
 * a sentence stops when its best finished hypothesis scores at least as
 * well as every live one (live: log p / len^alpha over the tokens so far;
 * exact for alpha = 0, where log p only falls as a hypothesis grows), or at
 * max_len; the best finished hypothesis (else the best live one) wins.
 * With K = 1 this is greedy decoding: the same argmax (ties to the lower
 * id) and the same stop.
 *
 * Neither decoder outputs <pad> or <bos>: they are never targets (padding
 * and the first input), though an undertrained model may score them
 * highest. <unk> and <eos> can be chosen. Beam scores stay log p under the
 * softmax over the whole vocabulary (its normaliser from the engine's float
 * softmax: good to about 1e-7). */
#ifndef S2S_DECODE_H
#define S2S_DECODE_H

#include <stddef.h>

#include "model.h"

/* Where a decoder found a row of logits that is not finite (NaN or
 * infinite: a model whose weights overflow float's range): sentence
 * (0-based, in the order given to the call) and token, the output position
 * (1-based) those logits were to choose. */
typedef struct s2s_decode_fault {
    size_t sentence;
    int token;
} s2s_decode_fault;

/* The decoders' answer when a row of logits they read is not finite. Each
 * row is checked as it is scanned for its best ids (no pass of its own):
 * greedy every running row, beam search every live hypothesis's. Decoding
 * stops after that step; out and out_len are then not the translations. */
#define S2S_DECODE_NONFINITE (-3)

typedef struct s2s_decode_options {
    int beam;          /* 1: greedy */
    int max_len;       /* output tokens before giving up (no <eos>) */
    double len_alpha;  /* length normalisation exponent (beam) */
    int batch;         /* sentences per batch */
    int max_tokens;    /* s2s_translate: a batch's sources padded to its longest are at
                        * most this many tokens (0: no bound); a longer one goes alone */
    s2s_decode_fault *fault; /* NULL, or where s2s_translate's S2S_DECODE_NONFINITE
                              * found its logits */
} s2s_decode_options;

void s2s_decode_options_default(s2s_decode_options *o);

/* Translates n sources (src[i], src_len[i] >= 1 ids) on tape t (reset and
 * left in no-grad mode for the call, grad mode restored after). out[i]
 * receives up to max_len ids (never <pad>, <bos> or <eos>), out_len[i]
 * their number.
 * opt->beam == 1 runs the greedy decoder, > 1 beam search.
 * Returns 0, -1 on out of memory, or S2S_DECODE_NONFINITE (where, in
 * *opt->fault when opt->fault is not NULL). */
int s2s_translate(tg_tape *t, const s2s_model *m, const int *const *src, const int *src_len,
                  size_t n, const s2s_decode_options *opt, int *const *out, int *out_len);

/* How many of the n sentences from src_len on s2s_translate decodes in one
 * batch (in the order given): at most opt->batch and opt->max_tokens (>= 1). */
size_t s2s_decode_batch_size(const int *src_len, size_t n, const s2s_decode_options *opt);

/* 1 when decoding m gives each sentence the bits it has alone, whatever
 * the batch: every product of m runs on the panels its decoding tape holds
 * (tg_panels_max_rows over m's narrowest product is above 0); 0 without
 * panels, where BLAS's rounding of a row may depend on the rows beside it. */
int s2s_decode_keeps_rows(const s2s_model *m);

/* The widest beam: s2s_beam clamps K to it (--beam allows 1..S2S_BEAM_MAX). */
#define S2S_BEAM_MAX 16

/* The two decoders, for tests: greedy, and beam search with any K (K = 1
 * included). 0, -1 or S2S_DECODE_NONFINITE as s2s_translate. */
int s2s_greedy(tg_tape *t, const s2s_model *m, const int *const *src, const int *src_len,
               size_t n, int max_len, int batch, int *const *out, int *out_len);
int s2s_beam(tg_tape *t, const s2s_model *m, const int *const *src, const int *src_len,
             size_t n, int K, int max_len, double len_alpha, int batch, int *const *out,
             int *out_len);

/* Greedy decoding (as s2s_greedy, same outputs) that also returns the
 * attention weights of every step: weights[i] (room for max_len *
 * src_len[i] values) receives weight_rows[i] rows of src_len[i] weights
 * over the source in its given order (also with reverse_source), one row
 * per output token and, when the sentence finished, a last row for the
 * step that chose <eos>. Returns 0, -1 on out of memory, -2 when the model
 * has no attention, S2S_DECODE_NONFINITE as s2s_greedy. */
int s2s_greedy_weights(tg_tape *t, const s2s_model *m, const int *const *src,
                       const int *src_len, size_t n, int max_len, int batch, int *const *out,
                       int *out_len, tg_real *const *weights, int *weight_rows);

/* Arena bytes decoding needs for batches of `sentences` sources up to Ts
 * tokens with a beam of `beam` (1: greedy). */
size_t s2s_decode_arena_bytes(const s2s_config *c, int sentences, int beam, int Ts);

#endif
