/* Corpus chrF (see chrf.h). Character n-grams are packed exactly into two
 * 64-bit words (up to 3 code points of 21 bits each per word), sorted, and
 * the multiset intersection is counted by merging the sorted lists. */
#include "chrf.h"

#include "text.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

void s2s_chrf_init(s2s_chrf *c) { memset(c, 0, sizeof *c); }

typedef struct ngram {
    uint64_t hi, lo;
} ngram;

/* Python's str.isspace() for a code point (what chrF's white-space removal
 * drops). */
static int is_py_space(uint32_t cp)
{
    return (cp >= 0x09 && cp <= 0x0d) || (cp >= 0x1c && cp <= 0x20) || cp == 0x85 ||
           cp == 0xa0 || cp == 0x1680 || (cp >= 0x2000 && cp <= 0x200a) || cp == 0x2028 ||
           cp == 0x2029 || cp == 0x202f || cp == 0x205f || cp == 0x3000;
}

/* The non-space code points of s into cp (room for strlen(s)). Text that
 * is not valid UTF-8 is compared byte by byte (each byte a character
 * 0x110000 + byte, distinct from every code point), never refused. */
static size_t code_points(const char *s, uint32_t *cp)
{
    size_t len = strlen(s), n = 0, bad;
    if (tg_utf8_decode((const unsigned char *)s, len, cp, &n, &bad) != 0) {
        for (n = 0; n < len; n++) cp[n] = 0x110000u + (unsigned char)s[n];
    }
    size_t kept = 0;
    for (size_t i = 0; i < n; i++)
        if (!is_py_space(cp[i])) cp[kept++] = cp[i];
    return kept;
}

static int cmp_ngram(const void *a, const void *b)
{
    const ngram *x = a, *y = b;
    if (x->hi != y->hi) return x->hi < y->hi ? -1 : 1;
    return x->lo < y->lo ? -1 : x->lo > y->lo;
}

/* The sorted n-grams of cp[0..len) into out; returns their number. */
static size_t ngrams(const uint32_t *cp, size_t len, int n, ngram *out)
{
    size_t count = len >= (size_t)n ? len - (size_t)n + 1 : 0;
    for (size_t i = 0; i < count; i++) {
        ngram g = {0, 0};
        for (int k = 0; k < n; k++) {
            uint64_t *w = k < 3 ? &g.hi : &g.lo;
            *w = *w << 21 | cp[i + (size_t)k];
        }
        out[i] = g;
    }
    qsort(out, count, sizeof *out, cmp_ngram);
    return count;
}

/* Size of the multiset intersection of two sorted lists. */
static long common(const ngram *a, size_t na, const ngram *b, size_t nb)
{
    long m = 0;
    for (size_t i = 0, j = 0; i < na && j < nb;) {
        int c = cmp_ngram(a + i, b + j);
        if (c == 0) m++;
        i += c <= 0;
        j += c >= 0;
    }
    return m;
}

int s2s_chrf_add(s2s_chrf *c, const char *hyp, const char *ref)
{
    size_t lh = strlen(hyp), lr = strlen(ref);
    uint32_t *ch = malloc((lh + lr + 1) * sizeof *ch);
    ngram *gh = malloc((lh + 1) * sizeof *gh), *gr = malloc((lr + 1) * sizeof *gr);
    int rc = -1;
    if (ch && gh && gr) {
        uint32_t *cr = ch + lh;
        size_t nh = code_points(hyp, ch), nr = code_points(ref, cr);
        for (int n = 1; n <= S2S_CHRF_ORDER; n++) {
            size_t kh = ngrams(ch, nh, n, gh), kr = ngrams(cr, nr, n, gr);
            c->hyp[n - 1] += kr > 0 ? (long)kh : 0;
            c->ref[n - 1] += (long)kr;
            c->match[n - 1] += common(gh, kh, gr, kr);
        }
        c->sentences++;
        rc = 0;
    }
    free(ch);
    free(gh);
    free(gr);
    return rc;
}

double s2s_chrf_score(const s2s_chrf *c)
{
    double p = 0, r = 0;
    int k = 0;
    for (int n = 0; n < S2S_CHRF_ORDER; n++) {
        if (c->hyp[n] > 0 && c->ref[n] > 0) {
            p += (double)c->match[n] / (double)c->hyp[n];
            r += (double)c->match[n] / (double)c->ref[n];
            k++;
        }
    }
    if (k == 0) return 0;
    p /= k;
    r /= k;
    if (p + r == 0) return 0;
    double b2 = S2S_CHRF_BETA * S2S_CHRF_BETA;
    return 100.0 * (1 + b2) * p * r / (b2 * p + r);
}
