/* Cases for every op: inputs, the op call and a plain reference in double. */
#include "op_cases.h"

#include <math.h>
#include <stdlib.h>

/* ------------------------------------------------------------ inputs */

void opc_make_inputs(const op_case *c, unsigned grad_mask, uint64_t seed,
                     tg_tensor *in[OPC_MAX_IN])
{
    tg_rng r;
    tg_rng_seed(&r, seed);
    for (int k = 0; k < c->n_in; k++) {
        in[k] = tg_tensor_alloc(c->rows[k], c->cols[k], (grad_mask >> k) & 1u);
        if (!in[k]) abort();
        for (size_t i = 0; i < tg_numel(in[k]); i++) {
            double v = c->lo + (c->hi - c->lo) * tg_rng_uniform(&r);
            if (c->random_sign && tg_rng_uniform(&r) < 0.5) v = -v;
            in[k]->data[i] = (tg_real)v;
        }
    }
}

void opc_free_inputs(const op_case *c, tg_tensor *in[OPC_MAX_IN])
{
    for (int k = 0; k < c->n_in; k++) tg_tensor_free(in[k]);
}

static double at(const tg_tensor *x, int i, int j) { return (double)x->data[(size_t)i * x->cols + j]; }

/* ------------------------------------------------------------ matmul */

static tg_tensor *build_matmul(tg_tape *t, const op_case *c, tg_tensor **in, const int *ints)
{
    (void)ints;
    return tg_matmul(t, in[0], in[1], c->arg[0], c->arg[1]);
}

/* C[i][j] = sum_p op(A)[i][p] op(B)[p][j], op(X)[i][j] = X[j][i] when transposed */
static void ref_matmul(const op_case *c, tg_tensor *const *in, const int *ints, double *out)
{
    (void)ints;
    int ta = c->arg[0], tb = c->arg[1], k = ta ? in[0]->rows : in[0]->cols;
    for (int i = 0; i < c->out_rows; i++)
        for (int j = 0; j < c->out_cols; j++) {
            double s = 0;
            for (int p = 0; p < k; p++)
                s += (ta ? at(in[0], p, i) : at(in[0], i, p)) * (tb ? at(in[1], j, p) : at(in[1], p, j));
            out[i * c->out_cols + j] = s;
        }
}

#define MATMUL(ta, tb, m, k, n)                                                            \
    {"matmul " #ta #tb " " #m "x" #k "x" #n, 2, {(ta) ? (k) : (m), (tb) ? (n) : (k)},      \
     {(ta) ? (m) : (k), (tb) ? (k) : (n)}, -1, 1, 0, 0, {0}, {ta, tb}, 0, m, n,            \
     build_matmul, ref_matmul}

static const op_case matmul_cases[] = {
    MATMUL(0, 0, 3, 4, 2),   MATMUL(0, 1, 3, 4, 2),   MATMUL(1, 0, 3, 4, 2),
    MATMUL(1, 1, 3, 4, 2),   MATMUL(0, 0, 17, 33, 9), MATMUL(1, 1, 17, 33, 9),
    MATMUL(0, 1, 1, 5, 1),
};

/* ------------------------------------------------------------ affine */

/* arg[1] set: tg_affine_cols from W's column arg[0], with a bias when the
 * case has a third input */
static tg_tensor *build_affine(tg_tape *t, const op_case *c, tg_tensor **in, const int *ints)
{
    (void)ints;
    if (c->arg[1]) return tg_affine_cols(t, in[0], in[1], c->arg[0], c->n_in > 2 ? in[2] : NULL);
    return tg_affine(t, in[0], in[1], in[2]);
}

/* Y[i][j] = B[i or 0][j] (or 0) + sum_p X[i][p] W[j][c0 + p] */
static void ref_affine(const op_case *c, tg_tensor *const *in, const int *ints, double *out)
{
    (void)ints;
    for (int i = 0; i < c->out_rows; i++)
        for (int j = 0; j < c->out_cols; j++) {
            double s = c->n_in > 2 ? at(in[2], in[2]->rows == 1 ? 0 : i, j) : 0;
            for (int p = 0; p < in[0]->cols; p++)
                s += at(in[0], i, p) * at(in[1], j, c->arg[0] + p);
            out[i * c->out_cols + j] = s;
        }
}

