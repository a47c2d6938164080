/* Fused and SIMD fast paths against the plain forms they replace.
 *   - matmul on single-row / single-column / inner-size-1 shapes (which the
 *     GEMM sends to gemv / ger) against plain sums, values and gradients;
 *   - tg_lstm_gates / tg_gru_gates against the same step written with the
 *     primitive ops (values and every input gradient); tg_lstm_gates_rows
 *     against tg_lstm_gates over the gathered rows, bit for bit;
 *   - the SIMD sigmoid and tanh of the float build against libm in double;
 *   - the benchmark with the library's embedding fold (tg_rnn_forward given ids)
 *     against embedded rows through tg_rnn_forward given x: same loss, same
 *     gradient (tests/layers/test_stack_ids.c checks the layer itself). */
#include <criterion/criterion.h>
#include <float.h>
#include <math.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>

#include "bench_model.h"
#include "tapegrad.h"

#ifdef TG_REAL_DOUBLE
#define TOL 1e-12
#else
#define TOL 2e-6
#endif

static tg_tensor *heap(tg_rng *r, int rows, int cols, int grad, double scale)
{
    tg_tensor *x = tg_tensor_alloc(rows, cols, grad);
    cr_assert_not_null(x);
    for (size_t i = 0; i < tg_numel(x); i++) x->data[i] = (tg_real)(scale * tg_rng_normal(r));
    return x;
}

/* max |a - b| / max(1, max |b|) over n values */
static double rel_diff(const tg_real *a, const tg_real *b, size_t n)
{
    double d = 0, m = 1;
    for (size_t i = 0; i < n; i++) {
        d = fmax(d, fabs((double)a[i] - (double)b[i]));
        m = fmax(m, fabs((double)b[i]));
    }
    return d / m;
}

/* <y, w>: a scalar that weighs every output element differently. */
static tg_tensor *weighted_sum(tg_tape *t, tg_tensor *y, tg_rng *r)
{
    tg_tensor *w = tg_tensor_new(t, y->rows, y->cols, 0);
    for (size_t i = 0; i < tg_numel(w); i++) w->data[i] = (tg_real)tg_rng_normal(r);
    return tg_sum(t, tg_mul(t, y, w));
}

typedef tg_tensor *(*step_fn)(tg_tape *t, tg_tensor *xp, tg_tensor *hp, tg_tensor *s);

/* Runs fused and composed on copies of the same inputs and compares the
 * outputs and the gradients of all three inputs. */
static void compare_step(const char *what, int gates, step_fn fused, step_fn composed)
{
    const int B = 5, H = 7;
    tg_rng r;
    tg_rng_seed(&r, 77);
    tg_tensor *in[3] = {heap(&r, B, gates * H, 1, 1.5), heap(&r, B, gates * H, 1, 1.5),
                        heap(&r, B, H, 1, 1.0)};
    tg_tensor *out[2];
    tg_real *grads[2][3];
    tg_tape *t = tg_tape_new((size_t)1 << 20);
    for (int v = 0; v < 2; v++) {
        tg_tape_reset(t);
        for (int k = 0; k < 3; k++) memset(in[k]->grad, 0, tg_numel(in[k]) * sizeof(tg_real));
        tg_tensor *y = (v ? composed : fused)(t, in[0], in[1], in[2]);
        tg_rng wr;
        tg_rng_seed(&wr, 5);
        tg_backward(t, weighted_sum(t, y, &wr));
        out[v] = tg_tensor_alloc(y->rows, y->cols, 0);
        memcpy(out[v]->data, y->data, tg_numel(y) * sizeof(tg_real));
        for (int k = 0; k < 3; k++) {
            grads[v][k] = malloc(tg_numel(in[k]) * sizeof(tg_real));
            memcpy(grads[v][k], in[k]->grad, tg_numel(in[k]) * sizeof(tg_real));
        }
    }
    cr_assert_eq(out[0]->rows, out[1]->rows);
    double dy = rel_diff(out[0]->data, out[1]->data, tg_numel(out[0]));
    cr_assert(dy <= TOL, "%s: outputs differ by %.3g", what, dy);
    for (int k = 0; k < 3; k++) {
        double dg = rel_diff(grads[0][k], grads[1][k], tg_numel(in[k]));
        cr_assert(dg <= 4 * TOL, "%s: gradient of input %d differs by %.3g", what, k, dg);
        free(grads[0][k]);
        free(grads[1][k]);
        tg_tensor_free(in[k]);
    }
    tg_tensor_free(out[0]);
    tg_tensor_free(out[1]);
    tg_tape_free(t);
}

static tg_tensor *lstm_fused(tg_tape *t, tg_tensor *xp, tg_tensor *hp, tg_tensor *c)
{
    return tg_lstm_gates(t, xp, hp, c);
}

