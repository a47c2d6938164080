/* Corpus BLEU-4 (see bleu.h). */
#include "bleu.h"

#include <math.h>
#include <string.h>

void s2s_bleu_init(s2s_bleu *b) { memset(b, 0, sizeof *b); }

static int same_ngram(const int *a, const int *b, int n)
{
    for (int i = 0; i < n; i++)
        if (a[i] != b[i]) return 0;
    return 1;
}

/* Occurrences of the n-gram g in s[0..len). */
static int count_ngram(const int *s, int len, const int *g, int n)
{
    int c = 0;
    for (int i = 0; i + n <= len; i++) c += same_ngram(s + i, g, n);
    return c;
}

/* Clipped matches of hypothesis n-grams: each distinct n-gram counts
 * min(count in hyp, count in ref). Quadratic, fine for sentences. */
static long clipped_matches(const int *hyp, int hl, const int *ref, int rl, int n)
{
    long m = 0;
    for (int i = 0; i + n <= hl; i++) {
        if (count_ngram(hyp, i + n - 1, hyp + i, n) > 0) continue; /* counted at first sight */
        int in_hyp = count_ngram(hyp, hl, hyp + i, n);
        int in_ref = count_ngram(ref, rl, hyp + i, n);
        m += in_hyp < in_ref ? in_hyp : in_ref;
    }
    return m;
}

void s2s_bleu_add(s2s_bleu *b, const int *hyp, int hl, const int *ref, int rl)
{
    for (int n = 1; n <= S2S_BLEU_N; n++) {
        b->matches[n - 1] += clipped_matches(hyp, hl, ref, rl, n);
        b->totals[n - 1] += hl >= n ? hl - n + 1 : 0;
    }
    b->hyp_len += hl;
    b->ref_len += rl;
    b->sentences++;
    b->exact += hl == rl && same_ngram(hyp, ref, hl);
}

double s2s_bleu_score(const s2s_bleu *b)
{
    double log_sum = 0;
    for (int n = 0; n < S2S_BLEU_N; n++) {
        if (b->matches[n] == 0 || b->totals[n] == 0) return 0;
        log_sum += log((double)b->matches[n] / (double)b->totals[n]);
    }
    double c = (double)b->hyp_len, r = (double)b->ref_len;
    double bp = c > r ? 1.0 : exp(1.0 - r / c);
    return 100.0 * bp * exp(log_sum / S2S_BLEU_N);
}

double s2s_bleu_exact(const s2s_bleu *b)
{
    return b->sentences ? (double)b->exact / (double)b->sentences : 0;
}
