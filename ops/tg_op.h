/* Private API for op authors: the op registry, recording, matmul's tape
 * state. Only ops/ (and op tests) include this; the engine's side of the
 * contract (nodes, tape extensions) is graph/tg_engine.h, and layers and
 * programs see tapegrad.h. */
#ifndef TG_OP_H
#define TG_OP_H

#include "tg_engine.h"
#include "tg_gemm.h"

/* The op list, one X(ENUM, name) per op. It generates the enum, the registry
 * table (ops/registry.c) and the gradcheck case table (tests/gradcheck.c),
 * so an op without a VJP or without a check case does not compile. */
#define TG_OP_LIST(X)                                                                      \
    X(MATMUL, matmul)                                                                      \
    X(ADD, add)                                                                            \
    X(SUB, sub)                                                                            \
    X(MUL, mul)                                                                            \
    X(SCALE, scale)                                                                        \
    X(ONE_MINUS, one_minus)                                                                \
    X(TANH, tanh)                                                                          \
    X(SIGMOID, sigmoid)                                                                    \
    X(RELU, relu)                                                                          \
    X(EXP, exp)                                                                            \
    X(LOG, log)                                                                            \
    X(SUM, sum)                                                                            \
    X(MEAN, mean)                                                                          \
    X(COL_SLICE, col_slice)                                                                \
    X(CONCAT, concat)                                                                      \
    X(ROW_SLICE, row_slice)                                                                \
    X(STACK_ROWS, stack_rows)                                                              \
    X(EMBEDDING, embedding)                                                                \
    X(DROPOUT, dropout)                                                                    \
    X(SOFTMAX_XENT, softmax_xent)                                                          \
    X(LSTM_GATES, lstm_gates)                                                              \
    X(GRU_GATES, gru_gates)                                                                \
    X(SOFTMAX, softmax)                                                                    \
    X(ATTN_SCORES, attn_scores)                                                            \
    X(ATTN_CONTEXT, attn_context)                                                          \
    X(AFFINE, affine)

typedef enum tg_op_kind {
#define TG_X_ENUM(E, name) TG_OP_##E,
    TG_OP_LIST(TG_X_ENUM)
#undef TG_X_ENUM
        TG_OP_COUNT
} tg_op_kind;

typedef struct tg_op_info {
    const char *name;
    tg_vjp_fn vjp;
} tg_op_info;

extern const tg_op_info tg_op_table[TG_OP_COUNT];

/* Declares every VJP: void tg_vjp_<name>(const tg_node *, int). */
#define TG_X_DECL(E, name) void tg_vjp_##name(const tg_node *node, int threads);
TG_OP_LIST(TG_X_DECL)
#undef TG_X_DECL

/* ---- recording (tg_op_output, tg_op_records: graph/tg_engine.h) */

/* Appends a node (arena) for out, replayed by op's VJP; returns it for the
 * caller to fill. */
static inline tg_node *tg_op_record(tg_tape *t, tg_op_kind op, tg_tensor *out, int n_in,
                                    tg_tensor *a, tg_tensor *b, tg_tensor *c)
{
    return tg_node_record(t, (int)op, tg_op_table[op].vjp, out, n_in, a, b, c);
}

/* The element-wise ops of one input (ops/unary.c runs them over a
 * tensor): a forward
 * kernel y = f(x) over n elements, and a VJP kernel dx += dy f'(x) over n
 * elements given x and y. tg_unary_forward makes and records y (as op);
 * tg_unary_vjp does nothing when x wants no gradient. */
typedef void tg_unary_kernel(tg_real *restrict y, const tg_real *restrict x, long n);
typedef void tg_unary_vjp_kernel(tg_real *restrict dx, const tg_real *restrict dy,
                                 const tg_real *restrict x, const tg_real *restrict y, long n);
tg_tensor *tg_unary_forward(tg_tape *t, tg_tensor *x, tg_op_kind op, tg_unary_kernel *f);
void tg_unary_vjp(const tg_node *node, int threads, tg_unary_vjp_kernel *f);

