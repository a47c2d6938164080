/* tapegrad — a tape-based reverse-mode autodiff engine for recurrent networks.
 *
 * Public API of the engine: tensors, the tape (with its step arena), the
 * backward sweep, parameters, the random generator and every op constructor.
 * Layers and programs include this header and nothing under ops/.
 *
 * Every op constructor is a macro that passes the caller's file:line, so a
 * misuse check (shape mismatch, bad index) names the line of *your* code:
 *     tg_matmul(t, a, b, 0, 0)  ->  tg_matmul_(t, a, b, 0, 0, TG_HERE)
 */
#ifndef TAPEGRAD_H
#define TAPEGRAD_H

#include <stddef.h>
#include <stdint.h>

#include "tg_config.h" /* tg_real: float, or double in the checking build */

#ifdef __cplusplus
extern "C" {
#endif

/* ------------------------------------------------------------------ tensor */

/* A 2-D row-major array. Rows are the batch, cols the features.
 * grad == NULL means "needs no gradient" (constants, inputs, no-grad mode). */
typedef struct tg_tensor {
    int rows, cols;
    tg_real *data;
    tg_real *grad;
    unsigned flags; /* TG_F_* below; engine-owned */
} tg_tensor;

enum {
    TG_F_OWNS_GRAD = 1u << 0, /* grad buffer is this tensor's own (not a view's) */
    TG_F_LEAF = 1u << 1,      /* made by the user or a parameter: backward never zeroes it */
    TG_F_USED = 1u << 2,      /* an input of some recorded node */
    TG_F_SHARED = 1u << 3,    /* an input of more than one node (or slot) */
    TG_F_GRAD_WRITER = 1u << 4, /* its consumer's VJP can write its gradient whole (=) */
    TG_F_GRAD_PENDING = 1u << 5, /* a tape extension holds additions to its gradient */
    TG_F_PARAM = 1u << 6,        /* a tg_params value (a replica's too), or a row view of one:
                                  * fixed while shards run */
};

static inline size_t tg_numel(const tg_tensor *x) { return (size_t)x->rows * (size_t)x->cols; }

/* Where a call came from, for always-on misuse messages. */
typedef struct tg_src {
    const char *file;
    int line;
} tg_src;
#define TG_HERE ((tg_src){__FILE__, __LINE__})

/* Misuse: prints "tapegrad: <op>: <message> (file:line)" on stderr and aborts.
 * Used by always-on checks; survives release builds. */
_Noreturn void tg_misuse(tg_src at, const char *op, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
#define TG_CHECK(cond, at, op, ...)                                                    \
    do {                                                                               \
        if (!(cond)) tg_misuse((at), (op), __VA_ARGS__);                               \
    } while (0)

/* ------------------------------------------------------------------ rng */

/* xoshiro256** — explicit state, no global generator. Plain data: copy it to
 * fork a stream, store its four words in a checkpoint to resume exactly. */
typedef struct tg_rng {
    uint64_t s[4];
} tg_rng;

void tg_rng_seed(tg_rng *r, uint64_t seed);
uint64_t tg_rng_u64(tg_rng *r);
double tg_rng_uniform(tg_rng *r);            /* [0, 1) */
double tg_rng_normal(tg_rng *r);             /* N(0, 1) */
uint32_t tg_rng_below(tg_rng *r, uint32_t n); /* [0, n), unbiased */

/* ------------------------------------------------------------------ tape */

typedef struct tg_tape tg_tape;

/* A tape owns a step arena of arena_bytes; every tensor, node and saved value
 * of a step is bump-allocated there. NULL if the arena cannot be allocated. */
tg_tape *tg_tape_new(size_t arena_bytes);
void tg_tape_free(tg_tape *t);
/* Forget every node and rewind the arena, in O(1). Tensors made on this tape
 * since the last reset become invalid. */
void tg_tape_reset(tg_tape *t);
/* No-grad mode (inference): ops compute but record nothing and make no grads. */
void tg_tape_set_grad(tg_tape *t, int enabled);
int tg_tape_grad_enabled(const tg_tape *t);
/* Parameters held fixed across resets (inference over many steps, such as
 * a decoder's step loop on a tape reset every step): while on, the weight
 * panels of the parameters (TG_F_PARAM) that products on this tape pack
 * (graph/tg_panels.h) outlive tg_tape_reset, so a weight is packed once for
 * the whole loop. Off, a weight used once a tape stays on BLAS, which packs
 * it again at every call (most of a decoding step's time). While on, every
 * product A op(W) of a parameter W (or of a row view of one) that the panels
 * take (tg_panels_max_rows above 0) runs on them, one row of A or thousands,
 * so a row's bits never depend on the rows beside it (a product by an op's
 * output used once, such as a column slice made at every step, stays on
 * BLAS). The caller
 * promises that no parameter's values change while it is on; turning it
 * off drops the panels. Holds nest: each on is matched by an off, and the
 * last off drops them. 0, or -1 when there is no memory for them (the
 * products then run as they would off, and the matching off does nothing). */
int tg_tape_hold_param_panels(tg_tape *t, int on);
/* Threads used inside element-wise and GEMM kernels of this tape (default 1). */
void tg_tape_set_threads(tg_tape *t, int n);
int tg_tape_threads(const tg_tape *t);
/* Threads of the BLAS library's own pool (OpenBLAS), a process-wide setting
 * of that library. Call tg_blas_set_threads(1) before running data-parallel
 * workers so that pools never nest. No-op without OpenBLAS. */
void tg_blas_set_threads(int n);
/* The GEMM kernel in use: OpenBLAS's core name (e.g. "Haswell", "SkylakeX";
 * OpenBLAS picks it at load time, OPENBLAS_CORETYPE overrides), "cblas" or
 * "fallback". For benchmark reports. */
const char *tg_blas_core(void);
/* NULL, or the OPENBLAS_CORETYPE value to suggest when OpenBLAS chose kernels
 * older than the CPU runs: it names cores by model number, and a CPU it does
 * not know (a new model, or a VM that hides it) gets its SSE3 "Prescott"
 * kernels, 3x slower than AVX2's (seen on a 16-core Xeon VM, BENCHMARKS.md).
 * How much a program loses depends on what OpenBLAS still runs: on a Xeon
 * model 207 (Prescott) the seq2seq example at its defaults trained 16-17%
 * slower (its products over few rows stay on OpenBLAS), bench's config f
 * no slower (the AVX-512 panels take all of its products), the AVX2 panels
 * 1.8x and the double build 2.7-3x slower. */
const char *tg_blas_core_advice(void);
/* The weight-panel kernel in use (graph/tg_panels.h): "avx512", "avx2", or
 * "none" (products on tg_gemm). The widest the CPU runs; the environment
 * variable TG_ISA=avx512|avx2|blas|auto, read once, overrides. For reports. */
const char *tg_panel_kernel(void);
/* What tg_panel_kernel would abort with, without aborting: 0 when TG_ISA is
 * unset, auto, blas or a kernel this CPU runs; else -1 with the reason in err
 * ("'foo' is not one of auto, avx512, avx2, blas"). For programs, to refuse
 * it at start-up as the usage error it is. */
int tg_panel_kernel_check(char *err, size_t errlen);
/* The most rows a product of width n and inner size k may have and still
 * run on the weight panels, where a row's result does not depend on the
 * rows beside it (the same bits alone and in a batch): INT_MAX on the
 * AVX-512 kernel, 191 on the AVX2 one (more run faster on OpenBLAS), 0
 * when such a product never does (no kernel, or a shape too small):
 * tg_gemm runs it then, whose rounding may depend on the row count. On a
 * tape holding its parameters' panels (tg_tape_hold_param_panels) a product
 * by a parameter runs on them with any number of rows where this is above
 * 0: a program that decodes there (seq2seq --translate, in batches as lines
 * arrive) gets outputs independent of its batches. */
int tg_panels_max_rows(int n, int k);
size_t tg_tape_arena_used(const tg_tape *t);
size_t tg_tape_arena_high_water(const tg_tape *t);
size_t tg_tape_arena_capacity(const tg_tape *t);
size_t tg_tape_node_count(const tg_tape *t);

/* Bump-allocate from the step arena (64-byte aligned). Overflow is an
 * always-on error that names the bytes needed. */
void *tg_tape_alloc(tg_tape *t, size_t bytes);
/* On overflow of t's arena, fn(ctx, bytes needed) runs first; it must not
 * return (if it does, the error above follows). A caller that measures
 * what a step needs on a throwaway tape longjmps out of it, then frees
 * the tape: an oversized step is then its answer, not the program's end.
 * NULL restores the plain error. */
void tg_tape_on_overflow(tg_tape *t, void (*fn)(void *ctx, size_t need), void *ctx);
int *tg_tape_ints(tg_tape *t, size_t n);

/* Arena tensors, zero-filled. requires_grad makes a leaf with its own grad. */
tg_tensor *tg_tensor_new(tg_tape *t, int rows, int cols, int requires_grad);
/* A constant (no grad) holding a copy of data (rows*cols values). */
tg_tensor *tg_tensor_from(tg_tape *t, int rows, int cols, const tg_real *data);

/* Heap tensors for set-up time (user-owned leaves, e.g. gradcheck inputs).
 * NULL on out of memory. */
tg_tensor *tg_tensor_alloc(int rows, int cols, int requires_grad);
void tg_tensor_free(tg_tensor *x);

/* Seeds d loss / d loss = 1 (loss must be 1x1) and replays the tape in
 * reverse. Intermediate gradients are zeroed first; leaf gradients
 * (parameters) accumulate, so zero them between steps (tg_params_zero_grad).
 * A leaf weight's contributions from matmuls of few rows (a recurrent
 * weight's per-step products) are collected during the sweep and added after it with one matrix product
 * per weight: leaf gradients are complete when backward returns, in an order
 * fixed by the tape. That bookkeeping (the rows, copied) uses the arena above
 * its level and gives it back before returning; with no room there, the
 * products are added one at a time as they come.
 * Macros, like the op constructors, so a misuse names the caller's line. */
void tg_backward_(tg_tape *t, tg_tensor *loss, tg_src at);
#define tg_backward(t, loss) tg_backward_(t, loss, TG_HERE)
/* Same, with an arbitrary seed gradient for y (numel(y) values). */
void tg_backward_seeded_(tg_tape *t, tg_tensor *y, const tg_real *seed, tg_src at);
#define tg_backward_seeded(t, y, seed) tg_backward_seeded_(t, y, seed, TG_HERE)

/* ------------------------------------------------------------------ params */

/* Parameters of a model: one contiguous block of values and one of
 * gradients, with named tensor views. Optimizers run over the flat arrays. */
typedef struct tg_params tg_params;

tg_params *tg_params_new(void);
void tg_params_free(tg_params *p);
/* Register a rows x cols parameter, zero-filled. The returned tensor stays
 * valid for the life of p (its data pointer may move while registering).
 * NULL only on out of memory. */
tg_tensor *tg_param(tg_params *p, const char *name, int rows, int cols);
/* Register and fill uniformly in [-bound, bound]. */
tg_tensor *tg_param_uniform(tg_params *p, const char *name, int rows, int cols, tg_rng *r,
                            double bound);
/* Register and fill with N(0, std^2) draws (embedding tables). */
tg_tensor *tg_param_normal(tg_params *p, const char *name, int rows, int cols, tg_rng *r,
                           double std);
size_t tg_params_count(const tg_params *p);   /* number of tensors */
size_t tg_params_numel(const tg_params *p);   /* total scalars */
tg_real *tg_params_data(tg_params *p);        /* flat values */
tg_real *tg_params_grad(tg_params *p);        /* flat gradients */
tg_tensor *tg_params_at(const tg_params *p, size_t i);
const char *tg_params_name(const tg_params *p, size_t i);
tg_tensor *tg_params_find(const tg_params *p, const char *name);
void tg_params_zero_grad(tg_params *p);
/* The sum of the squares of x[0..n) in double, in one fixed order: blocks of
 * TG_SQ_BLOCK values from x[0], each summed over 16 interleaved lanes added
 * pairwise, then the blocks' sums added in order from the first. A blocked
 * pass (tg_workers_run's reduction) gets the same bits by calling it on each
 * block and adding the results in order. tg_grad_norm is its square root. */
enum { TG_SQ_BLOCK = 2048 };
double tg_sum_squares(const tg_real *x, size_t n);

/* A replica shares the master's values and has its own gradient block: the
 * tensors a data-parallel worker records its shard with. Same order and
 * names as the master at the time of the call. NULL on out of memory.
 * Calling tg_param / tg_param_uniform on a replica returns the tensor of
 * that name (shape checked) and fills nothing, so the code that built the
 * master model builds each worker's model over the shared values. */
tg_params *tg_params_replica(const tg_params *master);
/* The i-th tensor of a replica corresponding to master tensor m. */
tg_tensor *tg_params_twin(const tg_params *replica, const tg_params *master,
                          const tg_tensor *m);

/* ------------------------------------------------------------------ data parallel */

/* Shards of a minibatch trained at once, each with its own tape and
 * parameter replica; gradients are added into the master's in shard order,
 * so results depend on the number of shards, never on the thread count. */
typedef struct tg_workers tg_workers;

/* Runs one shard: build the shard's loss on tape t with the model built over
 * params (a replica: build the worker's model once from it), call
 * tg_backward, and return the loss value (scaled as it was backpropagated,
 * e.g. by shard_rows / batch_rows so the sum over shards is the batch mean). */
typedef double (*tg_shard_fn)(int shard, tg_tape *t, tg_params *params, void *ctx);

/* NULL on bad arguments or out of memory. Make it after every parameter is
 * registered on master. */
tg_workers *tg_workers_new(tg_params *master, int shards, size_t arena_bytes);
void tg_workers_free(tg_workers *w);
int tg_workers_shards(const tg_workers *w);
tg_params *tg_workers_params(tg_workers *w, int shard);
tg_tape *tg_workers_tape(tg_workers *w, int shard);
tg_params *tg_workers_master(tg_workers *w); /* the params it was made on */
/* Runs fn for every shard on up to `threads` threads, then sets master's
 * gradient to the sum of the shards' gradients, element by element in shard
 * order (0 + g_0 + g_1 + ...: master's gradient before the call does not
 * matter, so it needs no zeroing). Returns the sum of the shards' returned
 * losses. */
double tg_workers_run(tg_workers *w, int threads, tg_shard_fn fn, void *ctx);
/* The norm of master's gradient as the last tg_workers_run set it, computed
 * while summing (tg_grad_norm's bits, without its pass over the gradient),
 * handed out once: 0 with *norm set, or -1 when no full run set the
 * gradient since the last take (or a tg_workers_run_range came after it).
 * It knows nothing of writes to the gradient after the run: a caller that
 * changes it must take tg_grad_norm instead. */
int tg_workers_take_grad_norm(tg_workers *w, double *norm);
/* Runs only shards first .. first+count-1 (same threading as tg_workers_run)
 * and adds nothing into master: each shard's gradient stays in its replica
 * (tg_params_grad(tg_workers_params(w, s))) and its loss in
 * tg_workers_loss(w, s), for a reduction done elsewhere (graph/tg_dist.h:
 * each MPI rank runs its own range of the shards). Returns the range's
 * losses summed in shard order; NAN if the range is not inside 0..shards-1. */
double tg_workers_run_range(tg_workers *w, int threads, int first, int count, tg_shard_fn fn,
                            void *ctx);
/* The loss shard's fn returned the last time that shard ran. */
double tg_workers_loss(const tg_workers *w, int shard);

/* ------------------------------------------------------------------ ops
 * Each returns a new tensor on tape t. Gradients flow to every input whose
 * grad is non-NULL. Index arrays are copied, never differentiated. */

tg_tensor *tg_matmul_(tg_tape *t, tg_tensor *a, tg_tensor *b, int trans_a, int trans_b, tg_src at);
/* x w^T + b in one op (a linear layer): w n x k as PyTorch stores it, b 1 x n
 * (broadcast to every row) or rows x n; the bias starts the product's sum */
tg_tensor *tg_affine_(tg_tape *t, tg_tensor *x, tg_tensor *w, tg_tensor *b, tg_src at);
/* x w[:, c0 : c0+k]^T (+ b), k = x's columns: a range of w's columns, read in
 * place (no copy; its gradient goes to those columns of w's); b as affine's,
 * or NULL for none */
tg_tensor *tg_affine_cols_(tg_tape *t, tg_tensor *x, tg_tensor *w, int c0, tg_tensor *b,
                           tg_src at);
tg_tensor *tg_add_(tg_tape *t, tg_tensor *a, tg_tensor *b, tg_src at); /* b may be 1 x cols */
tg_tensor *tg_sub_(tg_tape *t, tg_tensor *a, tg_tensor *b, tg_src at);
/* Hadamard; b may be 1 x cols (a per-column weight broadcast to every row) */
tg_tensor *tg_mul_(tg_tape *t, tg_tensor *a, tg_tensor *b, tg_src at);
tg_tensor *tg_scale_(tg_tape *t, tg_tensor *x, double c, tg_src at);
tg_tensor *tg_one_minus_(tg_tape *t, tg_tensor *x, tg_src at);
tg_tensor *tg_tanh_(tg_tape *t, tg_tensor *x, tg_src at);
tg_tensor *tg_sigmoid_(tg_tape *t, tg_tensor *x, tg_src at);
tg_tensor *tg_relu_(tg_tape *t, tg_tensor *x, tg_src at);
tg_tensor *tg_exp_(tg_tape *t, tg_tensor *x, tg_src at);
tg_tensor *tg_log_(tg_tape *t, tg_tensor *x, tg_src at);
tg_tensor *tg_sum_(tg_tape *t, tg_tensor *x, tg_src at);  /* 1 x 1 */
tg_tensor *tg_mean_(tg_tape *t, tg_tensor *x, tg_src at); /* 1 x 1 */
tg_tensor *tg_col_slice_(tg_tape *t, tg_tensor *x, int col0, int ncols, tg_src at);
tg_tensor *tg_concat_(tg_tape *t, tg_tensor *a, tg_tensor *b, tg_src at); /* [a | b] */
/* Rows row0 .. row0+nrows-1 as a view: no copy, its gradient is the parent's. */
tg_tensor *tg_row_slice_(tg_tape *t, tg_tensor *x, int row0, int nrows, tg_src at);
/* Rows of xs[0], then of xs[1], ... (same cols): per-step outputs -> T*B x H. */
tg_tensor *tg_stack_rows_(tg_tape *t, tg_tensor *const *xs, int n, tg_src at);
/* out[i,:] = table[ids[i],:]; ids has n entries in [0, table->rows). */
tg_tensor *tg_embedding_(tg_tape *t, tg_tensor *table, const int *ids, int n, tg_src at);
/* Inverted dropout: keep with prob 1-p and scale by 1/(1-p). p == 0 returns x. */
tg_tensor *tg_dropout_(tg_tape *t, tg_tensor *x, double p, tg_rng *r, tg_src at);
/* Mean over rows whose target != ignore_index of -log softmax(logits)[target].
 * 1 x 1; 0 when every row is ignored. */
tg_tensor *tg_softmax_xent_(tg_tape *t, tg_tensor *logits, const int *targets, int ignore_index,
                            tg_src at);
/* The same with label smoothing e in [0, 1): the target of a row is
 * (1-e) onehot + e/V, as PyTorch's cross_entropy(label_smoothing=e); e = 0
 * is tg_softmax_xent, bit for bit. */
tg_tensor *tg_softmax_xent_smoothed_(tg_tape *t, tg_tensor *logits, const int *targets,
                                     int ignore_index, double smoothing, tg_src at);
/* Fused gate math of a recurrent step (ops/lstm_gates.c, ops/gru_gates.c);
 * each equals its composed form, checked in tests/gradcheck.c.
 * lstm_gates: xp, hp B x 4H (gates i,f,g,o), c B x H -> 2B x H holding
 *   h' = sigmoid(o)*tanh(c') in rows 0..B-1 and c' = sigmoid(f)*c + sigmoid(i)*tanh(g)
 *   in rows B..2B-1 (take them with tg_row_slice: no copy).
 * gru_gates: xp, hp B x 3H (gates r,z,n; hp includes b_hh), h B x H -> B x H
 *   h' = (1-z)*n + z*h,  n = tanh(xp_n + r*hp_n). */
tg_tensor *tg_lstm_gates_(tg_tape *t, tg_tensor *xp, tg_tensor *hp, tg_tensor *c, tg_src at);
/* lstm_gates with xp's row b read from row pos[b] of xs (B indices): the
 * same bits as tg_lstm_gates(t, tg_embedding(t, xs, pos, B), hp, c) when xs
 * and hp do not share gradient memory, with no gathered copy; xs's gradient
 * gets the rows' gradients added in row order. */
tg_tensor *tg_lstm_gates_rows_(tg_tape *t, tg_tensor *xs, const int *pos, tg_tensor *hp,
                               tg_tensor *c, tg_src at);
tg_tensor *tg_gru_gates_(tg_tape *t, tg_tensor *xp, tg_tensor *hp, tg_tensor *h, tg_src at);

/* Softmax over each row of x (N x K). mask: N*K ints, row-major like x,
 * nonzero = leave that position out (gets 0), or NULL. A row with every
 * position masked gives zeros (ops/softmax.c). */
tg_tensor *tg_softmax_(tg_tape *t, tg_tensor *x, const int *mask, tg_src at);
/* Attention over a time-major memory m (S*B x H; step s of example b in row
 * s*B + b, as tg_rnn_forward returns its outputs), one op each:
 * attn_scores:  q (B x H) -> (B x S),  y[b, s] = q[b] . m[s*B + b]
 * attn_context: a (B x S) -> (B x H),  y[b] = sum_s a[b, s] m[s*B + b] */
tg_tensor *tg_attn_scores_(tg_tape *t, tg_tensor *q, tg_tensor *m, tg_src at);
tg_tensor *tg_attn_context_(tg_tape *t, tg_tensor *a, tg_tensor *m, tg_src at);

#define tg_matmul(t, a, b, ta, tb) tg_matmul_(t, a, b, ta, tb, TG_HERE)
#define tg_affine(t, x, w, b) tg_affine_(t, x, w, b, TG_HERE)
#define tg_affine_cols(t, x, w, c0, b) tg_affine_cols_(t, x, w, c0, b, TG_HERE)
#define tg_add(t, a, b) tg_add_(t, a, b, TG_HERE)
#define tg_sub(t, a, b) tg_sub_(t, a, b, TG_HERE)
#define tg_mul(t, a, b) tg_mul_(t, a, b, TG_HERE)
#define tg_scale(t, x, c) tg_scale_(t, x, c, TG_HERE)
#define tg_one_minus(t, x) tg_one_minus_(t, x, TG_HERE)
#define tg_tanh(t, x) tg_tanh_(t, x, TG_HERE)
#define tg_sigmoid(t, x) tg_sigmoid_(t, x, TG_HERE)
#define tg_relu(t, x) tg_relu_(t, x, TG_HERE)
#define tg_exp(t, x) tg_exp_(t, x, TG_HERE)
#define tg_log(t, x) tg_log_(t, x, TG_HERE)
#define tg_sum(t, x) tg_sum_(t, x, TG_HERE)
#define tg_mean(t, x) tg_mean_(t, x, TG_HERE)
#define tg_col_slice(t, x, c0, n) tg_col_slice_(t, x, c0, n, TG_HERE)
#define tg_concat(t, a, b) tg_concat_(t, a, b, TG_HERE)
#define tg_row_slice(t, x, r0, n) tg_row_slice_(t, x, r0, n, TG_HERE)
#define tg_stack_rows(t, xs, n) tg_stack_rows_(t, xs, n, TG_HERE)
#define tg_embedding(t, tab, ids, n) tg_embedding_(t, tab, ids, n, TG_HERE)
#define tg_dropout(t, x, p, r) tg_dropout_(t, x, p, r, TG_HERE)
#define tg_softmax_xent(t, l, y, ign) tg_softmax_xent_(t, l, y, ign, TG_HERE)
#define tg_softmax_xent_smoothed(t, l, y, ign, e) tg_softmax_xent_smoothed_(t, l, y, ign, e, TG_HERE)
#define tg_lstm_gates(t, xp, hp, c) tg_lstm_gates_(t, xp, hp, c, TG_HERE)
#define tg_lstm_gates_rows(t, xs, pos, hp, c) tg_lstm_gates_rows_(t, xs, pos, hp, c, TG_HERE)
#define tg_gru_gates(t, xp, hp, h) tg_gru_gates_(t, xp, hp, h, TG_HERE)
#define tg_softmax(t, x, mask) tg_softmax_(t, x, mask, TG_HERE)
#define tg_attn_scores(t, q, m) tg_attn_scores_(t, q, m, TG_HERE)
#define tg_attn_context(t, a, m) tg_attn_context_(t, a, m, TG_HERE)

/* ------------------------------------------------------------------ gradcheck */

/* Builds a tensor from the check inputs on tape t (called many times). */
typedef tg_tensor *(*tg_build_fn)(tg_tape *t, tg_tensor **inputs, void *ctx);

typedef struct tg_gradcheck_result {
    double max_rel_err; /* max over checked elements of |a-n| / max(1, |a|, |n|) */
    double max_abs_err;
    size_t checked;     /* number of input elements perturbed */
    int worst_input;    /* index of the input holding the worst element */
    size_t worst_index;
} tg_gradcheck_result;

/* Compares the VJP of build() with central finite differences (step eps) of
 * <build(inputs), w> for fixed random weights w. Inputs with grad == NULL are
 * never perturbed. Meaningful in the double build. */
tg_gradcheck_result tg_gradcheck(tg_tape *t, tg_build_fn build, void *ctx, tg_tensor **inputs,
                                 int n_inputs, double eps, uint64_t seed);

#ifdef __cplusplus
}
#endif
#endif
