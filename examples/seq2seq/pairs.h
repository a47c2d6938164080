/* Sentence pairs for seq2seq: the TSV reader, the tokenizer and vocabularies.
 *
 * File layout (the common public sentence-pair files, e.g. the Tatoeba/Anki
 * exports): UTF-8, one pair per line, "source<TAB>target". Columns after the
 * second (attribution in the Anki files) are ignored. Blank lines (only
 * spaces) are skipped; CRLF line ends are accepted. A line with invalid
 * UTF-8, without a TAB, or with an empty side is an error naming the file
 * and line. Pairs with a side longer than max_tokens tokens (after
 * tokenization) are skipped and counted in s2s_pairs.skipped_long, so a few
 * long lines in a real file do not stop the run; the program reports the
 * count.
 *
 * Text is kept tokenized: tokens joined by single spaces. Library code here
 * never exits: errors come back as -1 with a message. */
#ifndef S2S_PAIRS_H
#define S2S_PAIRS_H

#include <stddef.h>
#include <stdio.h>

#define S2S_MAX_TOKENS 60 /* default longest side kept by the reader */

typedef struct s2s_pairs {
    size_t n, cap;
    char **src, **tgt; /* tokenized, tokens joined by single spaces */
    int *line;         /* 1-based line in the file it came from; 0 if generated */
    size_t skipped_long;
} s2s_pairs;

/* A heap block of n bytes as glibc's malloc holds it (its header, rounded
 * to 16 bytes, at least 32): what the data counts take a string or array
 * to cost. */
size_t s2s_heap_bytes(size_t n);

void s2s_pairs_init(s2s_pairs *p);
/* The memory p holds: its strings and its arrays (s2s_heap_bytes). */
size_t s2s_pairs_bytes(const s2s_pairs *p);
void s2s_pairs_free(s2s_pairs *p);
/* Copies both strings (already tokenized). 0, or -1 out of memory. */
int s2s_pairs_add(s2s_pairs *p, const char *src, const char *tgt, int line);

typedef struct s2s_tokenize_options {
    int lowercase;   /* map upper-case letters (ASCII, Latin-1, Latin Ext-A, Greek, Cyrillic) */
    int split_punct; /* split punctuation from words (default on) */
} s2s_tokenize_options;

/* Number of bytes of a tokenized copy's buffer for an input of n bytes. */
#define S2S_TOKENIZED_SIZE(n) (3 * (n) + 1)

/* Tokenizes UTF-8 text: splits on white space; with split_punct every
 * punctuation character becomes its own token, except an apostrophe or
 * hyphen between two letters (don't, well-known) and a '.' or ',' between
 * two digits (3.5, 1,000). out (S2S_TOKENIZED_SIZE(strlen(in)) bytes)
 * receives tokens joined by single spaces. Returns the number of tokens.
 * The input must be valid UTF-8. */
int s2s_tokenize(const char *in, const s2s_tokenize_options *o, char *out);

/* 1 if s[0..n) is valid UTF-8 (no overlongs, surrogates or > U+10FFFF);
 * otherwise 0 and *bad_at = offset of the first bad byte. */
int s2s_utf8_valid(const char *s, size_t n, size_t *bad_at);

/* Number of space-separated tokens of a tokenized string. */
int s2s_count_tokens(const char *text);

typedef struct s2s_read_options {
    s2s_tokenize_options tok;
    int max_tokens; /* longest side kept; longer pairs are skipped and counted */
    /* The most the pairs read may hold (s2s_pairs_bytes; 0: no limit). The
     * line that would cross it is refused: "FILE:LINE: holding the pairs read
     * up to this line takes X, more than WHY", where max_bytes_why says whose
     * limit it is. Linux grants memory it cannot back and kills the process
     * when that memory is touched, so a reader that stopped only at a
     * failed malloc would be killed, not refused, on a file too large. */
    size_t max_bytes;
    const char *max_bytes_why;
    size_t bytes_held; /* what pairs read before (another file) hold: counted in the limit */
} s2s_read_options;

void s2s_read_options_default(s2s_read_options *o);

/* The longest line read as a sentence pair or a sentence to translate,
 * its '\n' included: 4 MiB, two sides of 10 000 tokens (the most
 * --max-tokens allows) at 200 bytes a token. A longer line is refused by
 * its line number (a binary file, /dev/zero), not read until memory ends. */
#define S2S_LINE_MAX_BYTES ((size_t)4 << 20)

/* Appends the pairs of a TSV file to p. 0 ok; -1 with
 * "FILE:LINE: reason" (or "FILE: strerror") in err. */
int s2s_pairs_read_tsv(s2s_pairs *p, const char *path, const s2s_read_options *o, char *err,
                       size_t errlen);
/* The same from an open stream; name is used in messages. */
int s2s_pairs_read_stream(s2s_pairs *p, FILE *stream, const char *name,
                          const s2s_read_options *o, char *err, size_t errlen);

/* Writes pairs as TSV (for --write-corpus). 0 ok, -1 with message. */
int s2s_pairs_write_tsv(const s2s_pairs *p, const char *path, char *err, size_t errlen);

/* Moves the last round(frac * n) pairs of p (after a seeded shuffle) into
 * out: the --valid-frac split. 0 ok, -1 out of memory. */
int s2s_pairs_split(s2s_pairs *p, s2s_pairs *out, double frac, unsigned long long seed);

/* ------------------------------------------------------------------ vocabulary */

enum { S2S_PAD = 0, S2S_UNK = 1, S2S_BOS = 2, S2S_EOS = 3, S2S_N_SPECIAL = 4 };

typedef struct s2s_vocab {
    int n;        /* words including the 4 specials */
    char **words; /* id -> word */
    int *slots;   /* open-addressing hash: id + 1, 0 empty */
    size_t nslots;
} s2s_vocab;

/* Words of texts[0..n) with count >= min_count, most frequent first (ties by
 * byte order), after <pad>=0, <unk>=1, <bos>=2, <eos>=3. 0, or -1 no memory. */
int s2s_vocab_build(s2s_vocab *v, char *const *texts, size_t n, int min_count);
/* From a word list (ids 4.. in order), e.g. read from a checkpoint. 0, -1
 * no memory, 1 not a vocabulary: a word repeated, empty or holding ASCII
 * white space (no text gives such a word). */
int s2s_vocab_from_words(s2s_vocab *v, char *const *words, int n);
void s2s_vocab_free(s2s_vocab *v);
/* Id of word[0..len), or -1. */
int s2s_vocab_find(const s2s_vocab *v, const char *word, size_t len);
/* Encodes a tokenized text into at most max ids; unknown words become
 * oov_id, and so do the words "<pad>", "<bos>" and "<eos>" (text never
 * produces those ids). Returns the number of tokens in text (may exceed max). */
int s2s_vocab_encode(const s2s_vocab *v, const char *text, int *ids, int max, int oov_id);
/* Words 4.. joined by '\n' (malloc'd), for checkpoints; NULL no memory. */
char *s2s_vocab_join(const s2s_vocab *v);
/* Inverse of s2s_vocab_join (a copy of s is taken); returns as
 * s2s_vocab_from_words. */
int s2s_vocab_split(s2s_vocab *v, const char *s);

#endif
