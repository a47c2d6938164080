/* Corpus BLEU-4 and exact match over token-id sequences.
 *
 * BLEU (Papineni et al. 2002), corpus level, one reference per sentence:
 *     p_n = sum over sentences of clipped n-gram matches
 *           / sum over sentences of hypothesis n-grams        (n = 1..4)
 *     BP  = 1 if c > r else exp(1 - r/c)   (c, r: total hyp / ref length)
 *     BLEU = 100 * BP * exp(mean_n log p_n)
 * No smoothing: a corpus without a single matching 4-gram scores 0 (as
 * sacrebleu with smooth_method='none'). Ids are compared as integers; give
 * reference words that the vocabulary lacks an id the hypotheses never use
 * (e.g. -1), so an <unk> output never matches them. */
#ifndef S2S_BLEU_H
#define S2S_BLEU_H

#define S2S_BLEU_N 4

typedef struct s2s_bleu {
    long matches[S2S_BLEU_N], totals[S2S_BLEU_N];
    long hyp_len, ref_len;
    long sentences, exact;
} s2s_bleu;

void s2s_bleu_init(s2s_bleu *b);
/* Adds one sentence pair (lengths up to any size). */
void s2s_bleu_add(s2s_bleu *b, const int *hyp, int hyp_len, const int *ref, int ref_len);
/* 0..100 */
double s2s_bleu_score(const s2s_bleu *b);
/* Share of sentences whose hypothesis equals the reference, 0..1. */
double s2s_bleu_exact(const s2s_bleu *b);

/* ---------------------------------------------- BLEU on text as people read it
 *
 * Scores comparable with other tools follow sacreBLEU's defaults (Post 2018,
 * "A Call for Clarity in Reporting BLEU Scores"): hypothesis and reference
 * are plain (detokenized) text, each tokenized the same way by the 13a
 * tokenizer of WMT's mteval-v13a.pl as sacreBLEU implements it, and corpus
 * BLEU-4 uses the 'exp' smoothing: the k-th order without any match (k =
 * 1, 2, ..) gets precision 1 / (2^k * total) instead of 0. With at least one
 * match at every order this equals s2s_bleu_score. */

/* The 13a tokenization of UTF-8 text (sacreBLEU's Tokenizer13a applied to
 * line.rstrip()): drop "<skipped>" and "-\n", '\n' -> ' ', unescape &quot;
 * &amp; &lt; &gt;; then, on " line ", split off every ASCII character of
 * { | } ~ [ \ ] ^ _ ` space ! " # $ % & ( ) * + : ; < = > ? @ /, split off
 * '.' and ',' unless between digits (a '.'/',' after a non-digit, then one
 * before a non-digit), split a '-' after a digit, and squeeze Unicode white
 * space (Python's str.split()) to single spaces without leading or trailing
 * ones. Returns the tokens joined by single spaces (malloc'd), or NULL when
 * out of memory. Non-ASCII letters and punctuation pass through unchanged,
 * as in 13a. */
char *s2s_tok13a(const char *line);

/* Adds one sentence: hypothesis and reference as plain text, both
 * 13a-tokenized, n-grams compared as strings; exact match counts equal
 * token sequences. 0, or -1 when out of memory (b unchanged). */
int s2s_bleu_add_text(s2s_bleu *b, const char *hyp, const char *ref);

/* Corpus BLEU with sacreBLEU's default 'exp' smoothing, 0..100. */
double s2s_bleu_score_smoothed(const s2s_bleu *b);

#endif
