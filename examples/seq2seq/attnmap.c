/* --attention-map: attention weights as SVG (see attnmap.h).
 *
 * Layout of a block (pixels): a heading line, the source labels rotated
 * -45 degrees above their columns, the output labels right-aligned left of
 * their rows, CELL x CELL cells. Label widths are estimated from code
 * points (wide scripts, e.g. Hangul and CJK, count double) since SVG has no
 * text measurement without a renderer. */
#include "attnmap.h"

#include <errno.h>
#include <limits.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "decode.h"
#include "tg_checkpoint.h" /* tg_checkpoint_temp_path */
#include "text.h"
#include "trainrun.h" /* tgx_write_begin */

enum { CELL = 22, FONT = 12, HEAD = 24, GAP = 28, PAD = 8 };
#define CHAR_W 7.3      /* px per narrow character at FONT, monospace */
#define DIAG 0.7071     /* sin 45 degrees: rotated labels' height per px */

/* ------------------------------------------------------------------ text */

/* The UTF-8 character at p (end: the string's end): its length, or 0
 * when the bytes there are not valid UTF-8 (tg_utf8_one, strict). */
static int utf8_next(const unsigned char *p, const unsigned char *end, unsigned *cp)
{
    uint32_t c = 0;
    size_t len = tg_utf8_one(p, (size_t)(end - p), &c);
    *cp = c;
    return (int)len;
}

/* XML 1.0 allows tab, newline, carriage return and code points from 0x20
 * on (less the two non-characters U+FFFE and U+FFFF). */
static int xml_char(unsigned c)
{
    return c == 0x9 || c == 0xa || c == 0xd || (c >= 0x20 && c != 0xfffe && c != 0xffff);
}

/* s as XML character data (also safe inside a double-quoted attribute):
 * markup characters escaped, characters XML forbids and bytes that are not
 * UTF-8 written as U+FFFD. */
static void put_escaped(FILE *f, const char *s)
{
    const unsigned char *p = (const unsigned char *)s, *end = p + strlen(s);
    while (*p) {
        unsigned c = 0;
        int len = utf8_next(p, end, &c);
        if (len == 0 || !xml_char(c)) {
            fputs("\xef\xbf\xbd", f);
            p += len ? len : 1;
            continue;
        }
        switch (c) {
        case '&': fputs("&amp;", f); break;
        case '<': fputs("&lt;", f); break;
        case '>': fputs("&gt;", f); break;
        case '"': fputs("&quot;", f); break;
        case '\'': fputs("&apos;", f); break;
        default: fwrite(p, 1, (size_t)len, f);
        }
        p += len;
    }
}

/* Estimated width of s in px: wide scripts (Hangul, CJK, full-width
 * forms, from U+1100 on) count as two characters. */
static double text_width(const char *s)
{
    const unsigned char *p = (const unsigned char *)s, *end = p + strlen(s);
    double w = 0;
    while (*p) {
        unsigned c = 0;
        int len = utf8_next(p, end, &c);
        w += len && c >= 0x1100 ? 2 * CHAR_W : CHAR_W;
        p += len ? len : 1;
    }
    return w;
}

static double widest(const char *const *labels, int n)
{
    double w = 0;
    for (int i = 0; i < n; i++) w = fmax(w, text_width(labels[i]));
    return w;
}

/* ------------------------------------------------------------------ svg */

/* Geometry of one block. */
typedef struct block_box {
    double top;  /* height of the rotated source labels */
    double left; /* width of the output labels */
    double width, height;
} block_box;

static block_box measure(const s2s_attnmap_block *b)
{
    block_box x;
    double src_w = widest(b->src, b->S);
    x.top = src_w * DIAG + PAD;
    x.left = widest(b->out, b->T) + 2 * PAD;
    /* the last column's label leans right by its rotated width */
    x.width = x.left + b->S * CELL + src_w * DIAG + PAD;
    x.height = HEAD + x.top + b->T * CELL + GAP;
    return x;
}

/* White at 0 to dark blue (31, 78, 158) at 1. */
static void put_fill(FILE *f, double w)
{
    w = isfinite(w) ? fmin(1.0, fmax(0.0, w)) : 0.0;
    fprintf(f, "rgb(%d,%d,%d)", (int)lround(255 - 224 * w), (int)lround(255 - 177 * w),
            (int)lround(255 - 97 * w));
}

