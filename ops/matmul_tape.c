/* matmul's state per tape (a tape extension, graph/tg_engine.h):
 *   - the weight-panel cache: leaf matrices packed once per tape for small-row
 *     products (graph/tg_panels.h), emptied at reset and after every sweep
 *     (an optimizer step may change the leaves next: pack them again);
 *   - weight-gradient products of few rows deferred during a sweep (tg_op.h)
 *     and added after it (a leaf's) or before its producer's VJP (an op
 *     output's, tg_tape_ext's settle), all of a weight's with one GEMM.
 * The engine sees neither: it runs this file's hooks. */
#include <stdlib.h>
#include <string.h>

#include "tg_op.h"
#include "tg_panels.h"

/* A weight-gradient product handed over by a VJP (tg_defer_rows): g is rows
 * x n, x rows x k, both contiguous; it adds into w's gradient from column c0
 * on. */
typedef struct deferred {
    const tg_tensor *w;
    int c0, trans, n, k, rows, done;
    const tg_real *g, *x;
    struct deferred *next;
} deferred;

typedef struct matmul_state {
    tg_panel_cache *panels;           /* NULL: out of memory, BLAS path */
    deferred *defer_head, *defer_tail; /* in the order the sweep handed them over */
} matmul_state;

static void *state_make(void)
{
    matmul_state *s = calloc(1, sizeof *s);
    if (s) s->panels = tg_panel_cache_new();
    return s;
}

static void state_free(void *p)
{
    matmul_state *s = p;
    tg_panel_cache_free(s->panels);
    free(s);
}

static void state_reset(void *p)
{
    matmul_state *s = p;
    tg_panel_cache_clear(s->panels);
    s->defer_head = s->defer_tail = NULL;
}

static void after_sweep(tg_tape *t, void *p);
static void settle(tg_tape *t, void *p, const tg_tensor *x);

static const tg_tape_ext matmul_ext = {
    "matmul", state_make, state_free, state_reset, after_sweep, settle,
};

tg_panel_cache *tg_matmul_panel_cache(tg_tape *t)
{
    matmul_state *s = tg_tape_ext_state(t, &matmul_ext);
    return s ? s->panels : NULL;
}

/* A parameter on a tape that records comes again, at every step of an
 * unroll, before the sweep's end clears the panels (backward's products
 * take its other transpose: a slot of its own, asked at every step too).
 * So it is packed at its first product, which otherwise ran on BLAS (W_hh's
 * first step, 32 rows: 3-4% of config f's step, Zen 5); a weight used once
 * a tape with few rows (an output layer of 25 rows, config d) pays a
 * packing for it. Without recording (a decoder's step on a tape reset every
 * step) weights are used once a tape, and such products stay on BLAS,
 * unless the tape holds its parameters' panels across resets
 * (tg_tape_hold_param_panels): they then outlive the resets, so the first
 * product packs them too. The choice is the tape's, never the store's: a
 * shard's tape chooses as it would alone (tests/parallel/test_panel_store.c). */
const tg_real *tg_matmul_panels_of(tg_tape *t, const tg_tensor *b, const tg_panel_src *win,
                                   int tb, int rows)
{
    int param = (b->flags & TG_F_PARAM) != 0;
    tg_panel_cache *store = param ? tg_tape_shared_panels(t) : NULL;
    return tg_panels_of_stored(tg_matmul_panel_cache(t), store, win, tb, rows,
                               param && (tg_tape_grad_enabled(t) || tg_tape_holds_param_panels(t)));
}

/* ---- deferred weight gradients */

int tg_defer_rows(const tg_node *node, const tg_tensor *w, int c0, int trans, const tg_real *g,
                  int n, const tg_real *x, int k, int rows)
{
    tg_tape *t = node->tape;
    if (!t || !tg_tape_sweeping(t)) return 0;
    matmul_state *s = tg_tape_ext_state(t, &matmul_ext);
    deferred *d = s ? tg_tape_try_alloc(t, sizeof *d) : NULL;
    if (!d) return 0;
    *d = (deferred){w, c0, trans, n, k, rows, 0, g, x, NULL};
    if (s->defer_tail)
        s->defer_tail->next = d;
    else
        s->defer_head = d;
    s->defer_tail = d;
    if (!(w->flags & TG_F_LEAF)) tg_mark_grad_pending(w);
    return 1;
}

static int same_target(const deferred *a, const deferred *b)
{
    return a->w == b->w && a->c0 == b->c0 && a->trans == b->trans && a->n == b->n &&
           a->k == b->k;
}

/* One product as it would have been added in the sweep. */
static void add_rows(const deferred *d, int threads)
{
    tg_real *w = d->w->grad + d->c0;
    if (!d->trans) /* w (k x n) += x^T g */
        tg_gemm(1, 0, d->k, d->n, d->rows, 1, d->x, d->k, d->g, d->n, 1, w, d->w->cols, threads);
    else /* w (n x k) += g^T x */
        tg_gemm(1, 0, d->n, d->k, d->rows, 1, d->g, d->n, d->x, d->k, 1, w, d->w->cols, threads);
}

