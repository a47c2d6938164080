/* The seq2seq program's subword mode (issue 13) over the SentencePiece shim
 * (subword.h): one piece model per side, the vocabularies they give, pairs
 * turned into pieces, and output ids turned back into plain text.
 *
 * Why one model per side: see subword.h (pairs like English->Korean share
 * no characters; a shared model would split its budget between scripts).
 *
 * In subword mode the pairs are read as raw text (white space squeezed, no
 * punctuation splitting: SentencePiece sees the sentence as written) and
 * each side becomes its pieces joined by single spaces. The vocabulary of a
 * side is its piece model's pieces in id order (pieces hold no space:
 * SentencePiece writes U+2581 for one), so vocabulary id == piece id and
 * the rest of the program (vocabulary encoding, model files, checkpoints)
 * works unchanged on pieces. Output ids go back to text through the piece
 * model (detokenized); in word mode the output is the words joined by
 * spaces. Library code: errors come back as -1 with a message. */
#ifndef S2S_PIECES_H
#define S2S_PIECES_H

#include <stddef.h>

#include "pairs.h"
#include "subword.h"

typedef struct s2s_pieces {
    s2s_subword *src, *tgt; /* both NULL: word vocabularies */
} s2s_pieces;

/* Default --subwords for a --train TSV: the anchor's and the common size. */
#define S2S_SUBWORDS_DEFAULT 8000
/* Default --subword-sample: the training pairs the pieces are learned
 * from. SentencePiece's unigram trainer holds and iterates over every
 * sentence it is given (S2S_PIECES_BYTES_PER_CHAR a character); a million
 * bounds that, and a larger corpus adds few pieces worth having (Marian
 * samples 2 million lines by default). */
#define S2S_SUBWORD_SAMPLE_DEFAULT 1000000
#define S2S_SUBWORD_SAMPLE_MAX 1000000000
/* The seed of that sample: the same pairs whatever --seed says, so that the
 * pieces of a corpus do not change with the model's initialisation. */
#define S2S_SUBWORD_SAMPLE_SEED 1
/* Default longest side and output in pieces (S2S_MAX_TOKENS for words). */
#define S2S_MAX_PIECES 200
/* The bytes a piece takes at most, for a bound on the text that N pieces
 * can come from: SentencePiece's pieces are at most 16 characters (its
 * max_sentencepiece_length), 64 bytes of UTF-8. A text of more than N x
 * this many bytes is not given to SentencePiece when at most N pieces are
 * wanted: its encoder merges a run of characters the model does not know
 * into one piece in time quadratic in the run (a line of a million such
 * characters: 34 s). Only such runs, or long runs of spaces, fit more text
 * in a piece. */
#define S2S_PIECE_MAX_BYTES 64

/* Memory SentencePiece's unigram trainer holds for a character of the side
 * it learns from (its suffix array, the sentences as code points, the seed
 * pieces; measured on 25 000-200 000 pairs, 1.5-13 million characters a
 * side: 25-28 bytes). */
#define S2S_PIECES_BYTES_PER_CHAR 28
/* About the most learning the pieces of train from `sample` pairs (as
 * s2s_pieces_train takes them) holds at once: S2S_PIECES_BYTES_PER_CHAR a
 * character of the larger side of the sample (the sides are learned one
 * after the other), the sample's share of the corpus's characters. */
size_t s2s_pieces_train_bytes(const s2s_pairs *train, size_t sample);

/* Learns a model of at most n pieces per side on the raw text of train
 * (from `sample` of its pairs, chosen at random with a fixed seed, when
 * 0 < sample < train->n). A
 * text too small for n gets fewer pieces (SentencePiece's soft limit); an
 * n below the text's count of distinct characters is raised to it. Either
 * way a one-line note says so (empty when both sides got n). 0, or -1 with
 * a message. */
int s2s_pieces_train(s2s_pieces *p, const s2s_pairs *train, int n, size_t sample, char *note,
                     size_t notelen, char *err, size_t errlen);
void s2s_pieces_free(s2s_pieces *p);
static inline int s2s_pieces_on(const s2s_pieces *p) { return p->src != NULL; }

/* The vocabulary of a piece model: its pieces 4.. in id order. Returns as
 * s2s_vocab_from_words (1: a piece repeated, empty or holding white space). */
int s2s_pieces_vocab(const s2s_subword *sw, s2s_vocab *v);
/* 0 when v is exactly sw's pieces; -1 with "LABEL: ..." naming the first
 * difference (another model's pieces, another size). */
int s2s_pieces_check_vocab(const s2s_subword *sw, const s2s_vocab *v, const char *label,
                           char *err, size_t errlen);

/* Turns raw pairs into piece pairs (out, initialised here): a pair with a
 * side of more than max_tokens pieces, or of more than max_tokens x
 * S2S_PIECE_MAX_BYTES bytes (not encoded), is dropped from both raw (which is
 * compacted in place, so raw[i] stays the text of out[i]) and out, and
 * counted in *skipped. A side of no pieces (only characters SentencePiece's
 * normalization removes: zero-width, control, separators) is refused as the
 * reader refuses an empty side: "NAME:LINE: ...". 0, or -1 with a message. */
int s2s_pieces_encode_pairs(const s2s_pieces *p, const char *name, s2s_pairs *raw, s2s_pairs *out,
                            int max_tokens, size_t *skipped, char *err, size_t errlen);

/* Output ids as text (malloc'd): decoded by the target piece model, or
 * the words of vt joined by spaces in word mode. NULL when out of memory
 * (or an id out of range). */
char *s2s_pieces_output_text(const s2s_pieces *p, const s2s_vocab *vt, const int *ids, int n);

/* Reads the piece models stored in the metadata of a saved model
 * (s2s.src_pieces, s2s.tgt_pieces: subword.h's text form) and checks them
 * against the vocabularies (and tokenizer) loaded from it. None stored: p
 * stays empty (a word model), unless the model is a subword model by the
 * rest of its metadata (no punctuation splitting, U+2581 in a vocabulary),
 * which is refused. 0, or -1 with "PATH: metadata 's2s.src_pieces': problem". */
int s2s_load_pieces(const char *path, const s2s_vocab *vs, const s2s_vocab *vt,
                    const s2s_tokenize_options *tok, s2s_pieces *p, char *err, size_t errlen);
/* The piece models in a safetensors file's metadata under keys
 * prefix+src_name and prefix+tgt_name (either absent: none; one without the
 * other is an error), with messages "PATH: KIND 'NAME': problem", e.g.
 * ("run.tck", "config.", "config", "src-pieces", "tgt-pieces"). No check
 * against vocabularies. 0 (p empty when none are stored), or -1. */
int s2s_pieces_from_file(const char *path, const char *prefix, const char *kind,
                         const char *src_name, const char *tgt_name, s2s_pieces *p, char *err,
                         size_t errlen);

#endif