static void put_block(FILE *f, const s2s_attnmap_block *b, size_t index, double y)
{
    block_box x = measure(b);
    double y0 = y + HEAD + x.top; /* the first row's top */
    fprintf(f, "<g class=\"sentence\">\n<text class=\"head\" x=\"%d\" y=\"%.1f\">sentence "
               "%zu: %d source tokens, %d output rows</text>\n",
            PAD, y + HEAD - 8, b->number > 0 ? (size_t)b->number : index + 1, b->S, b->T);
    for (int s = 0; s < b->S; s++) {
        fprintf(f, "<text class=\"src\" transform=\"translate(%.1f,%.1f) rotate(-45)\">",
                x.left + s * CELL + CELL / 2.0, y0 - 4);
        put_escaped(f, b->src[s]);
        fputs("</text>\n", f);
    }
    for (int t = 0; t < b->T; t++) {
        fprintf(f, "<text class=\"out\" text-anchor=\"end\" x=\"%.1f\" y=\"%.1f\">", x.left - PAD,
                y0 + t * CELL + CELL * 0.7);
        put_escaped(f, b->out[t]);
        fputs("</text>\n", f);
    }
    for (int t = 0; t < b->T; t++)
        for (int s = 0; s < b->S; s++) {
            double w = b->w[(size_t)t * (size_t)b->S + (size_t)s];
            fprintf(f, "<rect class=\"cell\" x=\"%.1f\" y=\"%.1f\" width=\"%d\" height=\"%d\" "
                       "fill=\"", x.left + s * CELL, y0 + t * CELL, CELL, CELL);
            put_fill(f, w);
            fputs("\"><title>", f);
            put_escaped(f, b->out[t]);
            fputs(" \xe2\x86\x90 ", f); /* the output token attends to the source token */
            put_escaped(f, b->src[s]);
            fprintf(f, ": %.3f</title></rect>\n", w);
        }
    fputs("</g>\n", f);
}

int s2s_attnmap_svg(FILE *f, const char *title, const s2s_attnmap_block *b, size_t n)
{
    double width = fmax(320, text_width(title) + 2 * PAD), height = HEAD + PAD;
    for (size_t i = 0; i < n; i++) {
        block_box x = measure(&b[i]);
        width = fmax(width, x.width);
        height += x.height;
    }
    fprintf(f, "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n"
               "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"%.0f\" height=\"%.0f\" "
               "viewBox=\"0 0 %.0f %.0f\" font-family=\"monospace\" font-size=\"%d\">\n",
            ceil(width), ceil(height), ceil(width), ceil(height), FONT);
    fputs("<style>.head{font-weight:bold}"
          ".cell{stroke:#ddd;stroke-width:0.5}</style>\n", f);
    fprintf(f, "<rect width=\"100%%\" height=\"100%%\" fill=\"white\"/>\n"
               "<text class=\"head\" x=\"%d\" y=\"%d\">", PAD, HEAD - 8);
    put_escaped(f, title);
    fputs("</text>\n", f);
    double y = HEAD + PAD;
    for (size_t i = 0; i < n; i++) {
        put_block(f, &b[i], i, y);
        y += measure(&b[i]).height;
    }
    fputs("</svg>\n", f);
    return ferror(f) ? -1 : 0;
}

/* The map goes to a temporary beside path, renamed over it once whole: a
 * write that failed (a full disk) or was interrupted (Ctrl-C during the
 * map of many long sentences) left a truncated SVG where the previous map
 * was. A device or a pipe (/dev/stdout) is written in place, and so is a
 * link (the rename put a file in the link's place, its target unchanged). */
int s2s_attnmap_write(const char *path, const char *title, const s2s_attnmap_block *b, size_t n,
                      char *err, size_t err_size)
{
    struct stat st;
    char tmp[PATH_MAX + 32];
    int in_place = lstat(path, &st) == 0 && !S_ISREG(st.st_mode); /* a device, pipe or link */
    if (!in_place && tg_checkpoint_temp_path(path, tmp, sizeof tmp) != 0) {
        snprintf(err, err_size, "cannot write --attention-map %.200s...: path too long", path);
        return -1;
    }
    const char *to = in_place ? path : tmp;
    if (!in_place) tgx_write_begin(path); /* a Ctrl-C during it removes the temporary */
    FILE *f = fopen(to, "w");
    int rc = f ? s2s_attnmap_svg(f, title, b, n) : -1, saved = errno;
    if (f && fclose(f) != 0 && rc == 0) rc = -1, saved = errno;
    if (rc == 0 && !in_place && rename(tmp, path) != 0) rc = -1, saved = errno;
    if (rc != 0 && !in_place) unlink(tmp);
    if (!in_place) tgx_write_end();
    if (rc != 0)
        snprintf(err, err_size, "%s --attention-map %s: %s%s", f ? "writing" : "cannot write",
                 path, strerror(saved), access(path, F_OK) == 0 && !in_place
                                            ? " (the file there is left as it was)" : "");
    return rc;
}

/* ------------------------------------------------------------------ from a model */

void s2s_attnmap_init(s2s_attnmap *a) { memset(a, 0, sizeof *a); }

