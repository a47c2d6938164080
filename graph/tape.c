/* The tape and its step arena.
 *
 * The arena is one block bump-allocated in 64-byte steps and rewound in O(1)
 * by tg_tape_reset. Nodes are arena records linked to the previous one, so
 * the recording order (a topological order) replayed from the last node is
 * the backward order: no recursion, no sort, no hash set. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "tg_engine.h"
#include "tg_panels.h"

#define TG_ALIGN 64

struct tg_tape {
    unsigned char *base;
    size_t capacity, used, high_water;
    tg_node *last;
    size_t nodes;
    int grad_enabled;
    int threads;
    int sweeping; /* inside tg_backward's sweep */
    struct tg_panel_cache *shared_panels; /* parameters' panels, shared by shards (tg_engine.h) */
    struct tg_panel_cache *held_panels;   /* tg_tape_hold_param_panels's, owned */
    int hold_depth;                       /* holds not yet released */
    void (*on_overflow)(void *ctx, size_t need); /* tg_tape_on_overflow */
    void *overflow_ctx;
    /* per-tape state of ops (tg_engine.h), in the order first asked for */
    int n_ext;
    const tg_tape_ext *ext[TG_TAPE_EXT_SLOTS];
    void *ext_state[TG_TAPE_EXT_SLOTS];
};

tg_tape *tg_tape_new(size_t arena_bytes)
{
    if (arena_bytes > SIZE_MAX - TG_ALIGN) return NULL; /* rounding up would wrap to 0 */
    tg_tape *t = calloc(1, sizeof *t);
    if (!t) return NULL;
    arena_bytes = (arena_bytes + TG_ALIGN - 1) / TG_ALIGN * TG_ALIGN;
    t->base = aligned_alloc(TG_ALIGN, arena_bytes ? arena_bytes : TG_ALIGN);
    if (!t->base) {
        free(t);
        return NULL;
    }
    t->capacity = arena_bytes;
    t->grad_enabled = 1;
    t->threads = 1;
    return t;
}

void tg_tape_free(tg_tape *t)
{
    if (!t) return;
    for (int i = 0; i < t->n_ext; i++)
        if (t->ext[i]->free) t->ext[i]->free(t->ext_state[i]);
    tg_panel_cache_free(t->held_panels);
    free(t->base);
    free(t);
}

void tg_tape_reset(tg_tape *t)
{
    t->used = 0;
    t->last = NULL;
    t->nodes = 0;
    for (int i = 0; i < t->n_ext; i++)
        if (t->ext[i]->on_reset) t->ext[i]->on_reset(t->ext_state[i]);
}

void *tg_tape_ext_state(tg_tape *t, const tg_tape_ext *ext)
{
    for (int i = 0; i < t->n_ext; i++)
        if (t->ext[i] == ext) return t->ext_state[i];
    TG_CHECK(t->n_ext < TG_TAPE_EXT_SLOTS, TG_HERE, "tape_ext",
             "no slot left for '%s': a tape holds %d op states", ext->name, TG_TAPE_EXT_SLOTS);
    void *state = ext->make();
    if (!state) return NULL; /* asked again next time; the op does without meanwhile */
    t->ext[t->n_ext] = ext;
    t->ext_state[t->n_ext++] = state;
    return state;
}

int tg_tape_sweeping(const tg_tape *t) { return t->sweeping; }

void tg_tape_set_grad(tg_tape *t, int enabled) { t->grad_enabled = enabled != 0; }
int tg_tape_grad_enabled(const tg_tape *t) { return t->grad_enabled; }
void tg_tape_set_threads(tg_tape *t, int n) { t->threads = n < 1 ? 1 : n; }
int tg_tape_threads(const tg_tape *t) { return t->threads; }
void tg_tape_share_panels(tg_tape *t, struct tg_panel_cache *c) { t->shared_panels = c; }
struct tg_panel_cache *tg_tape_shared_panels(const tg_tape *t) { return t->shared_panels; }

/* The held panels are a shared store (the shards' kind) that only this
 * tape uses: the store outlives resets, the tape's own cache does not.
 * Holds nest (a translation run holds them across its sentences, each
 * decode call across its steps); the last release clears the store but
 * keeps it to the tape's end: the tape's cache may still name it until its
 * next reset (and then sees it cleared). */
int tg_tape_hold_param_panels(tg_tape *t, int on)
{
    if (!on) {
        if (t->hold_depth == 0 || --t->hold_depth > 0) return 0;
        tg_panel_cache_clear(t->held_panels);
        t->shared_panels = NULL;
        return 0;
    }
    if (t->hold_depth > 0) {
        t->hold_depth++;
        return 0;
    }
    if (t->shared_panels) return 0; /* a shard's tape: its store already outlives resets */
    if (!t->held_panels && !(t->held_panels = tg_panel_cache_new_shared())) return -1;
    t->shared_panels = t->held_panels;
    t->hold_depth = 1;
    return 0;
}

