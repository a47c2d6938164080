/* Sentence pairs: TSV reader, tokenizer, vocabularies (see pairs.h). */
#include "pairs.h"

#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "tapegrad.h"
#include "text.h"     /* the programs' one UTF-8 decoder and hash */
#include "trainrun.h" /* tgx_format_bytes */

void s2s_pairs_init(s2s_pairs *p) { memset(p, 0, sizeof *p); }

size_t s2s_heap_bytes(size_t n)
{
    size_t block = (n + sizeof(size_t) + 15) & ~(size_t)15;
    return block < 32 ? 32 : block;
}

/* The arrays of p for `entries` pairs: two string pointers and a line each. */
static size_t array_bytes(size_t entries)
{
    return entries ? 2 * s2s_heap_bytes(entries * sizeof(char *)) +
                         s2s_heap_bytes(entries * sizeof(int))
                   : 0;
}

static size_t pair_string_bytes(const char *src, const char *tgt)
{
    return s2s_heap_bytes(strlen(src) + 1) + s2s_heap_bytes(strlen(tgt) + 1);
}

size_t s2s_pairs_bytes(const s2s_pairs *p)
{
    size_t n = array_bytes(p->cap);
    for (size_t i = 0; i < p->n; i++) n += pair_string_bytes(p->src[i], p->tgt[i]);
    return n;
}

void s2s_pairs_free(s2s_pairs *p)
{
    for (size_t i = 0; i < p->n; i++) {
        free(p->src[i]);
        free(p->tgt[i]);
    }
    free(p->src);
    free(p->tgt);
    free(p->line);
    memset(p, 0, sizeof *p);
}

static char *dup_string(const char *s)
{
    size_t n = strlen(s) + 1;
    char *d = malloc(n);
    if (d) memcpy(d, s, n);
    return d;
}

static int pairs_reserve(s2s_pairs *p, size_t need)
{
    if (need <= p->cap) return 0;
    size_t cap = p->cap ? p->cap * 2 : 256;
    while (cap < need) cap *= 2;
    char **src = realloc(p->src, cap * sizeof *src);
    if (!src) return -1;
    p->src = src;
    char **tgt = realloc(p->tgt, cap * sizeof *tgt);
    if (!tgt) return -1;
    p->tgt = tgt;
    int *line = realloc(p->line, cap * sizeof *line);
    if (!line) return -1;
    p->line = line;
    p->cap = cap;
    return 0;
}

int s2s_pairs_add(s2s_pairs *p, const char *src, const char *tgt, int line)
{
    if (pairs_reserve(p, p->n + 1) != 0) return -1;
    char *s = dup_string(src), *t = dup_string(tgt);
    if (!s || !t) {
        free(s);
        free(t);
        return -1;
    }
    p->src[p->n] = s;
    p->tgt[p->n] = t;
    p->line[p->n] = line;
    p->n++;
    return 0;
}

/* ------------------------------------------------------------------ UTF-8 */

int s2s_utf8_valid(const char *s, size_t n, size_t *bad_at)
{
    const unsigned char *u = (const unsigned char *)s;
    size_t i = 0;
    while (i < n) {
        uint32_t cp;
        size_t len = tg_utf8_one(u + i, n - i, &cp);
        if (len == 0) {
            if (bad_at) *bad_at = i;
            return 0;
        }
        i += (size_t)len;
    }
    return 1;
}

/* ------------------------------------------------------------------ tokenizer */

static int is_space(uint32_t c)
{
    return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\v' || c == '\f' ||
           c == 0xA0 || c == 0x3000 || (c >= 0x2000 && c <= 0x200A) || c == 0x202F;
}

static int is_digit(uint32_t c) { return c >= '0' && c <= '9'; }

static int is_punct(uint32_t c)
{
    if (c < 0x80) return (c >= 0x21 && c <= 0x2F) || (c >= 0x3A && c <= 0x40) ||
                         (c >= 0x5B && c <= 0x60) || (c >= 0x7B && c <= 0x7E);
    return c == 0xA1 || c == 0xA7 || c == 0xAB || c == 0xB6 || c == 0xB7 || c == 0xBB ||
           c == 0xBF || (c >= 0x2010 && c <= 0x2027) || (c >= 0x2030 && c <= 0x205E) ||
           (c >= 0x3001 && c <= 0x3003) || (c >= 0x3008 && c <= 0x3011) ||
           (c >= 0xFF01 && c <= 0xFF0F) || c == 0xFF1A || c == 0xFF1B || c == 0xFF1F;
}