/* m x k times (n x k)^T plus 1 x n or m x n */
#define AFFINE(m, k, n, brows)                                                             \
    {"affine " #m "x" #k "x" #n " bias " #brows, 3, {m, n, brows}, {k, k, n}, -1, 1, 0, 0,  \
     {0}, {0}, 0, m, n, build_affine, ref_affine}
/* m x k times (W's columns c0 .. c0+k-1 of n x K)^T, plus 1 x n or m x n, or
 * no bias (brows 0) */
#define AFFINE_COLS(m, k, n, K, c0, brows)                                                 \
    {"affine_cols " #m "x" #k "x" #n " of " #K " from " #c0 " bias " #brows,               \
     (brows) ? 3 : 2, {m, n, brows}, {k, K, n}, -1, 1, 0, 0, {0}, {c0, 1}, 0, m, n,         \
     build_affine, ref_affine}

static const op_case affine_cases[] = {
    AFFINE(3, 4, 2, 1),
    AFFINE(3, 4, 2, 3),
    AFFINE(1, 5, 3, 1),
    AFFINE(17, 33, 40, 1),
    AFFINE(17, 33, 40, 17),
    AFFINE_COLS(3, 4, 2, 9, 5, 0),
    AFFINE_COLS(5, 3, 6, 7, 0, 5),
    AFFINE_COLS(1, 5, 3, 8, 2, 1),
    AFFINE_COLS(17, 33, 40, 70, 20, 1),
    AFFINE_COLS(17, 33, 40, 70, 37, 0),
};

/* ------------------------------------------------------------ binary element-wise */

static tg_tensor *build_add(tg_tape *t, const op_case *c, tg_tensor **in, const int *ints)
{
    (void)c, (void)ints;
    return tg_add(t, in[0], in[1]);
}

/* B is broadcast down the rows when it has one row and A more */
static void ref_add(const op_case *c, tg_tensor *const *in, const int *ints, double *out)
{
    (void)ints;
    for (int i = 0; i < c->out_rows; i++)
        for (int j = 0; j < c->out_cols; j++)
            out[i * c->out_cols + j] = at(in[0], i, j) + at(in[1], in[1]->rows == 1 ? 0 : i, j);
}

static const op_case add_cases[] = {
    {"add same shape", 2, {3, 3}, {4, 4}, -1, 1, 0, 0, {0}, {0}, 0, 3, 4, build_add, ref_add},
    {"add row broadcast", 2, {5, 1}, {3, 3}, -1, 1, 0, 0, {0}, {0}, 0, 5, 3, build_add, ref_add},
    {"add 1-row", 2, {1, 1}, {6, 6}, -1, 1, 0, 0, {0}, {0}, 0, 1, 6, build_add, ref_add},
};

static tg_tensor *build_sub(tg_tape *t, const op_case *c, tg_tensor **in, const int *ints)
{
    (void)c, (void)ints;
    return tg_sub(t, in[0], in[1]);
}

static void ref_sub(const op_case *c, tg_tensor *const *in, const int *ints, double *out)
{
    (void)ints;
    for (int i = 0; i < c->out_rows * c->out_cols; i++)
        out[i] = (double)in[0]->data[i] - (double)in[1]->data[i];
}

static const op_case sub_cases[] = {
    {"sub", 2, {3, 3}, {4, 4}, -1, 1, 0, 0, {0}, {0}, 0, 3, 4, build_sub, ref_sub},
};

static tg_tensor *build_mul(tg_tape *t, const op_case *c, tg_tensor **in, const int *ints)
{
    (void)c, (void)ints;
    return tg_mul(t, in[0], in[1]);
}

/* B is broadcast down the rows when it has one row and A more */
static void ref_mul(const op_case *c, tg_tensor *const *in, const int *ints, double *out)
{
    (void)ints;
    for (int i = 0; i < c->out_rows; i++)
        for (int j = 0; j < c->out_cols; j++)
            out[i * c->out_cols + j] = at(in[0], i, j) * at(in[1], in[1]->rows == 1 ? 0 : i, j);
}

static const op_case mul_cases[] = {
    {"mul", 2, {3, 3}, {4, 4}, -2, 2, 0, 0, {0}, {0}, 0, 3, 4, build_mul, ref_mul},
    {"mul row broadcast", 2, {5, 1}, {3, 3}, -2, 2, 0, 0, {0}, {0}, 0, 5, 3, build_mul, ref_mul},
    {"mul 1-row", 2, {1, 1}, {6, 6}, -2, 2, 0, 0, {0}, {0}, 0, 1, 6, build_mul, ref_mul},
};