int tg_tape_holds_param_panels(const tg_tape *t) { return t->hold_depth > 0; }

size_t tg_tape_arena_used(const tg_tape *t) { return t->used; }

size_t tg_tape_scratch_mark(const tg_tape *t) { return t->used; }

void tg_tape_scratch_release(tg_tape *t, size_t mark)
{
    if (t->sweeping && mark <= t->used) t->used = mark;
}
size_t tg_tape_arena_high_water(const tg_tape *t) { return t->high_water; }
size_t tg_tape_arena_capacity(const tg_tape *t) { return t->capacity; }
size_t tg_tape_node_count(const tg_tape *t) { return t->nodes; }

/* bytes rounded up to the alignment; a size that would wrap around is too big anyway */
static size_t aligned_size(size_t bytes)
{
    return bytes > SIZE_MAX - TG_ALIGN ? SIZE_MAX : (bytes + TG_ALIGN - 1) / TG_ALIGN * TG_ALIGN;
}

void tg_tape_on_overflow(tg_tape *t, void (*fn)(void *ctx, size_t need), void *ctx)
{
    t->on_overflow = fn;
    t->overflow_ctx = ctx;
}

void *tg_tape_try_alloc(tg_tape *t, size_t bytes)
{
    size_t need = aligned_size(bytes);
    if (need > t->capacity - t->used) return NULL;
    void *p = t->base + t->used;
    t->used += need;
    if (t->used > t->high_water) t->high_water = t->used;
    return p;
}

void *tg_tape_alloc(tg_tape *t, size_t bytes)
{
    size_t need = aligned_size(bytes);
    if (need > t->capacity - t->used) {
        if (t->on_overflow) t->on_overflow(t->overflow_ctx, need);
        fprintf(stderr,
                "tapegrad: step arena exhausted: %zu bytes needed, %zu of %zu in use; "
                "give tg_tape_new at least %zu bytes\n",
                need, t->used, t->capacity, need > SIZE_MAX - t->used ? SIZE_MAX : t->used + need);
        abort();
    }
    void *p = t->base + t->used;
    t->used += need;
    if (t->used > t->high_water) t->high_water = t->used;
    return p;
}

int *tg_tape_ints(tg_tape *t, size_t n) { return tg_tape_alloc(t, n * sizeof(int)); }

static tg_tensor *tensor_header(tg_tape *t, int rows, int cols)
{
    tg_tensor *x = tg_tape_alloc(t, sizeof *x);
    x->rows = rows;
    x->cols = cols;
    x->data = tg_tape_alloc(t, (size_t)rows * (size_t)cols * sizeof(tg_real));
    x->grad = NULL;
    x->flags = 0;
    return x;
}

tg_tensor *tg_tensor_new(tg_tape *t, int rows, int cols, int requires_grad)
{
    TG_CHECK(rows > 0 && cols > 0, TG_HERE, "tensor_new", "shape %dx%d must be positive", rows,
             cols);
    tg_tensor *x = tensor_header(t, rows, cols);
    memset(x->data, 0, tg_numel(x) * sizeof(tg_real));
    x->flags = TG_F_LEAF;
    if (requires_grad) {
        x->grad = tg_tape_alloc(t, tg_numel(x) * sizeof(tg_real));
        memset(x->grad, 0, tg_numel(x) * sizeof(tg_real));
        x->flags |= TG_F_OWNS_GRAD;
    }
    return x;
}

tg_tensor *tg_tensor_from(tg_tape *t, int rows, int cols, const tg_real *data)
{
    tg_tensor *x = tg_tensor_new(t, rows, cols, 0);
    memcpy(x->data, data, tg_numel(x) * sizeof(tg_real));
    return x;
}

tg_tensor *tg_tensor_alloc(int rows, int cols, int requires_grad)
{
    if (rows <= 0 || cols <= 0) return NULL;
    tg_tensor *x = calloc(1, sizeof *x);
    if (!x) return NULL;
    size_t n = (size_t)rows * (size_t)cols;
    x->rows = rows;
    x->cols = cols;
    x->flags = TG_F_LEAF;
    x->data = calloc(n, sizeof(tg_real));
    if (requires_grad) {
        x->grad = calloc(n, sizeof(tg_real));
        x->flags |= TG_F_OWNS_GRAD;
    }
    if (!x->data || (requires_grad && !x->grad)) {
        tg_tensor_free(x);
        return NULL;
    }
    return x;
}

void tg_tensor_free(tg_tensor *x)
{
    if (!x) return;
    free(x->data);
    free(x->grad);
    free(x);
}

/* ---- recording */

int tg_op_records(const tg_tape *t, const tg_tensor *a, const tg_tensor *b, const tg_tensor *c)
{
    return t->grad_enabled && ((a && a->grad) || (b && b->grad) || (c && c->grad));
}