/* A letter for the "don't" / "well-known" rule: anything that is neither
 * space, punctuation nor digit. */
static int is_letter(uint32_t c) { return c != 0 && !is_space(c) && !is_punct(c) && !is_digit(c); }

/* Lower-case mappings that keep the UTF-8 length (all within 2-byte ranges). */
static uint32_t to_lower(uint32_t c)
{
    if (c >= 'A' && c <= 'Z') return c + 32;
    if ((c >= 0xC0 && c <= 0xDE) && c != 0xD7) return c + 32;            /* Latin-1 */
    if (c >= 0x100 && c <= 0x137 && c % 2 == 0) return c + 1;            /* Latin Ext-A */
    if (c >= 0x139 && c <= 0x148 && c % 2 == 1) return c + 1;
    if (c >= 0x14A && c <= 0x177 && c % 2 == 0) return c + 1;
    if (c == 0x179 || c == 0x17B || c == 0x17D) return c + 1;
    if (c >= 0x391 && c <= 0x3AB && c != 0x3A2) return c + 32;           /* Greek */
    if (c >= 0x410 && c <= 0x42F) return c + 32;                         /* Cyrillic */
    if (c >= 0x400 && c <= 0x40F) return c + 80;
    return c;
}

/* Decodes the whole string into code points (caller's buffer of n). */
static size_t decode_all(const char *in, uint32_t *cps)
{
    const unsigned char *u = (const unsigned char *)in;
    size_t n = strlen(in), i = 0, k = 0;
    while (i < n) {
        size_t len = tg_utf8_one(u + i, n - i, &cps[k]);
        if (len == 0) { /* invalid input: treat the byte as a space */
            cps[k] = ' ';
            len = 1;
        }
        i += (size_t)len;
        k++;
    }
    return k;
}

/* Whether punctuation cps[i] stays inside its word. */
static int punct_joins(const uint32_t *cps, size_t n, size_t i)
{
    if (i == 0 || i + 1 >= n) return 0;
    uint32_t a = cps[i - 1], c = cps[i], b = cps[i + 1];
    if ((c == '\'' || c == 0x2019 || c == '-') && is_letter(a) && is_letter(b)) return 1;
    if ((c == '.' || c == ',') && is_digit(a) && is_digit(b)) return 1;
    return 0;
}

typedef struct tok_writer {
    char *out;
    size_t len;
    int ntok, in_word;
} tok_writer;

static void tok_break(tok_writer *w) { w->in_word = 0; }

static void tok_put(tok_writer *w, uint32_t c)
{
    if (!w->in_word) {
        if (w->ntok > 0) w->out[w->len++] = ' ';
        w->ntok++;
        w->in_word = 1;
    }
    w->len += tg_utf8_encode(c, w->out + w->len);
}

int s2s_tokenize(const char *in, const s2s_tokenize_options *o, char *out)
{
    size_t n = strlen(in);
    uint32_t small[256], *cps = n <= 256 ? small : malloc(n * sizeof *cps);
    tok_writer w = {out, 0, 0, 0};
    if (!cps) { /* out of memory: no tokens */
        out[0] = '\0';
        return 0;
    }
    size_t k = decode_all(in, cps);
    for (size_t i = 0; i < k; i++) {
        uint32_t c = cps[i];
        if (is_space(c)) {
            tok_break(&w);
            continue;
        }
        if (o->lowercase) c = to_lower(c);
        if (o->split_punct && is_punct(c) && !punct_joins(cps, k, i)) {
            tok_break(&w); /* the mark is a token of its own */
            tok_put(&w, c);
            tok_break(&w);
            continue;
        }
        tok_put(&w, c);
    }
    out[w.len] = '\0';
    if (cps != small) free(cps);
    return w.ntok;
}

