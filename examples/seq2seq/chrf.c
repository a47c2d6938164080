/* Corpus chrF (see chrf.h). Character n-grams are packed exactly into two
 * 64-bit words (up to 3 code points of 21 bits each per word), sorted, and
 * the multiset intersection is counted by merging the sorted lists. */
#include "chrf.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

void s2s_chrf_init(s2s_chrf *c) { memset(c, 0, sizeof *c); }

typedef struct ngram {
    uint64_t hi, lo;
} ngram;

/* Code point of the UTF-8 sequence at s (*len bytes). A malformed sequence
 * reads as one character 0x110000 + byte, distinct from every code point. */
static uint32_t decode_utf8(const unsigned char *s, int *len)
{
    unsigned char c = s[0];
    int n = c < 0x80 ? 1 : (c >> 5) == 6 ? 2 : (c >> 4) == 14 ? 3 : (c >> 3) == 30 ? 4 : 0;
    uint32_t cp = n == 1 ? c : n == 2 ? c & 0x1f : n == 3 ? c & 0x0f : c & 0x07;
    for (int i = 1; i < n; i++) {
        if ((s[i] & 0xc0) != 0x80) {
            n = 0;
            break;
        }
        cp = cp << 6 | (s[i] & 0x3f);
    }
    if (n == 0) {
        *len = 1;
        return 0x110000u + c;
    }
    *len = n;
    return cp;
}

/* Python's str.isspace() for a code point (what chrF's white-space removal
 * drops). */
static int is_py_space(uint32_t cp)
{
    return (cp >= 0x09 && cp <= 0x0d) || (cp >= 0x1c && cp <= 0x20) || cp == 0x85 ||
           cp == 0xa0 || cp == 0x1680 || (cp >= 0x2000 && cp <= 0x200a) || cp == 0x2028 ||
           cp == 0x2029 || cp == 0x202f || cp == 0x205f || cp == 0x3000;
}

/* The non-space code points of s into cp (room for strlen(s)). */
static size_t code_points(const char *s, uint32_t *cp)
{
    size_t n = 0;
    for (const unsigned char *p = (const unsigned char *)s; *p;) {
        int len;
        uint32_t c = decode_utf8(p, &len);
        p += len;
        if (!is_py_space(c)) cp[n++] = c;
    }
    return n;
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
