/* The engine's side of the op contract, for op authors (private to graph/
 * and ops/; layers and programs see tapegrad.h only).
 *
 * The engine knows no op: a node carries the VJP that replays it, and an op
 * that keeps state per tape (matmul's packed weights and deferred weight-
 * gradient products) registers it as a tape extension with its own hooks. The op list,
 * its registry and the ops' shared helpers live in ops/tg_op.h. */
#ifndef TG_ENGINE_H
#define TG_ENGINE_H

#include "tapegrad.h"

#define TG_MAX_INPUTS 3

struct tg_node;
/* Adds into the gradients of node->in[*] whose grad != NULL, reading
 * node->out->grad and only what the op saved. Never overwrites, except an
 * input's gradient the op claimed and owns alone (tg_claim_grad_write). */
typedef void (*tg_vjp_fn)(const struct tg_node *node, int threads);

/* One recorded op. Everything it points to lives in the step arena. */
typedef struct tg_node {
    int op;           /* the op's index in its registry (ops/tg_op.h), for messages */
    tg_vjp_fn vjp;    /* what tg_backward runs for this node */
    int n_in;
    tg_tensor *in[TG_MAX_INPUTS];
    tg_tensor *out;
    int iarg[4];      /* small integer arguments (transpose flags, offsets, counts) */
    double farg;      /* a real argument (scale factor) */
    const int *ints;  /* saved integer array (ids, targets) or NULL */
    tg_real *saved;   /* op-specific saved values or NULL */
    tg_tensor **many; /* inputs of an n-ary op (stack_rows), arena copy */
    struct tg_node *prev; /* the node recorded before this one */
    struct tg_tape *tape; /* the tape it was recorded on */
} tg_node;

/* ---- recording */

/* The output tensor of an op: arena data (uninitialised), and a grad buffer
 * when needs_grad and the tape records. */
tg_tensor *tg_op_output(tg_tape *t, int rows, int cols, int needs_grad);
/* True when an op over these inputs must be recorded. */
int tg_op_records(const tg_tape *t, const tg_tensor *a, const tg_tensor *b, const tg_tensor *c);
/* Appends a node (arena) for out, replayed by vjp; returns it for the caller
 * to fill. Ops call tg_op_record (ops/tg_op.h), which looks vjp up. */
tg_node *tg_node_record(tg_tape *t, int op, tg_vjp_fn vjp, tg_tensor *out, int n_in, tg_tensor *a,
                        tg_tensor *b, tg_tensor *c);
/* Marks x as one more input of a node. tg_node_record does it for in[]; an
 * op that keeps inputs elsewhere (stack_rows' list) calls it for each, since
 * a tensor's use count decides whether backward zeroes its gradient. */
void tg_node_uses(tg_tensor *x);

/* ---- gradients a VJP may write instead of add to
 *
 * Backward zeroes every op output's gradient before the sweep, so VJPs can
 * add. For a big output with one consumer (the N x V logits of a softmax
 * cross-entropy) that is a pass over memory the VJP then reads back. So an
 * op whose VJP fills an input's whole gradient marks that input when it
 * records (tg_claim_grad_write); if the input then has no other use, owns its
 * gradient and is not a leaf, backward leaves its gradient unzeroed and the
 * VJP must write every element of it (=, zeros where it has nothing). The VJP
 * asks tg_grad_writes at replay, when the use count is final. A leaf is never
 * marked: a parameter is an input of every shard's tape at once, on other
 * threads (as tg_node_uses leaves it alone). */
static inline void tg_claim_grad_write(tg_tensor *x)
{
    if (!(x->flags & TG_F_LEAF)) x->flags |= TG_F_GRAD_WRITER;
}
static inline int tg_grad_writes(const tg_tensor *x)
{
    unsigned f = x->flags & (TG_F_OWNS_GRAD | TG_F_LEAF | TG_F_SHARED | TG_F_GRAD_WRITER);
    return x->grad && f == (TG_F_OWNS_GRAD | TG_F_GRAD_WRITER);
}

/* ---- per-tape state owned by an op
 *
 * An extension is a static description (its address is its key); the tape
 * makes its state on the first tg_tape_ext_state call and runs its hooks:
 * on_reset at tg_tape_reset, after_sweep at the end of every backward sweep
 * (after the last VJP, before the arena goes back to its level at the start
 * of the sweep: the hook may take arena room with tg_tape_try_alloc), settle
 * during a sweep (below), and free at tg_tape_free. Any hook may be NULL.
 *
 * An extension that holds back additions to an op output's gradient during
 * a sweep (matmul's deferred weight gradients, when the weight is a column
 * slice of a parameter) marks that output (tg_mark_grad_pending): before the
 * VJP of the node that made it, the one VJP that reads its gradient, the
 * sweep clears the mark and runs every extension's settle hook with it, which
 * must add everything held for it. A leaf's gradient is read by no VJP:
 * after_sweep is soon enough. */
typedef struct tg_tape_ext {
    const char *name;
    void *(*make)(void); /* NULL: out of memory */
    void (*free)(void *state);
    void (*on_reset)(void *state);
    void (*after_sweep)(tg_tape *t, void *state);
    void (*settle)(tg_tape *t, void *state, const tg_tensor *x);
} tg_tape_ext;

/* x is an input of a node being replayed, hence the tape's to mark (VJPs
 * see their inputs as const). */
static inline void tg_mark_grad_pending(const tg_tensor *x)
{
    ((tg_tensor *)x)->flags |= TG_F_GRAD_PENDING;
}

/* A tape holds this many extensions; more is a bug in the op set. */
#define TG_TAPE_EXT_SLOTS 4
/* ext's state on t, made on first use. NULL when make failed (no memory):
 * the op must then do without it. */
void *tg_tape_ext_state(tg_tape *t, const tg_tape_ext *ext);

/* 1 inside tg_backward's sweep (VJPs and after_sweep hooks). */
int tg_tape_sweeping(const tg_tape *t);

/* A panel cache (graph/tg_panels.h, made by tg_panel_cache_new_shared) for
 * the parameters' panels (TG_F_PARAM), shared by the tapes of a minibatch's
 * shards while tg_workers_run runs them (graph/parallel.c sets it, then
 * NULL): a weight is packed once a step instead of once a shard, and the
 * values cannot change in between. NULL: each tape packs its own. */
struct tg_panel_cache;
void tg_tape_share_panels(tg_tape *t, struct tg_panel_cache *c);
struct tg_panel_cache *tg_tape_shared_panels(const tg_tape *t);
/* 1 while t holds its parameters' panels (tg_tape_hold_param_panels): its
 * store is then its own, not a minibatch's. */
int tg_tape_holds_param_panels(const tg_tape *t);
/* Arena room like tg_tape_alloc, or NULL when there is none (no message):
 * for optional bookkeeping that has a slower path without it. */
void *tg_tape_try_alloc(tg_tape *t, size_t bytes);
/* During a sweep, scratch room: tg_tape_scratch_mark, then try_alloc, and
 * tg_tape_scratch_release(t, mark) gives back everything taken since the
 * mark (which nothing may use afterwards), so a settle hook's copies do not
 * hold arena room for the rest of the sweep. */
size_t tg_tape_scratch_mark(const tg_tape *t);
void tg_tape_scratch_release(tg_tape *t, size_t mark);

#endif