int s2s_count_tokens(const char *text)
{
    int n = 0, in = 0;
    for (const char *p = text; *p; p++) {
        if (*p == ' ') in = 0;
        else if (!in) in = 1, n++;
    }
    return n;
}

/* ------------------------------------------------------------------ TSV reader */

void s2s_read_options_default(s2s_read_options *o)
{
    o->tok.lowercase = 0;
    o->tok.split_punct = 1;
    o->max_tokens = S2S_MAX_TOKENS;
    o->max_bytes = 0;
    o->max_bytes_why = NULL;
    o->bytes_held = 0;
}

static int is_blank(const char *s, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (s[i] != ' ' && s[i] != '\t') return 0;
    return 1;
}

/* Tokenizes one side into a fresh buffer; NULL on out of memory. */
static char *tokenize_side(const char *s, size_t n, const s2s_tokenize_options *o, int *ntok)
{
    char *copy = malloc(n + 1), *out = malloc(S2S_TOKENIZED_SIZE(n));
    if (!copy || !out) {
        free(copy);
        free(out);
        return NULL;
    }
    memcpy(copy, s, n);
    copy[n] = '\0';
    *ntok = s2s_tokenize(copy, o, out);
    free(copy);
    return out;
}

/* What is held once the pair (s, t) is added to p, `others` being all
 * that is held but p's arrays (its strings, other files' pairs); the
 * arrays grow as pairs_reserve grows them. */
static size_t held_with(const s2s_pairs *p, size_t others, const char *s, const char *t)
{
    size_t entries = p->n + 1 <= p->cap ? p->cap : p->cap ? 2 * p->cap : 256;
    return others + pair_string_bytes(s, t) + array_bytes(entries);
}

/* The pair (s, t) of line lineno past o->max_bytes: the message, -1. */
static int refuse_held(const s2s_read_options *o, size_t held, const char *name, int lineno,
                       char *err, size_t errlen)
{
    char size[32];
    tgx_format_bytes(held, size, sizeof size);
    snprintf(err, errlen, "%s:%d: holding the pairs read up to this line takes %s, more than %s",
             name, lineno, size, o->max_bytes_why ? o->max_bytes_why : "the limit set");
    return -1;
}

/* Parses one line (no line end) into p; *others: all that is held but
 * p's arrays (held_with). 0 ok or skipped, -1 error (message set). */
static int parse_line(s2s_pairs *p, size_t *others, char *line, size_t n, const char *name,
                      int lineno, const s2s_read_options *o, char *err, size_t errlen)
{
    size_t bad;
    if (is_blank(line, n)) return 0;
    if (!s2s_utf8_valid(line, n, &bad))
        return snprintf(err, errlen, "%s:%d: invalid UTF-8 at byte %zu", name, lineno, bad + 1), -1;
    if (memchr(line, '\0', n))
        return snprintf(err, errlen, "%s:%d: NUL byte in line", name, lineno), -1;
    char *tab = memchr(line, '\t', n);
    if (!tab)
        return snprintf(err, errlen, "%s:%d: no TAB between source and target", name, lineno), -1;
    size_t ns = (size_t)(tab - line);
    char *tgt = tab + 1, *end = memchr(tgt, '\t', n - ns - 1);
    size_t nt = end ? (size_t)(end - tgt) : n - ns - 1; /* columns after the 2nd: ignored */
    int ks, kt, rc = 0;
    char *s = tokenize_side(line, ns, &o->tok, &ks), *t = tokenize_side(tgt, nt, &o->tok, &kt);
    if (!s || !t) {
        snprintf(err, errlen, "%s:%d: out of memory", name, lineno);
        rc = -1;
    } else if (ks == 0 || kt == 0) {
        snprintf(err, errlen, "%s:%d: empty %s side", name, lineno, ks == 0 ? "source" : "target");
        rc = -1;
    } else if (ks > o->max_tokens || kt > o->max_tokens) {
        p->skipped_long++;
    } else if (o->max_bytes && held_with(p, *others, s, t) > o->max_bytes) {
        rc = refuse_held(o, held_with(p, *others, s, t), name, lineno, err, errlen);
    } else if (s2s_pairs_add(p, s, t, lineno) != 0) {
        snprintf(err, errlen, "%s:%d: out of memory", name, lineno);
        rc = -1;
    } else {
        *others += pair_string_bytes(s, t);
    }
    free(s);
    free(t);
    return rc;
}