/* The composed LSTM step, output stacked as the fused op's: [h'; c']. */
static tg_tensor *lstm_composed(tg_tape *t, tg_tensor *xp, tg_tensor *hp, tg_tensor *c)
{
    int H = c->cols;
    tg_tensor *a = tg_add(t, xp, hp);
    tg_tensor *i = tg_sigmoid(t, tg_col_slice(t, a, 0, H));
    tg_tensor *f = tg_sigmoid(t, tg_col_slice(t, a, H, H));
    tg_tensor *g = tg_tanh(t, tg_col_slice(t, a, 2 * H, H));
    tg_tensor *o = tg_sigmoid(t, tg_col_slice(t, a, 3 * H, H));
    tg_tensor *cn = tg_add(t, tg_mul(t, f, c), tg_mul(t, i, g));
    tg_tensor *h = tg_mul(t, o, tg_tanh(t, cn));
    tg_tensor *both[2] = {h, cn};
    return tg_stack_rows(t, both, 2);
}

static tg_tensor *gru_fused(tg_tape *t, tg_tensor *xp, tg_tensor *hp, tg_tensor *h)
{
    return tg_gru_gates(t, xp, hp, h);
}

static tg_tensor *gru_composed(tg_tape *t, tg_tensor *xp, tg_tensor *hp, tg_tensor *h)
{
    int H = h->cols;
    tg_tensor *rz =
        tg_sigmoid(t, tg_add(t, tg_col_slice(t, xp, 0, 2 * H), tg_col_slice(t, hp, 0, 2 * H)));
    tg_tensor *r = tg_col_slice(t, rz, 0, H), *z = tg_col_slice(t, rz, H, H);
    tg_tensor *n = tg_tanh(
        t, tg_add(t, tg_col_slice(t, xp, 2 * H, H), tg_mul(t, r, tg_col_slice(t, hp, 2 * H, H))));
    return tg_add(t, tg_mul(t, tg_one_minus(t, z), n), tg_mul(t, z, h));
}

Test(fused, lstm_gates_equals_composed_step)
{
    compare_step("lstm_gates", 4, lstm_fused, lstm_composed);
}

Test(fused, gru_gates_equals_composed_step)
{
    compare_step("gru_gates", 3, gru_fused, gru_composed);
}

/* The gates of rows read in place (xp's row b = xs's row pos[b], rows
 * repeated, one unused) against the same gates over the gathered copy: the
 * same output and the same gradient of xs, hp and c, bit for bit (the
 * unroll's LSTM step on a projection by distinct ids). hp a leaf, or an op's
 * output (its gradient written whole: the VJP's parallel rows, then the
 * adds into xs's rows). */
static void compare_rows_with_gathered(int hp_is_op)
{
    enum { B = 6, H = 9, ROWS = 5 };
    static const int pos[B] = {3, 1, 3, 0, 3, 1};
    tg_tensor *out[2], *grads[2][3];
    for (int gathered = 0; gathered <= 1; gathered++) {
        tg_rng r;
        tg_rng_seed(&r, 41);
        tg_tape *t = tg_tape_new(1 << 20);
        tg_tensor *xs = heap(&r, ROWS, 4 * H, 1, 1.5), *hp0 = heap(&r, B, 4 * H, 1, 1.5);
        tg_tensor *c = heap(&r, B, H, 1, 1.0);
        tg_tensor *hp = hp_is_op ? tg_scale(t, hp0, 1) : hp0;
        tg_tensor *y = gathered ? tg_lstm_gates(t, tg_embedding(t, xs, pos, B), hp, c)
                                : tg_lstm_gates_rows(t, xs, pos, hp, c);
        tg_backward(t, weighted_sum(t, y, &r));
        out[gathered] = tg_tensor_alloc(2 * B, H, 0);
        memcpy(out[gathered]->data, y->data, tg_numel(y) * sizeof(tg_real));
        grads[gathered][0] = xs;
        grads[gathered][1] = hp0;
        grads[gathered][2] = c;
        tg_tape_free(t);
    }
    cr_expect(memcmp(out[0]->data, out[1]->data, tg_numel(out[0]) * sizeof(tg_real)) == 0,
              "outputs differ");
    static const char *const name[3] = {"xs", "hp", "c"};
    for (int i = 0; i < 3; i++) {
        const tg_tensor *a = grads[0][i], *b = grads[1][i];
        cr_expect(memcmp(a->grad, b->grad, tg_numel(a) * sizeof(tg_real)) == 0,
                  "hp %s: the gradient of %s differs", hp_is_op ? "an op output" : "a leaf",
                  name[i]);
        tg_tensor_free(grads[0][i]);
        tg_tensor_free(grads[1][i]);
    }
    tg_tensor_free(out[0]);
    tg_tensor_free(out[1]);
}

