/* seq2seq's subword mode (see pieces.h). */
#include "pieces.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "text.h" /* tg_text_shown */
#include "tg_checkpoint.h"

/* The size SentencePiece asks for when it refuses n pieces for this text:
 * "Vocabulary size is smaller than required_chars. N vs M." (every
 * character of the text needs a piece: character_coverage 1). 0 when the
 * message names none. (A size too large for a small corpus is no error:
 * the shim's hard_vocab_limit=false gives fewer pieces.) */
static int size_it_needs(const char *msg)
{
    const char *at = strstr(msg, "required_chars. ");
    int n = 0, m = 0;
    if (at && sscanf(at + 16, "%d vs %d", &n, &m) == 2 && m > n && m <= S2S_SUBWORD_MAX)
        return m;
    return 0;
}

/* One side's model of n pieces, or of as many as the text's characters
 * need when n is fewer. *used: the model's size. */
static s2s_subword *train_side(const char *const *text, size_t count, int n, const char *side,
                               int *used, char *err, size_t errlen)
{
    for (;;) {
        s2s_subword *sw = s2s_subword_train(text, count, n, err, errlen);
        if (sw) {
            *used = s2s_subword_size(sw);
            return sw;
        }
        int m = size_it_needs(err);
        if (m <= n) {
            char why[512];
            snprintf(why, sizeof why, "%s", err);
            snprintf(err, errlen, "%s side: %s", side, why);
            return NULL;
        }
        n = m;
    }
}

/* `take` pairs of train (0 < take < train->n) chosen at random with a fixed
 * seed, each subset as likely as any other, kept in the file's order
 * (Knuth's selection sampling: pair i is taken with probability
 * (take - taken) / (n - i)), their sides into src and tgt. A random sample,
 * not every (n / take)-th pair: a stride can fall in step with a pattern of
 * the file and miss whole kinds of sentences. -1 when there is no memory. */
static int choose_pairs(const s2s_pairs *train, size_t take, const char ***src,
                        const char ***tgt)
{
    size_t n = train->n;
    *src = malloc(take * sizeof **src);
    *tgt = malloc(take * sizeof **tgt);
    if (!*src || !*tgt) return -1;
    tg_rng r;
    tg_rng_seed(&r, S2S_SUBWORD_SAMPLE_SEED);
    size_t taken = 0;
    for (size_t i = 0; i < n && taken < take; i++) {
        /* u64 % m is uniform to within m / 2^64 */
        if (take - taken == n - i || tg_rng_u64(&r) % (n - i) < take - taken) {
            (*src)[taken] = train->src[i];
            (*tgt)[taken] = train->tgt[i];
            taken++;
        }
    }
    return 0;
}

/* Code points of UTF-8 s: its bytes that do not continue a character. */
static size_t count_chars(const char *s)
{
    size_t n = 0;
    for (; *s; s++) n += ((unsigned char)*s & 0xC0) != 0x80;
    return n;
}

size_t s2s_pieces_train_bytes(const s2s_pairs *train, size_t sample)
{
    size_t src = 0, tgt = 0, count = sample > 0 && sample < train->n ? sample : train->n;
    for (size_t i = 0; i < train->n; i++) {
        src += count_chars(train->src[i]);
        tgt += count_chars(train->tgt[i]);
    }
    double share = train->n ? (double)count / (double)train->n : 0;
    return (size_t)((double)(src > tgt ? src : tgt) * share) * S2S_PIECES_BYTES_PER_CHAR;
}

int s2s_pieces_train(s2s_pieces *p, const s2s_pairs *train, int n, size_t sample, char *note,
                     size_t notelen, char *err, size_t errlen)
{
    int ns = n, nt = n;
    memset(p, 0, sizeof *p);
    note[0] = '\0';
    const char **src = NULL, **tgt = NULL;
    size_t count = train->n;
    if (sample > 0 && sample < train->n) {
        count = sample;
        if (choose_pairs(train, sample, &src, &tgt) != 0) {
            free(src);
            free(tgt);
            snprintf(err, errlen, "out of memory choosing the pairs to learn pieces from");
            return -1;
        }
    }
    const char *const *src_text = src ? src : (const char *const *)train->src;
    const char *const *tgt_text = tgt ? tgt : (const char *const *)train->tgt;
    p->src = train_side(src_text, count, n, "source", &ns, err, errlen);
    p->tgt = p->src ? train_side(tgt_text, count, n, "target", &nt, err, errlen) : NULL;
    free(src);
    free(tgt);
    if (!p->tgt) {
        s2s_pieces_free(p);
        size_t len = strlen(err);
        if (strstr(err, "out of memory") && len < errlen)
            snprintf(err + len, errlen - len, " (on %zu pairs: a smaller --subword-sample needs "
                     "less)", count);
        return -1;
    }
    if (ns != n || nt != n)
        snprintf(note, notelen, "--subwords %d: the training text gives %d source and %d target "
                 "pieces (%s)", n, ns, nt, ns < n || nt < n ? "too little text for more"
                                                    : "every character needs one");
    return 0;
}