int s2s_pairs_read_stream(s2s_pairs *p, FILE *f, const char *name, const s2s_read_options *o,
                          char *err, size_t errlen)
{
    char *line = NULL;
    size_t cap = 0, n, others = o->bytes_held + s2s_pairs_bytes(p) - array_bytes(p->cap);
    int lineno = 0, rc = 0, got;
    while (rc == 0 && (got = tg_read_line(f, &line, &cap, S2S_LINE_MAX_BYTES, &n)) != 0) {
        lineno++;
        if (got < 0) {
            if (got == -1)
                snprintf(err, errlen, "%s:%d: a line of more than %zu bytes", name, lineno,
                         S2S_LINE_MAX_BYTES);
            else
                snprintf(err, errlen, "%s: read error: %s", name, strerror(errno));
            rc = -1;
            break;
        }
        if (n > 0 && line[n - 1] == '\n') n--;
        if (n > 0 && line[n - 1] == '\r') n--;
        if (lineno == 1) tg_utf8_drop_bom(line, &n);
        rc = parse_line(p, &others, line, n, name, lineno, o, err, errlen);
    }
    free(line);
    return rc;
}

int s2s_pairs_read_tsv(s2s_pairs *p, const char *path, const s2s_read_options *o, char *err,
                       size_t errlen)
{
    FILE *f = fopen(path, "rb");
    if (!f) return snprintf(err, errlen, "%s: %s", path, strerror(errno)), -1;
    int rc = s2s_pairs_read_stream(p, f, path, o, err, errlen);
    fclose(f);
    return rc;
}

int s2s_pairs_write_tsv(const s2s_pairs *p, const char *path, char *err, size_t errlen)
{
    FILE *f = fopen(path, "wb");
    if (!f) return snprintf(err, errlen, "%s: %s", path, strerror(errno)), -1;
    for (size_t i = 0; i < p->n; i++) fprintf(f, "%s\t%s\n", p->src[i], p->tgt[i]);
    int bad = ferror(f);
    if (fclose(f) != 0 || bad)
        return snprintf(err, errlen, "%s: write error: %s", path, strerror(errno)), -1;
    return 0;
}

int s2s_pairs_split(s2s_pairs *p, s2s_pairs *out, double frac, unsigned long long seed)
{
    tg_rng r;
    tg_rng_seed(&r, seed);
    for (size_t i = p->n; i > 1; i--) { /* Fisher-Yates */
        size_t j = tg_rng_below(&r, (uint32_t)i);
        char *s = p->src[i - 1], *t = p->tgt[i - 1];
        int l = p->line[i - 1];
        p->src[i - 1] = p->src[j], p->tgt[i - 1] = p->tgt[j], p->line[i - 1] = p->line[j];
        p->src[j] = s, p->tgt[j] = t, p->line[j] = l;
    }
    size_t k = (size_t)(frac * (double)p->n + 0.5);
    if (k > p->n) k = p->n;
    if (pairs_reserve(out, out->n + k) != 0) return -1;
    for (size_t i = p->n - k; i < p->n; i++) { /* ownership moves */
        out->src[out->n] = p->src[i];
        out->tgt[out->n] = p->tgt[i];
        out->line[out->n] = p->line[i];
        out->n++;
    }
    p->n -= k;
    return 0;
}

/* ------------------------------------------------------------------ vocabulary */

static uint64_t hash_bytes(const char *s, size_t n) { return tg_fnv1a(TG_FNV1A_BASIS, s, n); }

/* A growable word table with counts (build time). */
typedef struct word_table {
    char **words;
    long *counts;
    int n, cap;
    int *slots; /* index + 1 */
    size_t nslots;
} word_table;

