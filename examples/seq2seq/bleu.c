/* Corpus BLEU-4 (see bleu.h). */
#include "bleu.h"

#include <math.h>
#include <stdlib.h>
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

/* ------------------------------------------------------------ 13a tokenizer */

/* A growable byte string; ok drops to 0 when an allocation fails. */
typedef struct strbuf {
    char *s;
    size_t n, cap;
    int ok;
} strbuf;

static void sb_put(strbuf *b, char c)
{
    if (!b->ok) return;
    if (b->n + 2 > b->cap) {
        size_t cap = b->cap ? 2 * b->cap : 64;
        char *s = realloc(b->s, cap);
        if (!s) {
            b->ok = 0;
            return;
        }
        b->s = s;
        b->cap = cap;
    }
    b->s[b->n++] = c;
    b->s[b->n] = '\0';
}

static void sb_puts(strbuf *b, const char *s, size_t n)
{
    for (size_t i = 0; i < n; i++) sb_put(b, s[i]);
}

/* Replaces every occurrence of from by to (Python's str.replace). */
static char *replace_all(char *in, const char *from, const char *to)
{
    if (!in || !strstr(in, from)) return in;
    strbuf b = {NULL, 0, 0, 1};
    size_t fl = strlen(from);
    for (const char *p = in; *p;) {
        if (strncmp(p, from, fl) == 0) {
            sb_puts(&b, to, strlen(to));
            p += fl;
        } else {
            sb_put(&b, *p++);
        }
    }
    sb_put(&b, '\0'); /* an empty result still gets a buffer */
    free(in);
    if (!b.ok) {
        free(b.s);
        return NULL;
    }
    return b.s;
}

/* Length of the UTF-8 sequence at s whose code point is white space for
 * Python's str.isspace() (what str.split() splits on), else 0. */
static int py_space_len(const unsigned char *s)
{
    if ((s[0] >= 0x09 && s[0] <= 0x0d) || (s[0] >= 0x1c && s[0] <= 0x20)) return 1;
    if (s[0] == 0xc2 && (s[1] == 0x85 || s[1] == 0xa0)) return 2;
    if (s[0] == 0xe1 && s[1] == 0x9a && s[2] == 0x80) return 3; /* U+1680 */
    if (s[0] == 0xe2 && s[1] == 0x80 &&
        ((s[2] >= 0x80 && s[2] <= 0x8a) || s[2] == 0xa8 || s[2] == 0xa9 || s[2] == 0xaf))
        return 3; /* U+2000..200A, 2028, 2029, 202F */
    if (s[0] == 0xe2 && s[1] == 0x81 && s[2] == 0x9f) return 3; /* U+205F */
    if (s[0] == 0xe3 && s[1] == 0x80 && s[2] == 0x80) return 3; /* U+3000 */
    return 0;
}

/* mteval's first rule: the ASCII symbols split off everywhere. */
static int is_13a_symbol(unsigned char c)
{
    return (c >= '{' && c <= '~') || (c >= '[' && c <= '`') || (c >= ' ' && c <= '&') ||
           (c >= '(' && c <= '+') || (c >= ':' && c <= '@') || c == '/';
}

static int is_digit(unsigned char c) { return c >= '0' && c <= '9'; }
static int is_dot_comma(unsigned char c) { return c == '.' || c == ','; }

/* One regex rule of the form (A)(B) -> replacement, applied left to right
 * without overlaps as re.sub does: rule 2: ([^0-9])([.,]) -> "\1 \2 ",
 * rule 3: ([.,])([^0-9]) -> " \1 \2", rule 4: ([0-9])(-) -> "\1 \2 ".
 * Working on bytes gives the same result as on code points: every class
 * tested on a byte is ASCII or "not a digit", which a byte of a multi-byte
 * character also is, and only ASCII bytes are moved apart. */
enum { RULE_NONDIGIT_DOT = 2, RULE_DOT_NONDIGIT = 3, RULE_DIGIT_DASH = 4 };

static void apply_rule(const char *in, strbuf *out, int rule)
{
    for (size_t i = 0; in[i];) {
        unsigned char a = (unsigned char)in[i], b = (unsigned char)in[i + 1];
        int hit = b && ((rule == RULE_NONDIGIT_DOT && !is_digit(a) && is_dot_comma(b)) ||
                        (rule == RULE_DOT_NONDIGIT && is_dot_comma(a) && !is_digit(b)) ||
                        (rule == RULE_DIGIT_DASH && is_digit(a) && b == '-'));
        if (!hit) {
            sb_put(out, (char)a);
            i++;
            continue;
        }
        if (rule == RULE_DOT_NONDIGIT) sb_put(out, ' ');
        sb_put(out, (char)a);
        sb_put(out, ' ');
        sb_put(out, (char)b);
        if (rule != RULE_DOT_NONDIGIT) sb_put(out, ' ');
        i += 2;
    }
    sb_put(out, '\0');
    out->n--; /* keep the terminator out of the length */
}

