/* Saving and loading a seq2seq model: a safetensors checkpoint holding the
 * parameters (and the optimizer state), with the model's shape, tokenizer
 * options and both vocabularies in the metadata, so --load needs nothing
 * else. Keys: s2s.cell, s2s.embed, s2s.hidden, s2s.layers, s2s.dropout,
 * s2s.feed_context, s2s.reverse_source, s2s.lowercase, s2s.split_punct,
 * s2s.attention and s2s.bidirectional (optional: missing reads as none, 0),
 * s2s.src_vocab and s2s.tgt_vocab (words from id 4 on, '\n'-separated; in
 * subword mode the pieces), s2s.src_pieces and s2s.tgt_pieces (subword mode
 * only: the SentencePiece models, see pieces.h). */
#ifndef S2S_MODEL_IO_H
#define S2S_MODEL_IO_H

#include <stddef.h>

#include "model.h"
#include "pairs.h"
#include "pieces.h"
#include "tg_checkpoint.h"
#include "tg_optim.h"

/* Atomic write (the previous file survives a failure). opt may be NULL.
 * 0, or -1 with a message in err. */
int s2s_save(const char *path, const s2s_model *m, tg_optim *opt, const s2s_vocab *src,
             const s2s_vocab *tgt, const s2s_tokenize_options *tok, char *err, size_t errlen);

/* The same, with the piece models of a subword model (pieces NULL or
 * empty: word mode) in s2s.src_pieces and s2s.tgt_pieces (subword.h's
 * checked text form), which s2s_load_pieces (pieces.h) reads back, and
 * extra[0..n_extra) (at most S2S_META_EXTRA) as more metadata. */
#define S2S_META_EXTRA 3
int s2s_save_with_pieces(const char *path, const s2s_model *m, tg_optim *opt,
                         const s2s_vocab *src, const s2s_vocab *tgt,
                         const s2s_tokenize_options *tok, const s2s_pieces *pieces,
                         const tg_ckpt_meta *extra, size_t n_extra, char *err, size_t errlen);

/* The metadata above for a model (the piece keys only with pieces on), for
 * s2s_save_with_pieces and writers of other forms (torch_s2s.c): kv[0..n)
 * point into the struct, valid until s2s_meta_free. 0, or -1 with a
 * message (nothing to free then). */
#define S2S_META_MAX 16
typedef struct s2s_meta {
    tg_ckpt_meta kv[S2S_META_MAX];
    size_t n;
    char num[9][32];
    char *sv, *tv, *sp, *tp;
} s2s_meta;
int s2s_meta_make(s2s_meta *mm, const s2s_config *c, const s2s_vocab *src, const s2s_vocab *tgt,
                  const s2s_tokenize_options *tok, const s2s_pieces *pieces, const char *path,
                  char *err, size_t errlen);
void s2s_meta_free(s2s_meta *mm);

/* s2s_load's first half on an open file ck (named path in messages): the
 * configuration and vocabularies from the metadata, and m built from them
 * with initial values, for readers of other forms (torch_s2s.c) to fill.
 * 0, or -1 with a message; on failure nothing needs freeing. */
int s2s_build_from_meta(const tg_checkpoint *ck, const char *path, s2s_model *m,
                        s2s_vocab *src, s2s_vocab *tgt, s2s_tokenize_options *tok, char *err,
                        size_t errlen);

/* Reads the metadata, builds m (initialised, then overwritten by the file's
 * values) and both vocabularies. 0, or -1 with a message naming the file
 * and the key or tensor. On failure nothing needs freeing. */
int s2s_load(const char *path, s2s_model *m, s2s_vocab *src, s2s_vocab *tgt,
             s2s_tokenize_options *tok, char *err, size_t errlen);

/* Restores the optimizer state saved with the model (same kind and size);
 * 0, or -1 with a message. */
int s2s_load_optim(const char *path, tg_optim *opt, char *err, size_t errlen);

#endif