Test(fused, lstm_gates_rows_equals_gathered_rows) { compare_rows_with_gathered(0); }
Test(fused, lstm_gates_rows_equals_gathered_rows_hp_written) { compare_rows_with_gathered(1); }

/* A row index outside xs is a programming error: abort, naming it. */
Test(fused, lstm_gates_rows_index_outside_aborts, .signal = SIGABRT)
{
    static const int pos[2] = {0, 4};
    tg_tape *t = tg_tape_new(1 << 20);
    tg_tensor *xs = tg_tensor_new(t, 4, 8, 1), *hp = tg_tensor_new(t, 2, 8, 1);
    tg_lstm_gates_rows(t, xs, pos, hp, tg_tensor_new(t, 2, 2, 0));
}

/* ------------------------------------------------------------ level-2 GEMM shapes */

static double el(const tg_tensor *x, int tr, int i, int j)
{
    return tr ? (double)x->data[(size_t)j * x->cols + i] : (double)x->data[(size_t)i * x->cols + j];
}

/* C = op(A) op(B) and, for the seed G = dC, dA and dB against plain sums. */
static void check_matmul_shape(int m, int k, int n, int ta, int tb)
{
    tg_rng r;
    tg_rng_seed(&r, (uint64_t)(m * 100 + k * 10 + n + ta * 1000 + tb * 2000));
    tg_tensor *a = heap(&r, ta ? k : m, ta ? m : k, 1, 1.0),
              *b = heap(&r, tb ? n : k, tb ? k : n, 1, 1.0);
    tg_tape *t = tg_tape_new((size_t)1 << 20);
    tg_tensor *c = tg_matmul(t, a, b, ta, tb);
    tg_real *seed = malloc((size_t)m * n * sizeof *seed);
    for (int i = 0; i < m * n; i++) seed[i] = (tg_real)tg_rng_normal(&r);
    for (size_t i = 0; i < tg_numel(a); i++) a->grad[i] = 0.5; /* VJPs add: start non-zero */
    for (size_t i = 0; i < tg_numel(b); i++) b->grad[i] = -0.25;
    tg_backward_seeded(t, c, seed);
    double worst = 0;
    for (int i = 0; i < m; i++)
        for (int j = 0; j < n; j++) {
            double s = 0;
            for (int p = 0; p < k; p++) s += el(a, ta, i, p) * el(b, tb, p, j);
            worst = fmax(worst, fabs(s - (double)c->data[(size_t)i * n + j]));
        }
    for (int i = 0; i < m; i++) /* dA_op[i][p] = sum_j G[i][j] op(B)[p][j] */
        for (int p = 0; p < k; p++) {
            double s = 0.5;
            for (int j = 0; j < n; j++) s += (double)seed[i * n + j] * el(b, tb, p, j);
            size_t at = ta ? (size_t)p * a->cols + i : (size_t)i * a->cols + p;
            worst = fmax(worst, fabs(s - (double)a->grad[at]));
        }
    for (int p = 0; p < k; p++) /* dB_op[p][j] = sum_i op(A)[i][p] G[i][j] */
        for (int j = 0; j < n; j++) {
            double s = -0.25;
            for (int i = 0; i < m; i++) s += el(a, ta, i, p) * (double)seed[i * n + j];
            size_t at = tb ? (size_t)j * b->cols + p : (size_t)p * b->cols + j;
            worst = fmax(worst, fabs(s - (double)b->grad[at]));
        }
    cr_assert(worst <= 50 * TOL, "matmul %dx%dx%d ta=%d tb=%d: off by %.3g", m, k, n, ta, tb,
              worst);
    free(seed);
    tg_tape_free(t);
    tg_tensor_free(a);
    tg_tensor_free(b);
}

Test(fused, matmul_level2_shapes_match_plain_sums)
{
    const int shapes[][3] = {{1, 7, 5}, {6, 7, 1}, {6, 1, 5}, {1, 1, 5},
                             {1, 7, 1}, {6, 1, 1}, {1, 1, 1}, {4, 3, 5}};
    for (size_t s = 0; s < sizeof shapes / sizeof shapes[0]; s++)
        for (int ta = 0; ta <= 1; ta++)
            for (int tb = 0; tb <= 1; tb++)
                check_matmul_shape(shapes[s][0], shapes[s][1], shapes[s][2], ta, tb);
}

/* ------------------------------------------------------------ SIMD sigmoid, tanh */

/* Relative error of the ops' values against libm in double, over a dense
 * sweep plus special points; 4 float ulps allowed (the double build is
 * libm itself). */