/* The products for first's target that are not added yet, in hand-over
 * order: d = first, then next_for(first, d) until NULL. */
static deferred *next_for(const deferred *first, deferred *d)
{
    for (d = d->next; d; d = d->next)
        if (!d->done && same_target(d, first)) return d;
    return NULL;
}

/* The products' r rows listed without copying them (row q of G and of X),
 * added with one product on the weight-gradient kernel; 0 when it does not
 * take this shape (tg_gemm_tn_taken) or the arena has no room for the
 * lists. The same bits as the stacked GEMM on that kernel. */
static int add_listed(tg_tape *t, deferred *first, int r)
{
    int n = first->n, k = first->k, threads = tg_tape_threads(t);
    int wm = first->trans ? n : k, wn = first->trans ? k : n; /* the gradient's shape */
    if (!tg_gemm_tn_taken(wm, wn, r)) return 0;
    const tg_real **g = tg_tape_try_alloc(t, (size_t)r * sizeof *g);
    const tg_real **x = g ? tg_tape_try_alloc(t, (size_t)r * sizeof *x) : NULL;
    tg_real *room = x ? tg_tape_try_alloc(t, tg_gemm_tn_room(wm, wn, r, threads)) : NULL;
    if (!room) return 0;
    int q = 0;
    for (deferred *d = first; d; d = next_for(first, d))
        for (int i = 0; i < d->rows; i++, q++) {
            g[q] = d->g + (size_t)i * n;
            x[q] = d->x + (size_t)i * k;
        }
    tg_real *w = first->w->grad + first->c0;
    int ok = first->trans /* w (n x k) += G^T X, else w (k x n) += X^T G */
                 ? tg_gemm_tn_panels_rows(n, k, r, g, x, 1, w, first->w->cols, threads, room)
                 : tg_gemm_tn_panels_rows(k, n, r, x, g, 1, w, first->w->cols, threads, room);
    for (deferred *d = first; ok && d; d = next_for(first, d)) d->done = 1;
    return ok;
}

/* The products stacked into r rows of G (r x n) and X (r x k), added with
 * one GEMM; 0 when the arena has no room for the copies. */
static int add_stacked(tg_tape *t, deferred *first, int r)
{
    int n = first->n, k = first->k, i = 0;
    tg_real *G = tg_tape_try_alloc(t, (size_t)r * n * sizeof *G);
    tg_real *X = G ? tg_tape_try_alloc(t, (size_t)r * k * sizeof *X) : NULL;
    if (!X) return 0;
    for (deferred *d = first; d; d = next_for(first, d)) {
        memcpy(G + (size_t)i * n, d->g, (size_t)d->rows * n * sizeof *G);
        memcpy(X + (size_t)i * k, d->x, (size_t)d->rows * k * sizeof *X);
        i += d->rows;
        d->done = 1;
    }
    tg_real *w = first->w->grad + first->c0;
    if (!first->trans) /* w (k x n) += X^T G */
        tg_gemm(1, 0, k, n, r, 1, X, k, G, n, 1, w, first->w->cols, tg_tape_threads(t));
    else /* w (n x k) += G^T X */
        tg_gemm(1, 0, n, k, r, 1, G, n, X, k, 1, w, first->w->cols, tg_tape_threads(t));
    return 1;
}

/* Every product for first's target, added with one product over all their
 * rows: listed in place where the weight-gradient kernel takes it, else
 * stacked into copies; one at a time when the arena has no room for either,
 * or when there is only one (the same GEMM without copying). */
static void flush_target(tg_tape *t, deferred *first)
{
    int r = 0, count = 0;
    for (deferred *d = first; d; d = next_for(first, d)) r += d->rows, count++;
    size_t mark = tg_tape_scratch_mark(t); /* the lists and stacks are dead after the GEMM */
    if (count < 2 || !(add_listed(t, first, r) || add_stacked(t, first, r)))
        for (deferred *d = first; d; d = next_for(first, d)) {
            d->done = 1;
            add_rows(d, tg_tape_threads(t));
        }
    tg_tape_scratch_release(t, mark);
}

/* Before the VJP of the node that made x (an op output marked by
 * tg_defer_rows): x's deferred products, which that VJP reads. */
static void settle(tg_tape *t, void *p, const tg_tensor *x)
{
    matmul_state *s = p;
    for (deferred *d = s->defer_head; d; d = d->next)
        if (!d->done && d->w == x) flush_target(t, d);
}

/* After the last VJP: add the deferred products (the engine gives the arena
 * they used back after this hook), then drop the packed leaves. */
static void after_sweep(tg_tape *t, void *p)
{
    matmul_state *s = p;
    for (deferred *d = s->defer_head; d; d = d->next)
        if (!d->done) flush_target(t, d);
    state_reset(s);
}
