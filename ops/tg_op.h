/* Private API for op authors: nodes, the op registry, recording, kernels.
 * Only graph/ and ops/ include this; layers and programs see tapegrad.h. */
#ifndef TG_OP_H
#define TG_OP_H

#include "tapegrad.h"

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
    X(ATTN_CONTEXT, attn_context)

typedef enum tg_op_kind {
#define TG_X_ENUM(E, name) TG_OP_##E,
    TG_OP_LIST(TG_X_ENUM)
#undef TG_X_ENUM
        TG_OP_COUNT
} tg_op_kind;

#define TG_MAX_INPUTS 3

/* One recorded op. Everything it points to lives in the step arena. */
typedef struct tg_node {
    tg_op_kind op;
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

/* Adds into the gradients of node->in[*] whose grad != NULL, reading
 * node->out->grad and only what the op saved. Never overwrites. */
typedef void (*tg_vjp_fn)(const tg_node *node, int threads);

typedef struct tg_op_info {
    const char *name;
    tg_vjp_fn vjp;
} tg_op_info;

extern const tg_op_info tg_op_table[TG_OP_COUNT];

/* Declares every VJP: void tg_vjp_<name>(const tg_node *, int). */
#define TG_X_DECL(E, name) void tg_vjp_##name(const tg_node *node, int threads);
TG_OP_LIST(TG_X_DECL)
#undef TG_X_DECL

/* ---- recording helpers used by op constructors */

/* The output tensor of an op: arena data (uninitialised), and a grad buffer
 * when needs_grad and the tape records. */
tg_tensor *tg_op_output(tg_tape *t, int rows, int cols, int needs_grad);
/* True when an op over these inputs must be recorded. */
int tg_op_records(const tg_tape *t, const tg_tensor *a, const tg_tensor *b, const tg_tensor *c);
/* Appends a node (arena) for out; returns it for the caller to fill. */
tg_node *tg_op_record(tg_tape *t, tg_op_kind op, tg_tensor *out, int n_in, tg_tensor *a,
                      tg_tensor *b, tg_tensor *c);

/* ---- deferred weight gradients
 *
 * A VJP that would add a rank-1 product (one row of an output gradient times
 * one row of an input) into a LEAF's gradient may hand it to the engine
 * instead. During tg_backward the engine keeps it (pointers into the arena,
 * which the sweep does not change) and, after the sweep, adds all the
 * contributions a leaf got this way with one matrix product:
 *   trans == 0: w->grad (k x n) += x^T g      trans == 1: w->grad (n x k) += g^T x
 * with g n contiguous values and x k contiguous ones. A leaf's gradient is
 * read by no VJP, so the sweep cannot tell; the sum's rounding is the GEMM's
 * instead of a chain of rank-1 adds, in an order fixed by the tape (never by
 * the thread count). Why: batch-1 training made 25 rank-1 updates of W_hh
 * per step, each reading and writing all of its gradient (config d of
 * BENCHMARKS.md). Returns 1 when taken; 0 outside a backward sweep or when
 * the arena has no room for the bookkeeping: then the VJP adds it itself. */
int tg_defer_rank1(const tg_node *node, const tg_tensor *w, int trans, const tg_real *g, int n,
                   const tg_real *x, int k);

/* ---- kernels */

/* C = alpha op(A) op(B) + beta C, row-major; op(A) is M x K, op(B) is K x N.
 * BLAS (single-threaded inside our own parallel regions) or the fallback. */
void tg_gemm(int trans_a, int trans_b, int m, int n, int k, tg_real alpha, const tg_real *a,
             int lda, const tg_real *b, int ldb, tg_real beta, tg_real *c, int ldc, int threads);

/* Element-wise loops go parallel only past this many scalars. */
#define TG_PAR_MIN 32768

#endif