Test(fused, simd_sigmoid_and_tanh_match_libm)
{
    enum { N = 200001 };
    tg_tape *t = tg_tape_new((size_t)1 << 24);
    tg_tensor *x = tg_tensor_new(t, 1, N + 8, 0);
    for (int i = 0; i < N; i++) x->data[i] = (tg_real)(-40.0 + 80.0 * i / (N - 1));
    const double special[8] = {0.0, -0.0, 1e-30, -1e-8, 0.624, -0.626, 88.5, -200.0};
    for (int i = 0; i < 8; i++) x->data[N + i] = (tg_real)special[i];
    tg_tensor *s = tg_sigmoid(t, x), *th = tg_tanh(t, x);
    double ulp = (double)(sizeof(tg_real) == sizeof(float) ? FLT_EPSILON : DBL_EPSILON);
    double worst_s = 0, worst_t = 0;
    for (int i = 0; i < N + 8; i++) {
        double v = (double)x->data[i];
        double es = 1 / (1 + exp(-v)), et = tanh(v);
        double rs = fabs((double)s->data[i] - es) / fmax(es, 1e-30);
        double rt = fabs((double)th->data[i] - et) / fmax(fabs(et), 1e-30);
        cr_assert((double)s->data[i] >= 0 && (double)s->data[i] <= 1, "sigmoid(%g) = %g", v,
                  (double)s->data[i]);
        cr_assert(fabs((double)th->data[i]) <= 1, "tanh(%g) = %g", v, (double)th->data[i]);
        worst_s = fmax(worst_s, rs);
        worst_t = fmax(worst_t, rt);
    }
    cr_log_info("sigmoid %.3g, tanh %.3g (relative; ulp %.3g)", worst_s, worst_t, ulp);
    cr_assert(worst_s <= 4 * ulp, "sigmoid relative error %.3g > 4 ulp", worst_s);
    cr_assert(worst_t <= 4 * ulp, "tanh relative error %.3g > 4 ulp", worst_t);
    cr_assert_eq((double)th->data[N + 6], 1.0);
    cr_assert_eq((double)th->data[N + 7], -1.0);
    cr_assert_eq((double)th->data[N + 0], 0.0);
    tg_tape_free(t);
}

/* ------------------------------------------------------------ embedding fold */

/* Two configurations of the same model (same weights): same loss and
 * gradient up to rounding. */
static void compare_configs(const char *what, const bench_config *c0, const bench_config *c1)
{
    bench_model m[2];
    double loss[2];
    const bench_config *cs[2] = {c0, c1};
    for (int v = 0; v < 2; v++) {
        cr_assert_eq(bench_model_init(&m[v], cs[v]), 0);
        loss[v] = bench_forward_backward(&m[v], 1);
    }
    size_t n = tg_params_numel(m[0].params);
    cr_assert_eq(n, tg_params_numel(m[1].params));
    cr_assert_eq(
        memcmp(tg_params_data(m[0].params), tg_params_data(m[1].params), n * sizeof(tg_real)), 0,
        "%s: different initial weights", what);
    cr_assert(fabs(loss[0] - loss[1]) <= TOL * (1 + fabs(loss[0])), "%s: loss %.9g vs %.9g", what,
              loss[0], loss[1]);
    double dg = rel_diff(tg_params_grad(m[1].params), tg_params_grad(m[0].params), n);
    cr_assert(dg <= 4 * TOL, "%s: gradients differ by %.3g", what, dg);
    bench_model_free(&m[0]);
    bench_model_free(&m[1]);
}

static bench_config tiny(const char *cell)
{
    bench_config c;
    memset(&c, 0, sizeof c);
    c.task = BENCH_CHAR;
    c.cell = tg_cell_kind_by_name(cell);
    c.vocab = 7;
    c.embed = 5;
    c.hidden = 6;
    c.layers = 2;
    c.seq = 4;
    c.batch = 3;
    c.shards = 1;
    c.seed = 9;
    return c;
}

/* The bench with the embedding table projected and gathered (7 < 4*3 rows)
 * against embedded rows projected, over the same weights. */
static void compare_compositions(const char *cell)
{
    bench_config a = tiny(cell), b = tiny(cell);
    b.fold_embed = 1;
    compare_configs(cell, &a, &b);
}

Test(fused, bench_folded_lstm_equals_unfolded) { compare_compositions("lstm"); }
Test(fused, bench_folded_gru_equals_unfolded) { compare_compositions("gru"); }
Test(fused, bench_folded_rnn_equals_unfolded) { compare_compositions("rnn"); }
Test(fused, bench_folded_mgu_equals_unfolded) { compare_compositions("mgu"); }