/* ---- matmul's tape state (ops/matmul_tape.c, a tape extension)
 *
 * Deferred weight gradients: a VJP that would add a product of few rows (one
 * row of an output gradient times one row of an input, per row) into w's
 * gradient may hand it over instead. During tg_backward matmul's tape state
 * keeps it (pointers into the arena, which the sweep does not change) and
 * adds all the contributions w got this way with one matrix product over
 * all their rows stacked in hand-over order:
 *   trans == 0: w->grad (k x n) += X^T G      trans == 1: w->grad (n x k) += G^T X
 * with G rows x n and X rows x k, both contiguous, w->grad's columns counted
 * from c0 (a product with a range of w's columns, ops/affine.c; 0: all):
 * after the sweep for a leaf, whose gradient no VJP reads; for an op output
 * (a weight computed on the tape, such as a column slice of one), just
 * before the VJP of the op that made it, the one that reads its gradient (w is marked
 * TG_F_GRAD_PENDING, the sweep runs matmul's settle hook: tg_engine.h). The
 * sum's rounding is one GEMM's instead of a chain of products, in an order
 * fixed by the tape (never by the thread count). Why: a recurrent weight gets one product per time
 * step, each of only B rows (16-32 per shard), which reads and writes all of
 * its gradient: batch-1 training made 25 rank-1 updates of W_hh per step
 * (config d of BENCHMARKS.md), and the per-step products of a shard of 32
 * rows ran OpenBLAS at 40% of the peak (config f on Zen 3). Returns 1 when
 * taken; 0 outside a backward sweep or when the arena has no room for the
 * bookkeeping: then the VJP adds it itself. */
int tg_defer_rows(const tg_node *node, const tg_tensor *w, int c0, int trans, const tg_real *g,
                  int n, const tg_real *x, int k, int rows);

/* Products of at most this many rows are deferred (tg_defer_rows). */
#define TG_DEFER_MAX_ROWS 64

struct tg_panel_src;
/* The weight-panel cache of t (graph/tg_panels.h), made on first use and
 * emptied at tg_tape_reset and at the end of every backward sweep, so a
 * leaf's changed values are never missed across steps. NULL when out of
 * memory (then products stay on tg_gemm). */
struct tg_panel_cache *tg_matmul_panel_cache(tg_tape *t);
/* Panels of op(B) for a product of `rows` rows (tg_panels_of), B the part
 * of b in win (b whole, or a range of its columns): from the shards' shared
 * cache when t has one and b is a parameter, else from t's; a parameter on
 * a tape that records is packed at its first product. */
const tg_real *tg_matmul_panels_of(tg_tape *t, const tg_tensor *b,
                                   const struct tg_panel_src *win, int tb, int rows);

/* ---- matmul's product and VJP (ops/matmul.c), shared with affine
 *
 * c (op(A)'s rows x op(B)'s columns, contiguous) = op(A) op(B) + D, D's row
 * i at d + i ldd (ldd 0: one row, a bias, added to every row; NULL: no D):
 * on B's weight panels when the shape suits (D added as C is stored, not
 * copied first), else D copied into c and tg_gemm with beta 1.
 * Returns 1 when A is a constant (no gradient) of zeros: then nothing was
 * multiplied (c = D, or 0). b_c0: with tb, op(B) is B's columns b_c0 ..
 * b_c0+k-1 transposed (k: op(A)'s columns; affine's column range), read in
 * place; without tb it must be 0 (B whole). */
int tg_matmul_product(tg_tape *t, const tg_tensor *a, const tg_tensor *b, int b_c0, int ta,
                      int tb, const tg_real *d, int ldd, tg_real *c);
/* dA and dB of C = op(A) op(B), from c->grad, into the inputs that have a
 * gradient (node: the recording node, for the deferred products; b_c0 as
 * tg_matmul_product's: dB goes to those columns of b's gradient); nothing
 * when zero_a (tg_matmul_product's 1: dB gets only zeros). */
void tg_matmul_backprop(const tg_node *node, const tg_tensor *a, const tg_tensor *b, int b_c0,
                        int ta, int tb, int zero_a, const tg_tensor *c, int threads);

/* acc[j] += sum_i x[i, j] over rows in index order: the gradient of a row
 * broadcast to every row (add's and affine's bias; ops/add.c). With one row,
 * acc += x: a SIMD clone for the VJPs that add a gradient block whole
 * (embedding's rows, stack_rows' blocks). */
void tg_col_sums_into(tg_real *acc, const tg_real *x, int rows, int cols);

/* Element-wise loops go parallel only past this many scalars. */
#define TG_PAR_MIN 32768

#endif