void s2s_attnmap_free(s2s_attnmap *a)
{
    for (size_t i = 0; i < a->n; i++) {
        free((void *)a->blocks[i].src); /* src and out share one array */
        free((void *)a->blocks[i].w);
    }
    free(a->blocks);
    memset(a, 0, sizeof *a);
}

static const char *word(const s2s_vocab *v, int id)
{
    return id >= 0 && id < v->n ? v->words[id] : "<unk>";
}

/* Appends sentence i's block: labels and rows (weights taken over), and
 * its number (0: its place); 1 kept, 0 not (the map is full: w stays the
 * caller's), -1 out of memory. */
static int append(s2s_attnmap *a, const s2s_vocab *vs, const s2s_vocab *vt, const int *src,
                  int S, const int *out, int out_len, tg_real *w, int rows, long number)
{
    size_t cells = (size_t)rows * (size_t)S;
    if (a->full || cells > S2S_ATTNMAP_MAX_CELLS - a->cells) {
        a->full = 1;
        return 0;
    }
    if (a->n == a->cap) {
        size_t cap = a->cap ? 2 * a->cap : 8;
        s2s_attnmap_block *nb = realloc(a->blocks, cap * sizeof *nb);
        if (!nb) return -1;
        a->blocks = nb, a->cap = cap;
    }
    const char **labels = malloc(((size_t)S + (size_t)rows) * sizeof *labels);
    if (!labels) return -1;
    for (int s = 0; s < S; s++) labels[s] = word(vs, src[s]);
    for (int t = 0; t < rows; t++)
        labels[S + t] = t < out_len ? word(vt, out[t]) : word(vt, S2S_EOS);
    /* the rows used, not max_len's (--translate keeps every line's block) */
    tg_real *kept = rows > 0 ? realloc(w, (size_t)rows * (size_t)S * sizeof *w) : NULL;
    if (kept) w = kept;
    a->blocks[a->n++] = (s2s_attnmap_block){S, rows, labels, labels + S, w, number};
    a->cells += cells;
    return 1;
}

int s2s_attnmap_decode(s2s_attnmap *a, tg_tape *t, const s2s_model *m, const s2s_vocab *vs,
                       const s2s_vocab *vt, const int *const *src, const int *src_len, size_t n,
                       const long *numbers, int max_len, int batch)
{
    if (m->cfg.attention == TG_ATTN_NONE) return -2;
    snprintf(a->kind, sizeof a->kind, "%s", tg_attn_kind_name(m->cfg.attention));
    int rc = -1, *out_len = calloc(n + 1, sizeof *out_len), *rows = calloc(n + 1, sizeof *rows);
    int **out = calloc(n + 1, sizeof *out);
    tg_real **w = calloc(n + 1, sizeof *w);
    size_t ok = 0;
    for (; out && w && ok < n; ok++) {
        out[ok] = malloc((size_t)max_len * sizeof **out);
        w[ok] = malloc((size_t)max_len * (size_t)src_len[ok] * sizeof **w);
        if (!out[ok] || !w[ok]) break;
    }
    if (out_len && rows && ok == n)
        rc = s2s_greedy_weights(t, m, src, src_len, n, max_len, batch, out, out_len, w, rows);
    for (size_t i = 0; rc == 0 && i < n; i++) {
        int kept = append(a, vs, vt, src[i], src_len[i], out[i], out_len[i], w[i], rows[i],
                          numbers ? numbers[i] : 0);
        if (kept < 0) rc = -1;
        else if (kept) w[i] = NULL; /* the block owns it */
    }
    for (size_t i = 0; out && w && i <= ok && i < n; i++) free(out[i]), free(w[i]);
    free(out), free(w), free(out_len), free(rows);
    return rc;
}

int s2s_attnmap_save(const s2s_attnmap *a, const char *path, char *err, size_t err_size)
{
    char title[128];
    snprintf(title, sizeof title, "attention weights (%s attention, greedy decode): output "
                                  "tokens down, source tokens across", a->kind);
    return s2s_attnmap_write(path, title, a->blocks, a->n, err, err_size);
}

int s2s_attnmap_decode_save(const char *path, tg_tape *t, const s2s_model *m,
                            const s2s_vocab *vs, const s2s_vocab *vt, const int *const *src,
                            const int *src_len, size_t n, int max_len, int batch, char *err,
                            size_t err_size)
{
    s2s_attnmap a;
    s2s_attnmap_init(&a);
    int rc = s2s_attnmap_decode(&a, t, m, vs, vt, src, src_len, n, NULL, max_len, batch);
    if (rc == -2)
        snprintf(err, err_size, "--attention-map needs a model with attention (this one has "
                                "--attention none)");
    else if (rc != 0)
        snprintf(err, err_size, "out of memory decoding the --attention-map sentences");
    else
        rc = s2s_attnmap_save(&a, path, err, err_size);
    s2s_attnmap_free(&a);
    return rc;
}
