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

#endif