void s2s_pieces_free(s2s_pieces *p)
{
    s2s_subword_free(p->src);
    s2s_subword_free(p->tgt);
    p->src = p->tgt = NULL;
}

int s2s_pieces_vocab(const s2s_subword *sw, s2s_vocab *v)
{
    int n = s2s_subword_size(sw) - S2S_N_SPECIAL;
    char **words = malloc((size_t)(n > 0 ? n : 1) * sizeof *words);
    if (!words) return -1;
    for (int i = 0; i < n; i++) words[i] = (char *)s2s_subword_piece(sw, i + S2S_N_SPECIAL);
    int rc = s2s_vocab_from_words(v, words, n);
    free(words);
    return rc;
}

int s2s_pieces_check_vocab(const s2s_subword *sw, const s2s_vocab *v, const char *label,
                           char *err, size_t errlen)
{
    if (s2s_subword_check_size(sw, v->n, label, err, errlen) != 0) return -1;
    for (int id = S2S_N_SPECIAL; id < v->n; id++) {
        if (strcmp(s2s_subword_piece(sw, id), v->words[id]) == 0) continue;
        char piece[128], word[128]; /* a damaged model's word may hold an ESC */
        tg_text_shown(s2s_subword_piece(sw, id), piece, sizeof piece);
        tg_text_shown(v->words[id], word, sizeof word);
        return snprintf(err, errlen, "%s: piece model does not match the vocabulary (id %d is "
                        "'%s' in the piece model, '%s' in the vocabulary)", label, id, piece,
                        word), -1;
    }
    return 0;
}

/* One side's pieces joined by spaces and their count. */
static char *side_pieces(const s2s_subword *sw, const char *text, int *count, char *err,
                         size_t errlen)
{
    char *s = s2s_subword_encode_pieces(sw, text, err, errlen);
    *count = s ? s2s_count_tokens(s) : 0;
    return s;
}

int s2s_pieces_encode_pairs(const s2s_pieces *p, const char *name, s2s_pairs *raw, s2s_pairs *out,
                            int max_tokens, size_t *skipped, char *err, size_t errlen)
{
    size_t kept = 0, most = (size_t)max_tokens * S2S_PIECE_MAX_BYTES;
    s2s_pairs_init(out);
    *skipped = 0;
    for (size_t i = 0; i < raw->n; i++) {
        int ns = 0, nt = 0;
        char *s = NULL, *t = NULL;
        /* a side of more bytes cannot be max_tokens pieces of real text */
        int fits = strlen(raw->src[i]) <= most && strlen(raw->tgt[i]) <= most;
        if (fits) {
            s = side_pieces(p->src, raw->src[i], &ns, err, errlen);
            t = s ? side_pieces(p->tgt, raw->tgt[i], &nt, err, errlen) : NULL;
            if (!t) {
                free(s);
                return -1;
            }
            if (ns == 0 || nt == 0) { /* the model cannot take an empty source (s2s_batch) */
                free(s);
                free(t);
                return snprintf(err, errlen, "%s:%d: the %s side is empty after SentencePiece's "
                                "normalization (only zero-width, control or separator "
                                "characters)", name, raw->line[i], ns == 0 ? "source" : "target"),
                       -1;
            }
        }
        int keep = fits && ns <= max_tokens && nt <= max_tokens;
        if (keep && s2s_pairs_add(out, s, t, raw->line[i]) != 0) {
            free(s);
            free(t);
            return snprintf(err, errlen, "out of memory"), -1;
        }
        free(s);
        free(t);
        if (!keep) { /* dropped from raw too, so raw and out stay aligned */
            (*skipped)++;
            free(raw->src[i]);
            free(raw->tgt[i]);
            continue;
        }
        raw->src[kept] = raw->src[i];
        raw->tgt[kept] = raw->tgt[i];
        raw->line[kept] = raw->line[i];
        kept++;
    }
    raw->n = kept;
    return 0;
}

char *s2s_pieces_output_text(const s2s_pieces *p, const s2s_vocab *vt, const int *ids, int n)
{
    char err[256];
    if (p && p->tgt) return s2s_subword_decode(p->tgt, ids, n, err, sizeof err);
    size_t len = 1;
    for (int i = 0; i < n; i++) len += strlen(ids[i] >= 0 ? vt->words[ids[i]] : "<unk>") + 1;
    char *s = malloc(len), *at = s;
    if (!s) return NULL;
    *s = '\0';
    for (int i = 0; i < n; i++)
        at += sprintf(at, "%s%s", i ? " " : "", ids[i] >= 0 ? vt->words[ids[i]] : "<unk>");
    return s;
}