tg_tensor *tg_op_output(tg_tape *t, int rows, int cols, int needs_grad)
{
    tg_tensor *x = tensor_header(t, rows, cols);
    if (needs_grad) {
        /* zeroed by the backward sweep, not here: forward-only work stays cheap */
        x->grad = tg_tape_alloc(t, tg_numel(x) * sizeof(tg_real));
        x->flags = TG_F_OWNS_GRAD;
    }
    return x;
}

tg_node *tg_node_record(tg_tape *t, int op, tg_vjp_fn vjp, tg_tensor *out, int n_in, tg_tensor *a,
                        tg_tensor *b, tg_tensor *c)
{
    tg_node *n = tg_tape_alloc(t, sizeof *n);
    memset(n, 0, sizeof *n);
    n->op = op;
    n->vjp = vjp;
    n->out = out;
    n->n_in = n_in;
    n->in[0] = a;
    n->in[1] = b;
    n->in[2] = c;
    for (int k = 0; k < n_in && k < TG_MAX_INPUTS; k++)
        if (n->in[k]) tg_node_uses(n->in[k]);
    n->prev = t->last;
    n->tape = t;
    t->last = n;
    t->nodes++;
    return n;
}

/* Leaves are left alone: a parameter is an input of every shard's tape at
 * once, on other threads, and backward never zeroes a leaf anyway. */
void tg_node_uses(tg_tensor *x)
{
    if (!(x->flags & TG_F_LEAF)) x->flags |= (x->flags & TG_F_USED) ? TG_F_SHARED : TG_F_USED;
}

/* ---- backward */

static void zero_grad(tg_tensor *x) { memset(x->grad, 0, tg_numel(x) * sizeof(tg_real)); }

/* Zeroes the op outputs' gradients, except those whose one consumer's VJP
 * writes them (tg_grad_writes), when that consumer is replayed: the nodes
 * after `from` are not, so their writers' inputs are zeroed too. */
static void zero_intermediate_grads(tg_tape *t, const tg_node *from)
{
    int swept = 0;
    for (tg_node *n = t->last; n; n = n->prev) {
        swept |= n == from;
        tg_tensor *o = n->out;
        if (o->grad && (o->flags & TG_F_OWNS_GRAD) && !(o->flags & TG_F_LEAF) &&
            !tg_grad_writes(o))
            zero_grad(o);
        for (int k = 0; !swept && k < n->n_in && k < TG_MAX_INPUTS; k++)
            if (n->in[k] && tg_grad_writes(n->in[k])) zero_grad(n->in[k]);
    }
}

/* The node that made y, where the replay starts: nodes recorded after it
 * cannot reach y, and their VJPs on zero gradients could still make NaN
 * (0 * inf from an overflowed exp). NULL when y is not an op output on this
 * tape (a leaf): then there is nothing to replay. */
static const tg_node *producer(const tg_tape *t, const tg_tensor *y)
{
    for (const tg_node *n = t->last; n; n = n->prev)
        if (n->out == y) return n;
    return NULL;
}

/* The extensions add what they hold back for x's gradient (tg_engine.h). */
static void settle(tg_tape *t, tg_tensor *x)
{
    x->flags &= ~TG_F_GRAD_PENDING;
    for (int i = 0; i < t->n_ext; i++)
        if (t->ext[i]->settle) t->ext[i]->settle(t, t->ext_state[i], x);
}

/* The reverse scan. Ops' after-sweep hooks may take arena room above its
 * level at the start (matmul's deferred products): that room is dead once
 * they return, and the level goes back, so repeated backward passes over one
 * tape do not use it up. */
static void sweep(tg_tape *t, const tg_node *from)
{
    size_t level = t->used;
    t->sweeping = 1;
    for (const tg_node *n = from; n; n = n->prev) {
        if (n->out->flags & TG_F_GRAD_PENDING) settle(t, n->out);
        n->vjp(n, t->threads);
    }
    for (int i = 0; i < t->n_ext; i++)
        if (t->ext[i]->after_sweep) t->ext[i]->after_sweep(t, t->ext_state[i]);
    t->sweeping = 0;
    t->used = level;
}

void tg_backward_seeded_(tg_tape *t, tg_tensor *y, const tg_real *seed, tg_src at)
{
    TG_CHECK(y->grad != NULL, at, "backward",
             "the %dx%d tensor depends on no parameter, or was made in no-grad mode", y->rows,
             y->cols);
    const tg_node *from = producer(t, y);
    zero_intermediate_grads(t, from);
    for (size_t i = 0; i < tg_numel(y); i++) y->grad[i] += seed[i];
    sweep(t, from);
}

void tg_backward_(tg_tape *t, tg_tensor *loss, tg_src at)
{
    TG_CHECK(loss->rows == 1 && loss->cols == 1, at, "backward", "loss must be 1x1, got %dx%d",
             loss->rows, loss->cols);
    const tg_real one = 1;
    tg_backward_seeded_(t, loss, &one, at);
}
