/* Corpus chrF (Popovic 2015, "chrF: character n-gram F-score for automatic
 * MT evaluation") with sacreBLEU's defaults, so the figure compares with
 * other tools': character n-grams of orders 1..6, beta = 2, no word n-grams,
 * white space removed (Python's str.split() white space) and case kept.
 * Text is compared as Unicode code points (UTF-8 decoded; text that is not
 * valid UTF-8 is compared byte by byte).
 *
 * Per sentence and order n, with the n-gram multisets H (hypothesis) and R
 * (reference): hyp_n += |H| (only when |R| > 0), ref_n += |R|,
 * match_n += |H intersect R| (each n-gram min(count in H, count in R)).
 * Over the corpus, for the orders where hyp_n > 0 and ref_n > 0 (k of them):
 *     P = mean of match_n / hyp_n,  R = mean of match_n / ref_n
 *     chrF = 100 * (1 + beta^2) P R / (beta^2 P + R)   (0 when P + R = 0)
 * as sacreBLEU 2.x's CHRF.corpus_score with one reference per sentence. */
#ifndef S2S_CHRF_H
#define S2S_CHRF_H

#define S2S_CHRF_ORDER 6
#define S2S_CHRF_BETA 2.0

typedef struct s2s_chrf {
    long hyp[S2S_CHRF_ORDER], ref[S2S_CHRF_ORDER], match[S2S_CHRF_ORDER];
    long sentences;
} s2s_chrf;

void s2s_chrf_init(s2s_chrf *c);
/* Adds one sentence (plain text). 0, or -1 when out of memory (c unchanged). */
int s2s_chrf_add(s2s_chrf *c, const char *hyp, const char *ref);
/* 0..100 */
double s2s_chrf_score(const s2s_chrf *c);

#endif