/* One side from its text form; *out stays NULL when text is NULL. */
static int side_from_text(const char *text, const char *label_fmt, const char *key,
                          s2s_subword **out, char *err, size_t errlen)
{
    char label[1024];
    *out = NULL;
    if (!text) return 0;
    snprintf(label, sizeof label, label_fmt, key);
    *out = s2s_subword_from_text(text, label, err, errlen);
    return *out ? 0 : -1;
}

static int pieces_from_texts(const char *src_text, const char *tgt_text, const char *label_fmt,
                          const char *src_key, const char *tgt_key, s2s_pieces *p, char *err,
                          size_t errlen)
{
    char label[1024];
    memset(p, 0, sizeof *p);
    if (!src_text != !tgt_text) {
        snprintf(label, sizeof label, label_fmt, src_text ? tgt_key : src_key);
        return snprintf(err, errlen, "%s missing (the other side's piece model is there)", label),
               -1;
    }
    if (side_from_text(src_text, label_fmt, src_key, &p->src, err, errlen) != 0 ||
        side_from_text(tgt_text, label_fmt, tgt_key, &p->tgt, err, errlen) != 0) {
        s2s_pieces_free(p);
        return -1;
    }
    return 0;
}

int s2s_pieces_from_file(const char *path, const char *prefix, const char *kind,
                         const char *src_name, const char *tgt_name, s2s_pieces *p, char *err,
                         size_t errlen)
{
    char fmt[1100], src_key[128], tgt_key[128];
    memset(p, 0, sizeof *p);
    tg_checkpoint *ck = tg_checkpoint_open(path, err, errlen);
    if (!ck) return -1;
    snprintf(fmt, sizeof fmt, "%s: %s '%%s'", path, kind);
    snprintf(src_key, sizeof src_key, "%s%s", prefix, src_name);
    snprintf(tgt_key, sizeof tgt_key, "%s%s", prefix, tgt_name);
    int rc = pieces_from_texts(tg_checkpoint_meta(ck, src_key), tg_checkpoint_meta(ck, tgt_key),
                               fmt, src_name, tgt_name, p, err, errlen);
    tg_checkpoint_close(ck);
    return rc;
}

/* Whether v reads as a piece vocabulary: at least a tenth of its words
 * start with U+2581, SentencePiece's mark of a word's start (72-81% of the
 * de-en recipe's 8000 pieces do). A word model's text may hold the odd
 * U+2581 without being refused for it. */
static int holds_piece_mark(const s2s_vocab *v)
{
    int marked = 0, words = v->n - S2S_N_SPECIAL;
    for (int i = S2S_N_SPECIAL; i < v->n; i++)
        marked += strncmp(v->words[i], "\xE2\x96\x81", 3) == 0;
    return words > 0 && marked >= (words + 9) / 10;
}

/* A model without piece models that the rest of its metadata shows to be a
 * subword model: only subword mode saves s2s.split_punct 0 (main.c), and a
 * piece vocabulary has many words marked with U+2581 (holds_piece_mark).
 * Loaded as words, its pieces matched no input word and its output was
 * pieces joined by spaces, with no message. */
static int refuse_lost_pieces(const char *path, const s2s_vocab *vs, const s2s_vocab *vt,
                              const s2s_tokenize_options *tok, char *err, size_t errlen)
{
    if (tok->split_punct || !(holds_piece_mark(vs) || holds_piece_mark(vt))) return 0;
    return snprintf(err, errlen, "%s: metadata 's2s.src_pieces' and 's2s.tgt_pieces' missing, "
                    "but the model is a subword model (s2s.split_punct 0, pieces marked with "
                    "U+2581 in its vocabularies): without its piece models no text can be "
                    "read or written", path), -1;
}

int s2s_load_pieces(const char *path, const s2s_vocab *vs, const s2s_vocab *vt,
                    const s2s_tokenize_options *tok, s2s_pieces *p, char *err, size_t errlen)
{
    char label[1200];
    int rc = s2s_pieces_from_file(path, "", "metadata", "s2s.src_pieces", "s2s.tgt_pieces", p,
                                  err, errlen);
    if (rc != 0) return rc;
    if (!p->src) return refuse_lost_pieces(path, vs, vt, tok, err, errlen);
    snprintf(label, sizeof label, "%s: metadata 's2s.src_pieces'", path);
    if (s2s_pieces_check_vocab(p->src, vs, label, err, errlen) != 0) goto bad;
    snprintf(label, sizeof label, "%s: metadata 's2s.tgt_pieces'", path);
    if (s2s_pieces_check_vocab(p->tgt, vt, label, err, errlen) != 0) goto bad;
    return 0;
bad:
    s2s_pieces_free(p);
    return -1;
}