static int table_find(const word_table *t, const char *w, size_t len, size_t *slot)
{
    size_t i = (size_t)hash_bytes(w, len) & (t->nslots - 1);
    while (t->slots[i]) {
        const char *x = t->words[t->slots[i] - 1];
        if (strncmp(x, w, len) == 0 && x[len] == '\0') return *slot = i, t->slots[i] - 1;
        i = (i + 1) & (t->nslots - 1);
    }
    *slot = i;
    return -1;
}

static int table_grow(word_table *t)
{
    size_t nslots = t->nslots ? t->nslots * 2 : 1024;
    int *slots = calloc(nslots, sizeof *slots);
    if (!slots) return -1;
    free(t->slots);
    t->slots = slots;
    t->nslots = nslots;
    for (int k = 0; k < t->n; k++) {
        size_t i;
        table_find(t, t->words[k], strlen(t->words[k]), &i);
        t->slots[i] = k + 1;
    }
    return 0;
}

/* Adds word[0..len) (or bumps its count). Index, or -1 out of memory. */
static int table_add(word_table *t, const char *w, size_t len, long count)
{
    if ((size_t)(t->n + 1) * 2 > t->nslots && table_grow(t) != 0) return -1;
    size_t slot;
    int k = table_find(t, w, len, &slot);
    if (k >= 0) {
        t->counts[k] += count;
        return k;
    }
    if (t->n == t->cap) {
        int cap = t->cap ? t->cap * 2 : 256;
        char **words = realloc(t->words, (size_t)cap * sizeof *words);
        if (!words) return -1;
        t->words = words;
        long *counts = realloc(t->counts, (size_t)cap * sizeof *counts);
        if (!counts) return -1;
        t->counts = counts;
        t->cap = cap;
    }
    char *copy = malloc(len + 1);
    if (!copy) return -1;
    memcpy(copy, w, len);
    copy[len] = '\0';
    t->words[t->n] = copy;
    t->counts[t->n] = count;
    t->slots[slot] = ++t->n;
    return t->n - 1;
}

static void table_free(word_table *t, int keep_words)
{
    if (!keep_words)
        for (int i = 0; i < t->n; i++) free(t->words[i]);
    free(t->words);
    free(t->counts);
    free(t->slots);
}

/* Calls fn on each space-separated token of text. */
static int each_token(const char *text, int (*fn)(void *, const char *, size_t), void *ctx)
{
    const char *p = text;
    while (*p) {
        while (*p == ' ') p++;
        const char *s = p;
        while (*p && *p != ' ') p++;
        if (p > s && fn(ctx, s, (size_t)(p - s)) != 0) return -1;
    }
    return 0;
}

static int count_token(void *ctx, const char *w, size_t len)
{
    return table_add(ctx, w, len, 1) < 0 ? -1 : 0;
}

typedef struct counted_word {
    long count;
    char *word;
} counted_word;

static int by_count_then_bytes(const void *a, const void *b)
{
    const counted_word *x = a, *y = b;
    if (x->count != y->count) return x->count > y->count ? -1 : 1;
    return strcmp(x->word, y->word);
}

static const char *const special_words[S2S_N_SPECIAL] = {"<pad>", "<unk>", "<bos>", "<eos>"};

/* A word the tokenizer can give: not empty, and no ASCII white space (a
 * word holding a space or a line break would also split a translation's
 * output line, whose words are joined by spaces). */
static int is_token(const char *w)
{
    return w[0] != '\0' && w[strcspn(w, " \t\n\r\v\f")] == '\0';
}

int s2s_vocab_from_words(s2s_vocab *v, char *const *words, int n)
{
    word_table t = {0};
    int rc = 0;
    memset(v, 0, sizeof *v);
    for (int i = 0; i < S2S_N_SPECIAL && rc == 0; i++)
        rc = -(table_add(&t, special_words[i], strlen(special_words[i]), 0) < 0);
    for (int i = 0; i < n && rc == 0; i++) {
        int before = t.n;
        rc = is_token(words[i]) ? -(table_add(&t, words[i], strlen(words[i]), 0) < 0) : 1;
        if (rc == 0 && t.n == before) rc = 1; /* a repeated word */
    }
    if (rc != 0) {
        table_free(&t, 0);
        return rc;
    }
    v->n = t.n;
    v->words = t.words;
    v->slots = t.slots;
    v->nslots = t.nslots;
    free(t.counts);
    return 0;
}