/* ------------------------------------------------------------ unary element-wise */

static tg_tensor *build_scale(tg_tape *t, const op_case *c, tg_tensor **in, const int *ints)
{
    (void)ints;
    return tg_scale(t, in[0], c->farg);
}

static void ref_scale(const op_case *c, tg_tensor *const *in, const int *ints, double *out)
{
    (void)ints;
    for (int i = 0; i < c->out_rows * c->out_cols; i++) out[i] = c->farg * (double)in[0]->data[i];
}

static const op_case scale_cases[] = {
    {"scale -1.5", 1, {3}, {4}, -1, 1, 0, 0, {0}, {0}, -1.5, 3, 4, build_scale, ref_scale},
    {"scale 0.25", 1, {2}, {5}, -1, 1, 0, 0, {0}, {0}, 0.25, 2, 5, build_scale, ref_scale},
};

/* Unary ops: a build calling tg_<name> and a reference applying f. */
#define UNARY(name, f)                                                                     \
    static tg_tensor *build_##name(tg_tape *t, const op_case *c, tg_tensor **in,           \
                                   const int *ints)                                        \
    {                                                                                      \
        (void)c, (void)ints;                                                               \
        return tg_##name(t, in[0]);                                                        \
    }                                                                                      \
    static void ref_##name(const op_case *c, tg_tensor *const *in, const int *ints,        \
                           double *out)                                                    \
    {                                                                                      \
        (void)ints;                                                                        \
        for (int i = 0; i < c->out_rows * c->out_cols; i++) {                              \
            double x = (double)in[0]->data[i];                                             \
            out[i] = (f);                                                                  \
        }                                                                                  \
    }

UNARY(one_minus, 1.0 - x)
UNARY(tanh, tanh(x))
UNARY(sigmoid, 1.0 / (1.0 + exp(-x)))
UNARY(relu, x > 0 ? x : 0.0)
UNARY(exp, exp(x))
UNARY(log, log(x))