/* Python's rstrip(): drops trailing white space in place. */
static void py_rstrip(char *s)
{
    size_t end = 0;
    for (size_t i = 0; s[i];) {
        int sp = py_space_len((const unsigned char *)s + i);
        i += sp ? (size_t)sp : 1;
        if (!sp) end = i;
    }
    s[end] = '\0';
}

/* ' '.join(s.split()) */
static void squeeze_spaces(const char *s, strbuf *out)
{
    int pending = 0;
    for (size_t i = 0; s[i];) {
        int sp = py_space_len((const unsigned char *)s + i);
        if (sp) {
            pending = out->n > 0;
            i += (size_t)sp;
            continue;
        }
        if (pending) sb_put(out, ' ');
        pending = 0;
        sb_put(out, s[i++]);
    }
    sb_put(out, '\0');
}

char *s2s_tok13a(const char *line)
{
    size_t n = strlen(line);
    char *s = malloc(n + 1);
    if (!s) return NULL;
    memcpy(s, line, n + 1);
    py_rstrip(s);
    s = replace_all(s, "<skipped>", "");
    s = replace_all(s, "-\n", "");
    s = replace_all(s, "\n", " ");
    s = replace_all(s, "&quot;", "\"");
    s = replace_all(s, "&amp;", "&");
    s = replace_all(s, "&lt;", "<");
    s = replace_all(s, "&gt;", ">");
    if (!s) return NULL;
    strbuf a = {NULL, 0, 0, 1}, b = {NULL, 0, 0, 1};
    sb_put(&a, ' ');
    for (const char *p = s; *p; p++) {
        if (is_13a_symbol((unsigned char)*p)) {
            sb_put(&a, ' ');
            sb_put(&a, *p);
            sb_put(&a, ' ');
        } else {
            sb_put(&a, *p);
        }
    }
    sb_put(&a, ' ');
    free(s);
    static const int rules[] = {RULE_NONDIGIT_DOT, RULE_DOT_NONDIGIT, RULE_DIGIT_DASH};
    for (int r = 0; r < 3 && a.ok; r++) {
        b.n = 0;
        apply_rule(a.s, &b, rules[r]);
        strbuf t = a;
        a = b;
        b = t;
    }
    b.n = 0;
    if (a.ok) squeeze_spaces(a.s, &b);
    char *out = a.ok && b.ok ? b.s : NULL;
    free(a.s);
    if (!out) free(b.s);
    return out;
}

/* ------------------------------------------------------------ BLEU on text */

/* Splits a tokenized string in place at its single spaces. */
static int split_tokens(char *s, char **tok, int max)
{
    int n = 0;
    for (char *p = s; *p && n < max;) {
        tok[n++] = p;
        p = strchr(p, ' ');
        if (!p) break;
        *p++ = '\0';
    }
    return n;
}

/* Gives equal tokens of hyp and ref the same small integer, so the id-based
 * counting of s2s_bleu_add does the string comparison. */
static void intern_tokens(char **tok, int n, int *ids)
{
    for (int i = 0; i < n; i++) {
        ids[i] = i;
        for (int j = 0; j < i; j++)
            if (strcmp(tok[i], tok[j]) == 0) {
                ids[i] = ids[j];
                break;
            }
    }
}

int s2s_bleu_add_text(s2s_bleu *b, const char *hyp, const char *ref)
{
    char *th = s2s_tok13a(hyp), *tr = s2s_tok13a(ref);
    int rc = -1;
    size_t cap = (th ? strlen(th) : 0) + (tr ? strlen(tr) : 0) + 2;
    char **tok = th && tr ? malloc(cap * sizeof *tok) : NULL;
    int *ids = tok ? malloc(cap * sizeof *ids) : NULL;
    if (ids) {
        int nh = split_tokens(th, tok, (int)cap);
        int nr = split_tokens(tr, tok + nh, (int)cap - nh);
        intern_tokens(tok, nh + nr, ids);
        s2s_bleu_add(b, ids, nh, ids + nh, nr);
        rc = 0;
    }
    free(ids);
    free(tok);
    free(th);
    free(tr);
    return rc;
}

double s2s_bleu_score_smoothed(const s2s_bleu *b)
{
    int any = 0;
    for (int n = 0; n < S2S_BLEU_N; n++) any |= b->matches[n] > 0;
    if (!any) return 0;
    double smooth = 1, log_sum = 0;
    for (int n = 0; n < S2S_BLEU_N; n++) {
        if (b->totals[n] == 0) return 0; /* sacreBLEU: precision 0, log -> -1e10 */
        double p;
        if (b->matches[n] > 0) {
            p = 100.0 * (double)b->matches[n] / (double)b->totals[n];
        } else {
            smooth *= 2;
            p = 100.0 / (smooth * (double)b->totals[n]);
        }
        log_sum += log(p);
    }
    double c = (double)b->hyp_len, r = (double)b->ref_len;
    double bp = c < r ? exp(1.0 - r / c) : 1.0;
    return bp * exp(log_sum / S2S_BLEU_N);
}
