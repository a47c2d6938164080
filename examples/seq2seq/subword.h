/* Subword units for seq2seq (issue 13): a C interface to SentencePiece
 * (https://github.com/google/sentencepiece, Debian libsentencepiece-dev),
 * whose own API is C++ only. The shim (subword.cc) catches every C++
 * exception: each function returns an error code and a one-line message,
 * never aborts.
 *
 * Choices, and why:
 *  - One model per side (source and target), not shared: the program must
 *    handle pairs like English->Korean where the two sides share no
 *    characters; a shared model would split its budget of pieces between two
 *    scripts and give each side fewer useful pieces. (The PyTorch anchor,
 *    ../shared/anchors/torch_seq2seq_budget.py --spm N, does the same.)
 *  - Unigram language model (SentencePiece's default, as in the anchor):
 *    as good as BPE for translation at these sizes, and it trains fast.
 *  - character_coverage = 1.0: every character of the training text gets a
 *    piece, so Hangul syllables and accented Latin letters are never <unk>.
 *  - hard_vocab_limit = false: N is an upper bound; a small corpus that
 *    cannot fill N pieces gets fewer rather than an error.
 *  - Deterministic: one thread, a fixed random seed, sentences in the order
 *    given. The same sentences give byte-identical models.
 *  - No files: training reads the sentences from memory and returns the
 *    model as bytes (SentencePiece's serialized ModelProto).
 *  - Ids match the program's specials: <pad>=0, <unk>=1, <bos>=2, <eos>=3
 *    (S2S_PAD.. in pairs.h), pieces from 4 on. A model whose specials sit
 *    elsewhere (trained outside tapegrad) is refused by the loaders.
 *  - The text is normalized with SentencePiece's default "nmt_nfkc" rule
 *    (NFKC plus the usual NMT clean-ups); decoding gives back plain text with
 *    the original spaces (pieces carry U+2581 for a space).
 *
 * Storage inside model files and checkpoints: s2s_subword_to_text writes
 * a self-checking text form, "spm1:<8 hex crc32>:<bytes>:<base64 of the
 * ModelProto>", meant for a safetensors metadata value (strings only, ASCII
 * here), e.g. keys "s2s.src_pieces" and "s2s.tgt_pieces". s2s_subword_from_text
 * refuses a damaged value (bad prefix, bad base64, length or crc32 mismatch)
 * before SentencePiece sees the bytes, then refuses a ModelProto SentencePiece
 * cannot load or whose specials are not ours. The caller then checks the
 * piece count against the model's embedding size (s2s_subword_check_size). */
#ifndef S2S_SUBWORD_H
#define S2S_SUBWORD_H

#include <stddef.h>

#ifdef __cplusplus
extern "C" {
#endif

typedef struct s2s_subword s2s_subword; /* a loaded piece model */

/* Fewest pieces a model may have: the 4 specials and a few characters. */
#define S2S_SUBWORD_MIN 8
/* Most pieces asked for (SentencePiece itself accepts more; no need here). */
#define S2S_SUBWORD_MAX 1000000

/* Trains a unigram model of at most `pieces` pieces (S2S_SUBWORD_MIN..MAX,
 * specials included) on sentences[0..n) (UTF-8 text, one sentence each; no
 * file is written). NULL with a message on failure (bad size, no
 * sentences, SentencePiece's own error). Prints nothing. */
s2s_subword *s2s_subword_train(const char *const *sentences, size_t n, int pieces, char *err,
                               size_t errlen);

/* Loads a model from the bytes of a serialized ModelProto (label names the
 * source in messages). NULL with a message when SentencePiece refuses the
 * bytes or the specials are not <pad>=0 <unk>=1 <bos>=2 <eos>=3. */
s2s_subword *s2s_subword_load(const void *bytes, size_t len, const char *label, char *err,
                              size_t errlen);

/* The model's serialized ModelProto, malloc'd (caller frees) in *bytes.
 * 0, or -1 with a message. */
int s2s_subword_serialize(const s2s_subword *sw, void **bytes, size_t *len, char *err,
                          size_t errlen);

/* The checked text form (see the top of this file), malloc'd; NULL with a
 * message when out of memory. */
char *s2s_subword_to_text(const s2s_subword *sw, char *err, size_t errlen);
/* Inverse of s2s_subword_to_text: NULL with a message naming label and the
 * problem. */
s2s_subword *s2s_subword_from_text(const char *text, const char *label, char *err,
                                   size_t errlen);

void s2s_subword_free(s2s_subword *sw);

/* Number of pieces, specials included (the embedding / output size). */
int s2s_subword_size(const s2s_subword *sw);
/* 0 when the model has exactly `expected` pieces; -1 with "LABEL: piece
 * model has X pieces but the network expects Y" otherwise. */
int s2s_subword_check_size(const s2s_subword *sw, int expected, const char *label, char *err,
                           size_t errlen);

/* Piece text of id (e.g. "\xe2\x96\x81the"; "<unk>" etc. for specials), or
 * NULL when id is out of range. The string lives as long as sw. */
const char *s2s_subword_piece(const s2s_subword *sw, int id);
/* Id of a piece, or -1 when the model has no such piece. */
int s2s_subword_id(const s2s_subword *sw, const char *piece);

/* Encodes UTF-8 text into piece ids, at most max written to ids (no
 * <bos>/<eos> added; characters the model lacks become <unk>=1). Returns the
 * number of pieces (may exceed max), or -1 with a message. */
int s2s_subword_encode(const s2s_subword *sw, const char *text, int *ids, int max, char *err,
                       size_t errlen);
/* Encodes text into its pieces joined by single spaces (malloc'd), e.g.
 * "\xe2\x96\x81Hel lo" for logs and for a vocabulary built from pieces.
 * NULL with a message. */
char *s2s_subword_encode_pieces(const s2s_subword *sw, const char *text, char *err,
                                size_t errlen);

/* Decodes ids[0..n) to plain text (malloc'd). Specials <pad>, <bos>, <eos>
 * are dropped, <unk> prints as " \xe2\x81\x87 " (SentencePiece's U+2047);
 * ids out of range are an error. NULL with a message. */
char *s2s_subword_decode(const s2s_subword *sw, const int *ids, int n, char *err,
                         size_t errlen);

#ifdef __cplusplus
}
#endif
#endif