#define UNARY_CASE(name, what, lo, hi, sign) \
    {what, 1, {4}, {5}, lo, hi, sign, 0, {0}, {0}, 0, 4, 5, build_##name, ref_##name}

static const op_case one_minus_cases[] = {UNARY_CASE(one_minus, "one_minus", -2, 2, 0)};
static const op_case tanh_cases[] = {UNARY_CASE(tanh, "tanh", -3, 3, 0),
                                     UNARY_CASE(tanh, "tanh saturated", 10, 40, 1)};
static const op_case sigmoid_cases[] = {UNARY_CASE(sigmoid, "sigmoid", -4, 4, 0),
                                        UNARY_CASE(sigmoid, "sigmoid |x| in [30, 90]", 30, 90, 1)};
static const op_case relu_cases[] = {UNARY_CASE(relu, "relu", 0.05, 2, 1)};
static const op_case exp_cases[] = {UNARY_CASE(exp, "exp", -3, 3, 0)};
static const op_case log_cases[] = {UNARY_CASE(log, "log", 0.05, 5, 0)};

/* ------------------------------------------------------------ reductions */

static tg_tensor *build_sum(tg_tape *t, const op_case *c, tg_tensor **in, const int *ints)
{
    (void)c, (void)ints;
    return tg_sum(t, in[0]);
}

static void ref_sum(const op_case *c, tg_tensor *const *in, const int *ints, double *out)
{
    (void)c, (void)ints;
    out[0] = 0;
    for (size_t i = 0; i < tg_numel(in[0]); i++) out[0] += (double)in[0]->data[i];
}

static tg_tensor *build_mean(tg_tape *t, const op_case *c, tg_tensor **in, const int *ints)
{
    (void)c, (void)ints;
    return tg_mean(t, in[0]);
}

static void ref_mean(const op_case *c, tg_tensor *const *in, const int *ints, double *out)
{
    ref_sum(c, in, ints, out);
    out[0] /= (double)tg_numel(in[0]);
}

static const op_case sum_cases[] = {
    {"sum", 1, {3}, {7}, -1, 1, 0, 0, {0}, {0}, 0, 1, 1, build_sum, ref_sum},
    {"sum 1x1", 1, {1}, {1}, -1, 1, 0, 0, {0}, {0}, 0, 1, 1, build_sum, ref_sum},
};
static const op_case mean_cases[] = {
    {"mean", 1, {3}, {7}, -1, 1, 0, 0, {0}, {0}, 0, 1, 1, build_mean, ref_mean},
};

/* ------------------------------------------------------------ slicing and joining */

static tg_tensor *build_col_slice(tg_tape *t, const op_case *c, tg_tensor **in, const int *ints)
{
    (void)ints;
    return tg_col_slice(t, in[0], c->arg[0], c->arg[1]);
}

static void ref_col_slice(const op_case *c, tg_tensor *const *in, const int *ints, double *out)
{
    (void)ints;
    for (int i = 0; i < c->out_rows; i++)
        for (int j = 0; j < c->out_cols; j++) out[i * c->out_cols + j] = at(in[0], i, c->arg[0] + j);
}

#define COL_SLICE(c0, k) \
    {"col_slice " #c0 "+" #k, 1, {3}, {6}, -1, 1, 0, 0, {0}, {c0, k}, 0, 3, k, build_col_slice, ref_col_slice}

static const op_case col_slice_cases[] = {COL_SLICE(0, 2), COL_SLICE(2, 3), COL_SLICE(5, 1),
                                          COL_SLICE(0, 6)};

static tg_tensor *build_concat(tg_tape *t, const op_case *c, tg_tensor **in, const int *ints)
{
    (void)c, (void)ints;
    return tg_concat(t, in[0], in[1]);
}

static void ref_concat(const op_case *c, tg_tensor *const *in, const int *ints, double *out)
{
    (void)ints;
    int ca = in[0]->cols;
    for (int i = 0; i < c->out_rows; i++)
        for (int j = 0; j < c->out_cols; j++)
            out[i * c->out_cols + j] = j < ca ? at(in[0], i, j) : at(in[1], i, j - ca);
}

static const op_case concat_cases[] = {
    {"concat 3x2|3x4", 2, {3, 3}, {2, 4}, -1, 1, 0, 0, {0}, {0}, 0, 3, 6, build_concat, ref_concat},
    {"concat 2x1|2x1", 2, {2, 2}, {1, 1}, -1, 1, 0, 0, {0}, {0}, 0, 2, 2, build_concat, ref_concat},
};

static tg_tensor *build_row_slice(tg_tape *t, const op_case *c, tg_tensor **in, const int *ints)
{
    (void)ints;
    return tg_row_slice(t, in[0], c->arg[0], c->arg[1]);
}

static void ref_row_slice(const op_case *c, tg_tensor *const *in, const int *ints, double *out)
{
    (void)ints;
    for (int i = 0; i < c->out_rows; i++)
        for (int j = 0; j < c->out_cols; j++) out[i * c->out_cols + j] = at(in[0], c->arg[0] + i, j);
}

#define ROW_SLICE(r0, k) \
    {"row_slice " #r0 "+" #k, 1, {5}, {3}, -1, 1, 0, 0, {0}, {r0, k}, 0, k, 3, build_row_slice, ref_row_slice}

static const op_case row_slice_cases[] = {ROW_SLICE(0, 2), ROW_SLICE(1, 3), ROW_SLICE(4, 1),
                                          ROW_SLICE(0, 5)};

static tg_tensor *build_stack_rows(tg_tape *t, const op_case *c, tg_tensor **in, const int *ints)
{
    (void)ints;
    return tg_stack_rows(t, in, c->n_in);
}

static void ref_stack_rows(const op_case *c, tg_tensor *const *in, const int *ints, double *out)
{
    (void)ints;
    int row = 0;
    for (int k = 0; k < c->n_in; k++)
        for (int i = 0; i < in[k]->rows; i++, row++)
            for (int j = 0; j < c->out_cols; j++) out[row * c->out_cols + j] = at(in[k], i, j);
}

static const op_case stack_rows_cases[] = {
    {"stack_rows 2+1+3", 3, {2, 1, 3}, {4, 4, 4}, -1, 1, 0, 0, {0}, {0}, 0, 6, 4,
     build_stack_rows, ref_stack_rows},
    {"stack_rows single", 1, {2}, {3}, -1, 1, 0, 0, {0}, {0}, 0, 2, 3, build_stack_rows,
     ref_stack_rows},
};

/* ------------------------------------------------------------ integer inputs */

static tg_tensor *build_embedding(tg_tape *t, const op_case *c, tg_tensor **in, const int *ints)
{
    return tg_embedding(t, in[0], ints, c->n_ints);
}

static void ref_embedding(const op_case *c, tg_tensor *const *in, const int *ints, double *out)
{
    for (int i = 0; i < c->n_ints; i++)
        for (int j = 0; j < c->out_cols; j++) out[i * c->out_cols + j] = at(in[0], ints[i], j);
}

static const op_case embedding_cases[] = {
    /* repeated ids accumulate in the VJP; rows 3 and 4 are never looked up */
    {"embedding", 1, {6}, {3}, -1, 1, 0, 7, {5, 0, 2, 5, 1, 5, 0}, {0}, 0, 7, 3, build_embedding,
     ref_embedding},
};

/* The generator is seeded from arg[0] here and in the reference, which
 * replays the documented draw: one uniform per element, in element order. */
static tg_tensor *build_dropout(tg_tape *t, const op_case *c, tg_tensor **in, const int *ints)
{
    (void)ints;
    tg_rng r;
    tg_rng_seed(&r, (uint64_t)c->arg[0]);
    return tg_dropout(t, in[0], c->farg, &r);
}

static void ref_dropout(const op_case *c, tg_tensor *const *in, const int *ints, double *out)
{
    (void)ints;
    tg_rng r;
    tg_rng_seed(&r, (uint64_t)c->arg[0]);
    double p = c->farg;
    /* the op scales by the tg_real value of 1/(1-p) */
    double keep = (double)(tg_real)(1.0 / (1.0 - p));
    for (int i = 0; i < c->out_rows * c->out_cols; i++)
        out[i] = tg_rng_uniform(&r) < p ? 0.0 : (double)in[0]->data[i] * keep;
}

static const op_case dropout_cases[] = {
    {"dropout p=0.4", 1, {6}, {7}, 0.1, 1, 1, 0, {0}, {42}, 0.4, 6, 7, build_dropout, ref_dropout},
    {"dropout p=0.9", 1, {3}, {5}, 0.1, 1, 1, 0, {0}, {7}, 0.9, 3, 5, build_dropout, ref_dropout},
};

/* farg: label smoothing (0: the unsmoothed entry point) */
static tg_tensor *build_softmax_xent(tg_tape *t, const op_case *c, tg_tensor **in, const int *ints)
{
    if (c->farg > 0) return tg_softmax_xent_smoothed(t, in[0], ints, c->arg[0], c->farg);
    return tg_softmax_xent(t, in[0], ints, c->arg[0]);
}

/* mean over counted rows of -sum_j q_j log softmax(z_i)_j, q = (1-e) onehot
 * + e/V: log(sum_j exp z_ij) - (1-e) z_i,target - e mean_j z_ij; 0 if none */
static void ref_softmax_xent(const op_case *c, tg_tensor *const *in, const int *ints, double *out)
{
    const tg_tensor *z = in[0];
    double total = 0, e = c->farg;
    int counted = 0;
    for (int i = 0; i < z->rows; i++) {
        if (ints[i] == c->arg[0]) continue;
        double mx = at(z, i, 0), s = 0, sum = 0;
        for (int j = 1; j < z->cols; j++) mx = fmax(mx, at(z, i, j));
        for (int j = 0; j < z->cols; j++) s += exp(at(z, i, j) - mx);
        for (int j = 0; j < z->cols; j++) sum += at(z, i, j);
        total += mx + log(s) - (1 - e) * at(z, i, ints[i]) - e * sum / z->cols;
        counted++;
    }
    out[0] = counted ? total / counted : 0.0;
}

static const op_case softmax_xent_cases[] = {
    {"softmax_xent ignore -1", 1, {6}, {4}, -3, 3, 0, 6, {2, -1, 0, 3, -1, 1}, {-1}, 0, 1, 1,
     build_softmax_xent, ref_softmax_xent},
    {"softmax_xent ignore class 0", 1, {5}, {4}, -3, 3, 0, 5, {0, 1, 0, 3, 2}, {0}, 0, 1, 1,
     build_softmax_xent, ref_softmax_xent},
    {"softmax_xent all ignored", 1, {3}, {4}, -3, 3, 0, 3, {-1, -1, -1}, {-1}, 0, 1, 1,
     build_softmax_xent, ref_softmax_xent},
    /* rows past the 16 lanes of the row max, with a tail; logits up to +-200, so
     * a max off by more than 88 would overflow exp */
    {"softmax_xent 37 classes, logits to 200", 1, {3}, {37}, 0, 200, 1, 3, {36, 0, 17}, {-1}, 0,
     1, 1, build_softmax_xent, ref_softmax_xent},
    {"softmax_xent logits |z| in [1e3, 1e4]", 1, {4}, {5}, 1e3, 1e4, 1, 4, {4, 0, 2, 1}, {-1}, 0,
     1, 1, build_softmax_xent, ref_softmax_xent},
    {"softmax_xent smoothed 0.1, ignore -1", 1, {6}, {4}, -3, 3, 0, 6, {2, -1, 0, 3, -1, 1}, {-1},
     0.1, 1, 1, build_softmax_xent, ref_softmax_xent},
    {"softmax_xent smoothed 0.6, 37 classes", 1, {3}, {37}, 0, 20, 1, 3, {36, 0, 17}, {-1}, 0.6,
     1, 1, build_softmax_xent, ref_softmax_xent},
};

/* ------------------------------------------------------------ fused gate ops */

static double sigm(double v) { return 1 / (1 + exp(-v)); }

static tg_tensor *build_lstm_gates(tg_tape *t, const op_case *c, tg_tensor **in, const int *ints)
{
    (void)c, (void)ints;
    return tg_lstm_gates(t, in[0], in[1], in[2]);
}

/* rows 0..B-1: h' = o tanh(c'); rows B..2B-1: c' = f c + i g (gates i,f,g,o) */
static void ref_lstm_gates(const op_case *c, tg_tensor *const *in, const int *ints, double *out)
{
    (void)ints;
    int B = in[2]->rows, H = in[2]->cols;
    for (int b = 0; b < B; b++)
        for (int j = 0; j < H; j++) {
            double a[4];
            for (int g = 0; g < 4; g++) a[g] = at(in[0], b, g * H + j) + at(in[1], b, g * H + j);
            double cn = sigm(a[1]) * at(in[2], b, j) + sigm(a[0]) * tanh(a[2]);
            out[b * c->out_cols + j] = sigm(a[3]) * tanh(cn);
            out[(B + b) * c->out_cols + j] = cn;
        }
}

static const op_case lstm_gates_cases[] = {
    {"lstm_gates B=2 H=3", 3, {2, 2, 2}, {12, 12, 3}, -2, 2, 0, 0, {0}, {0}, 0, 4, 3,
     build_lstm_gates, ref_lstm_gates},
};

static tg_tensor *build_gru_gates(tg_tape *t, const op_case *c, tg_tensor **in, const int *ints)
{
    (void)c, (void)ints;
    return tg_gru_gates(t, in[0], in[1], in[2]);
}

/* h' = (1-z) n + z h, n = tanh(xp_n + r hp_n) (gates r,z,n) */
static void ref_gru_gates(const op_case *c, tg_tensor *const *in, const int *ints, double *out)
{
    (void)ints;
    int B = in[2]->rows, H = in[2]->cols;
    for (int b = 0; b < B; b++)
        for (int j = 0; j < H; j++) {
            double r = sigm(at(in[0], b, j) + at(in[1], b, j));
            double z = sigm(at(in[0], b, H + j) + at(in[1], b, H + j));
            double n = tanh(at(in[0], b, 2 * H + j) + r * at(in[1], b, 2 * H + j));
            out[b * c->out_cols + j] = (1 - z) * n + z * at(in[2], b, j);
        }
}

static const op_case gru_gates_cases[] = {
    {"gru_gates B=2 H=3", 3, {2, 2, 2}, {9, 9, 3}, -2, 2, 0, 0, {0}, {0}, 0, 2, 3,
     build_gru_gates, ref_gru_gates},
};

/* ------------------------------------------------------------ attention */

/* ints, when there are any, are the mask (rows*cols, nonzero = left out) */
static tg_tensor *build_softmax(tg_tape *t, const op_case *c, tg_tensor **in, const int *ints)
{
    return tg_softmax(t, in[0], c->n_ints ? ints : NULL);
}

static void ref_softmax(const op_case *c, tg_tensor *const *in, const int *ints, double *out)
{
    const tg_tensor *x = in[0];
    for (int i = 0; i < x->rows; i++) {
        double mx = -HUGE_VAL, s = 0;
        for (int j = 0; j < x->cols; j++)
            if (!c->n_ints || !ints[i * x->cols + j]) mx = fmax(mx, at(x, i, j));
        for (int j = 0; j < x->cols; j++) {
            int kept = !c->n_ints || !ints[i * x->cols + j];
            out[i * x->cols + j] = kept ? exp(at(x, i, j) - mx) : 0.0;
            s += out[i * x->cols + j];
        }
        for (int j = 0; j < x->cols; j++) out[i * x->cols + j] = s > 0 ? out[i * x->cols + j] / s : 0.0;
    }
}

static const op_case softmax_cases[] = {
    {"softmax", 1, {3}, {5}, -3, 3, 0, 0, {0}, {0}, 0, 3, 5, build_softmax, ref_softmax},
    /* row 1 is all masked: zeros */
    {"softmax masked", 1, {3}, {4}, -3, 3, 0, 12, {0, 1, 0, 0, 1, 1, 1, 1, 0, 0, 0, 1}, {0}, 0, 3,
     4, build_softmax, ref_softmax},
    {"softmax |x| in [1e3, 1e4]", 1, {2}, {4}, 1e3, 1e4, 1, 0, {0}, {0}, 0, 2, 4, build_softmax,
     ref_softmax},
};

static tg_tensor *build_attn_scores(tg_tape *t, const op_case *c, tg_tensor **in, const int *ints)
{
    (void)c, (void)ints;
    return tg_attn_scores(t, in[0], in[1]);
}

/* y[b, s] = q[b] . m[s*B + b] */
static void ref_attn_scores(const op_case *c, tg_tensor *const *in, const int *ints, double *out)
{
    (void)ints;
    int B = in[0]->rows, H = in[0]->cols, S = c->out_cols;
    for (int b = 0; b < B; b++)
        for (int s = 0; s < S; s++) {
            double d = 0;
            for (int j = 0; j < H; j++) d += at(in[0], b, j) * at(in[1], s * B + b, j);
            out[b * S + s] = d;
        }
}

static const op_case attn_scores_cases[] = {
    {"attn_scores B=3 S=4 H=5", 2, {3, 12}, {5, 5}, -1, 1, 0, 0, {0}, {0}, 0, 3, 4,
     build_attn_scores, ref_attn_scores},
    {"attn_scores B=2 S=3 H=19", 2, {2, 6}, {19, 19}, -1, 1, 0, 0, {0}, {0}, 0, 2, 3,
     build_attn_scores, ref_attn_scores},
    {"attn_scores B=1 S=1 H=2", 2, {1, 1}, {2, 2}, -1, 1, 0, 0, {0}, {0}, 0, 1, 1,
     build_attn_scores, ref_attn_scores},
};

static tg_tensor *build_attn_context(tg_tape *t, const op_case *c, tg_tensor **in, const int *ints)
{
    (void)c, (void)ints;
    return tg_attn_context(t, in[0], in[1]);
}

/* y[b] = sum_s a[b, s] m[s*B + b] */
static void ref_attn_context(const op_case *c, tg_tensor *const *in, const int *ints, double *out)
{
    (void)ints;
    int B = in[0]->rows, S = in[0]->cols, H = c->out_cols;
    for (int b = 0; b < B; b++)
        for (int j = 0; j < H; j++) {
            double d = 0;
            for (int s = 0; s < S; s++) d += at(in[0], b, s) * at(in[1], s * B + b, j);
            out[b * H + j] = d;
        }
}

static const op_case attn_context_cases[] = {
    {"attn_context B=3 S=4 H=5", 2, {3, 12}, {4, 5}, -1, 1, 0, 0, {0}, {0}, 0, 3, 5,
     build_attn_context, ref_attn_context},
    {"attn_context B=2 S=3 H=17", 2, {2, 6}, {3, 17}, -1, 1, 0, 0, {0}, {0}, 0, 2, 17,
     build_attn_context, ref_attn_context},
};

/* ------------------------------------------------------------ the table */

#define OPC_ENTRY(E, name) \
    [TG_OP_##E] = {#name, name##_cases, (int)(sizeof name##_cases / sizeof name##_cases[0])},
const op_cases op_case_table[TG_OP_COUNT] = {TG_OP_LIST(OPC_ENTRY)};
#undef OPC_ENTRY
