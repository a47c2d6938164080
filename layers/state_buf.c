/* Truncated BPTT: final states copied out of one tape (values only, so the
 * next window starts from them without their history) and loaded as
 * constants on the next. */
#include <stdlib.h>
#include <string.h>

#include "tg_layers.h"

int tg_state_buf_init(tg_state_buf *b, const tg_cell_kind *kind, int layers, int batch,
                      int hidden)
{
    size_t n = (size_t)layers * (size_t)batch * (size_t)hidden;
    memset(b, 0, sizeof *b);
    if (layers < 1 || batch < 1 || hidden < 1) return -1;
    b->layers = layers;
    b->batch = batch;
    b->hidden = hidden;
    b->has_c = kind->has_c;
    b->h = calloc(n, sizeof *b->h);
    b->c = b->has_c ? calloc(n, sizeof *b->c) : NULL;
    if (!b->h || (b->has_c && !b->c)) {
        tg_state_buf_free(b);
        return -1;
    }
    return 0;
}

void tg_state_buf_free(tg_state_buf *b)
{
    free(b->h);
    free(b->c);
    b->h = b->c = NULL;
}

void tg_state_buf_zero(tg_state_buf *b)
{
    size_t n = (size_t)b->layers * b->batch * b->hidden;
    memset(b->h, 0, n * sizeof *b->h);
    if (b->c) memset(b->c, 0, n * sizeof *b->c);
}

static void copy_out(tg_real *dst, const tg_tensor *x, const tg_state_buf *b, const char *what)
{
    TG_CHECK(x && x->rows == b->batch && x->cols == b->hidden, TG_HERE, "state_buf_store",
             "%s must be %dx%d", what, b->batch, b->hidden);
    memcpy(dst, x->data, tg_numel(x) * sizeof *dst);
}

void tg_state_buf_store(tg_state_buf *b, const tg_state *final)
{
    size_t n = (size_t)b->batch * b->hidden;
    for (int l = 0; l < b->layers; l++) {
        copy_out(b->h + l * n, final[l].h, b, "h");
        if (b->has_c) copy_out(b->c + l * n, final[l].c, b, "c");
    }
}

static void copy_rows(tg_real *dst, const tg_tensor *x, const tg_state_buf *b, const int *rows,
                      const char *what)
{
    TG_CHECK(x && x->cols == b->hidden, TG_HERE, "state_buf_store_rows", "%s must have %d columns",
             what, b->hidden);
    for (int r = 0; r < b->batch; r++) {
        TG_CHECK(rows[r] >= 0 && rows[r] < x->rows, TG_HERE, "state_buf_store_rows",
                 "rows[%d] = %d outside the %d rows of %s", r, rows[r], x->rows, what);
        memcpy(dst + (size_t)r * b->hidden, x->data + (size_t)rows[r] * b->hidden,
               (size_t)b->hidden * sizeof *dst);
    }
}

void tg_state_buf_store_rows(tg_state_buf *b, const tg_state *final, const int *rows)
{
    size_t n = (size_t)b->batch * b->hidden;
    for (int l = 0; l < b->layers; l++) {
        copy_rows(b->h + l * n, final[l].h, b, rows, "h");
        if (b->has_c) copy_rows(b->c + l * n, final[l].c, b, rows, "c");
    }
}

/* Rows rows[0..n-1] of the layers of x (layers x batch x hidden) to rows
 * 0..n-1 of layers of n rows, in place: rows ascend, so every row is read
 * before its place is written. */
static void keep_rows(tg_real *x, const tg_state_buf *b, const int *rows, int n)
{
    size_t H = (size_t)b->hidden;
    for (int l = 0; l < b->layers; l++)
        for (int r = 0; r < n; r++)
            memmove(x + ((size_t)l * n + r) * H, x + ((size_t)l * b->batch + rows[r]) * H,
                    H * sizeof *x);
}

void tg_state_buf_keep_rows(tg_state_buf *b, const int *rows, int n)
{
    TG_CHECK(n >= 1 && n <= b->batch, TG_HERE, "state_buf_keep_rows",
             "%d rows kept of a buffer of %d", n, b->batch);
    for (int r = 0; r < n; r++)
        TG_CHECK(rows[r] >= r && rows[r] < b->batch && (r == 0 || rows[r] > rows[r - 1]),
                 TG_HERE, "state_buf_keep_rows", "rows[%d] = %d: want ascending rows of %d", r,
                 rows[r], b->batch);
    keep_rows(b->h, b, rows, n);
    if (b->c) keep_rows(b->c, b, rows, n);
    b->batch = n;
}

void tg_state_buf_load(const tg_state_buf *b, tg_tape *t, tg_state *init)
{
    size_t n = (size_t)b->batch * b->hidden;
    for (int l = 0; l < b->layers; l++) {
        init[l].h = tg_tensor_from(t, b->batch, b->hidden, b->h + l * n);
        init[l].c = b->has_c ? tg_tensor_from(t, b->batch, b->hidden, b->c + l * n) : NULL;
    }
}