int s2s_vocab_build(s2s_vocab *v, char *const *texts, size_t n, int min_count)
{
    word_table t = {0};
    int rc = 0;
    for (size_t i = 0; i < n && rc == 0; i++) rc = each_token(texts[i], count_token, &t);
    counted_word *order = rc == 0 ? malloc(((size_t)t.n + 1) * sizeof *order) : NULL;
    char **keep = order ? malloc(((size_t)t.n + 1) * sizeof *keep) : NULL;
    if (!keep) {
        free(order);
        table_free(&t, 0);
        return -1;
    }
    int k = 0;
    for (int i = 0; i < t.n; i++) order[i] = (counted_word){t.counts[i], t.words[i]};
    qsort(order, (size_t)t.n, sizeof *order, by_count_then_bytes);
    for (int i = 0; i < t.n; i++) {
        int special = 0;
        for (int s = 0; s < S2S_N_SPECIAL; s++) special |= strcmp(order[i].word, special_words[s]) == 0;
        if (order[i].count >= min_count && !special) keep[k++] = order[i].word;
    }
    rc = s2s_vocab_from_words(v, keep, k);
    free(keep);
    free(order);
    table_free(&t, 0);
    return rc;
}

void s2s_vocab_free(s2s_vocab *v)
{
    for (int i = 0; i < v->n; i++) free(v->words[i]);
    free(v->words);
    free(v->slots);
    memset(v, 0, sizeof *v);
}

int s2s_vocab_find(const s2s_vocab *v, const char *w, size_t len)
{
    if (v->nslots == 0) return -1;
    size_t i = (size_t)hash_bytes(w, len) & (v->nslots - 1);
    while (v->slots[i]) {
        const char *x = v->words[v->slots[i] - 1];
        if (strncmp(x, w, len) == 0 && x[len] == '\0') return v->slots[i] - 1;
        i = (i + 1) & (v->nslots - 1);
    }
    return -1;
}

int s2s_vocab_encode(const s2s_vocab *v, const char *text, int *ids, int max, int oov_id)
{
    int n = 0;
    const char *p = text;
    while (*p) {
        while (*p == ' ') p++;
        const char *s = p;
        while (*p && *p != ' ') p++;
        if (p == s) break;
        int id = s2s_vocab_find(v, s, (size_t)(p - s));
        if (id >= 0 && id < S2S_N_SPECIAL && id != S2S_UNK) id = -1; /* "<eos>" in the text is a word */
        if (n < max) ids[n] = id >= 0 ? id : oov_id;
        n++;
    }
    return n;
}

char *s2s_vocab_join(const s2s_vocab *v)
{
    size_t len = 1;
    for (int i = S2S_N_SPECIAL; i < v->n; i++) len += strlen(v->words[i]) + 1;
    char *s = malloc(len), *q = s;
    if (!s) return NULL;
    for (int i = S2S_N_SPECIAL; i < v->n; i++) {
        size_t w = strlen(v->words[i]);
        memcpy(q, v->words[i], w);
        q += w;
        if (i + 1 < v->n) *q++ = '\n';
    }
    *q = '\0';
    return s;
}

int s2s_vocab_split(s2s_vocab *v, const char *s)
{
    size_t len = strlen(s);
    char *copy = malloc(len + 1);
    if (!copy) return -1;
    memcpy(copy, s, len + 1);
    int n = len > 0, cap = 1;
    for (size_t i = 0; i < len; i++) n += copy[i] == '\n', cap = n;
    char **words = malloc((size_t)(cap + 1) * sizeof *words);
    if (!words) {
        free(copy);
        return -1;
    }
    int k = 0;
    if (len > 0) {
        words[k++] = copy;
        for (size_t i = 0; i < len; i++)
            if (copy[i] == '\n') copy[i] = '\0', words[k++] = copy + i + 1;
    }
    int rc = s2s_vocab_from_words(v, words, k);
    free(words);
    free(copy);
    return rc;
}
