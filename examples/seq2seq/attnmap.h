/* --attention-map: attention weights as a picture a browser opens (SVG).
 *
 * One block per sentence: the source tokens across the top, the output
 * tokens down the left (the last row, "<eos>", is the step that ended the
 * sentence), one cell per weight, white (0) to dark blue (1), the weight in
 * the cell's tooltip. Labels are XML-escaped (& < > " ' and control
 * characters; invalid UTF-8 becomes U+FFFD), so any token is safe.
 *
 * The weights come from greedy decoding (s2s_greedy_weights): a beam's
 * weights belong to many hypotheses, a map shows one; the title says so. */
#ifndef S2S_ATTNMAP_H
#define S2S_ATTNMAP_H

#include <stddef.h>
#include <stdio.h>

#include "model.h"
#include "pairs.h"

/* The most sentences --translate's map keeps (as many as --show allows):
 * each holds up to --max-len x 1000 weights, and a stdin of millions of
 * lines would otherwise grow the map, and the SVG, until memory ends. */
#define S2S_ATTNMAP_MAX_SENTENCES 1000
/* And the most weights (cells) it keeps in all, an SVG of at most about
 * 70 MB (130 bytes a cell): 1000 sentences of 20 x 25 fit, where a few
 * lines of 1000 tokens decoded to --max-len 1000 made SVGs of gigabytes
 * (one is a million cells, 131 MB). The first sentence that would pass it
 * ends the map; the rest are still translated. */
#define S2S_ATTNMAP_MAX_CELLS ((size_t)1 << 19)

/* One sentence: T output rows of S source weights (row-major, T x S). */
typedef struct s2s_attnmap_block {
    int S, T;
    const char *const *src; /* S labels */
    const char *const *out; /* T labels */
    const tg_real *w;       /* T * S weights, expected in 0..1 (clamped) */
    long number;            /* "sentence N": an input line's number; 0: the block's place */
} s2s_attnmap_block;

/* Writes the blocks as one SVG document (title on top) to f. 0, or -1
 * when a write failed. */
int s2s_attnmap_svg(FILE *f, const char *title, const s2s_attnmap_block *b, size_t n);

/* The same into the file path. 0, or -1 with err naming path and why. */
int s2s_attnmap_write(const char *path, const char *title, const s2s_attnmap_block *b, size_t n,
                      char *err, size_t err_size);

/* Blocks that own their weights; labels point into vocabularies that must
 * outlive the map. */
typedef struct s2s_attnmap {
    size_t n, cap;
    size_t cells; /* the blocks' weights, at most S2S_ATTNMAP_MAX_CELLS */
    int full;     /* a sentence did not fit in the cells left: no more blocks */
    s2s_attnmap_block *blocks; /* each block's src and out: one heap array */
    char kind[32];       /* the model's attention kind, for the title */
} s2s_attnmap;

void s2s_attnmap_init(s2s_attnmap *a);
void s2s_attnmap_free(s2s_attnmap *a);

/* Greedy-decodes n sources (ids of vs, src_len[i] >= 1) with their
 * attention weights on tape t and appends one block each: source labels
 * vs's words, output labels vt's words, then "<eos>" when the sentence
 * ended; numbers[i] (may be NULL) is source i's number in the map, e.g.
 * its input line (empty lines have no block). 0, -1 on out of memory, -2
 * when m has no attention. */
int s2s_attnmap_decode(s2s_attnmap *a, tg_tape *t, const s2s_model *m, const s2s_vocab *vs,
                       const s2s_vocab *vt, const int *const *src, const int *src_len, size_t n,
                       const long *numbers, int max_len, int batch);

/* a's blocks into path, titled with the attention kind and "greedy
 * decode". 0, or -1 with err set. */
int s2s_attnmap_save(const s2s_attnmap *a, const char *path, char *err, size_t err_size);

/* The program's two uses in one call each: decode n sources and save
 * (0, or -1 with err set: no attention, out of memory, an unwritable file). */
int s2s_attnmap_decode_save(const char *path, tg_tape *t, const s2s_model *m,
                            const s2s_vocab *vs, const s2s_vocab *vt, const int *const *src,
                            const int *src_len, size_t n, int max_len, int batch, char *err,
                            size_t err_size);


#endif
