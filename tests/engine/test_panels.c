/* Weight panels (graph/tg_panels.h): products with few rows against a leaf
 * matrix or an op's output run on that matrix packed once per tape. Checked
 * here:
 *   - C = A op(B) and dA = dC op(B)^T (added into a pre-filled gradient)
 *     against sums in double, over row counts that exercise every row block
 *     (8, 4, 2, 1) and column counts that end inside, at and past a panel;
 *   - the products really ran on panels where the CPU has them;
 *   - a leaf changed after tg_backward or tg_tape_reset is packed again, so
 *     stale panels never reach a result; a tape that holds its parameters'
 *     panels across resets (tg_tape_hold_param_panels) packs a parameter
 *     once, and a changed one again once they are released;
 *   - an op's output is packed too, and a full cache takes over the slots of
 *     matrices seen once;
 *   - panels hold op(B) exactly: column j of panel p is op(B)'s column
 *     32p + j, zeros past N, for B and B^T (packed in 8 x 8 blocks, with
 *     tails in both directions);
 *   - every kernel this CPU runs (AVX-512, AVX2+FMA), whichever the process
 *     picked, straight from the panels against double sums over shapes with
 *     row and column tails, with nothing added, C added (beta 1), a bias
 *     row or a matrix of its own added (tg_gemm_panels_add; a bias row gives
 *     the bits of the bias copied into C and beta 1);
 *   - affine on panels (bias row and full bias) against double sums, and
 *     its input gradient, written over a poisoned buffer on panels; where a CPU runs both, the two give
 *     the same bits; neither writes outside C's block; threads change no bit. */
#include <criterion/criterion.h>
#include <limits.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#ifdef _OPENMP
#include <omp.h>
#endif

#include "tg_op.h"
#include "tg_panels.h"

static tg_tensor *random_tensor(tg_rng *r, int rows, int cols, int grad)
{
    tg_tensor *x = tg_tensor_alloc(rows, cols, grad);
    cr_assert_not_null(x);
    for (size_t i = 0; i < tg_numel(x); i++) x->data[i] = (tg_real)tg_rng_normal(r);
    return x;
}

/* op(B)[p][j] */
static double opb(const tg_tensor *b, int tb, int p, int j)
{
    return tb ? (double)b->data[(size_t)j * b->cols + p] : (double)b->data[(size_t)p * b->cols + j];
}

/* The panel kernels this build and CPU run (whatever TG_ISA picked for
 * the process); 0 when products here never run on panels. */
static int kernels_here(tg_panel_isa isa[2])
{
    int n = 0;
    if (!tg_panels_available()) return 0; /* TG_ISA=blas, or no kernel: nothing packs */
    if (tg_panels_isa_runs(TG_PANEL_AVX512)) isa[n++] = TG_PANEL_AVX512;
    if (tg_panels_isa_runs(TG_PANEL_AVX2)) isa[n++] = TG_PANEL_AVX2;
    return n;
}

/* The product C = A op(B) (A m x k, B a leaf) made twice on one tape, as a
 * recurrent step makes it (a matrix with few rows is packed at its second
 * use), each against double sums, and dA from both (seed G on each) against
 * 0.5 + 2 G op(B)^T; returns the worst error over the longest sum's length
 * (a float sum of n terms of size ~sqrt(n) rounds by up to ~n eps; a wrong
 * element is off by ~1). */
static double check_shape(int m, int n, int k, int tb)
{
    tg_rng r;
    tg_rng_seed(&r, (uint64_t)(m * 7919 + n * 104729 + k * 31 + tb));
    tg_tensor *a = random_tensor(&r, m, k, 1), *b = random_tensor(&r, tb ? n : k, tb ? k : n, 0);
    for (size_t i = 0; i < tg_numel(a); i++) a->grad[i] = 0.5f; /* VJPs add */
    tg_tape *t = tg_tape_new((size_t)1 << 22);
    tg_tensor *c[2] = {tg_matmul(t, a, b, 0, tb), tg_matmul(t, a, b, 0, tb)};
    if (tg_panels_available() && tg_panels_suit(m, n, k))
        cr_expect(tg_panels_held(tg_matmul_panel_cache(t), b, tb),
                  "%dx%dx%d tb=%d: the products did not pack B", m, n, k, tb);
    tg_real *seed = malloc((size_t)m * n * sizeof *seed);
    for (int i = 0; i < m * n; i++) seed[i] = (tg_real)tg_rng_normal(&r);
    tg_backward_seeded(t, tg_add(t, c[0], c[1]), seed);
    double worst = 0;
    for (int i = 0; i < m; i++)
        for (int j = 0; j < n; j++) {
            double s = 0;
            for (int p = 0; p < k; p++) s += (double)a->data[(size_t)i * k + p] * opb(b, tb, p, j);
            for (int v = 0; v < 2; v++)
                worst = fmax(worst, fabs(s - (double)c[v]->data[(size_t)i * n + j]));
        }
    for (int i = 0; i < m; i++) /* dA[i][p] = 0.5 + 2 sum_j G[i][j] op(B)[p][j] */
        for (int p = 0; p < k; p++) {
            double s = 0;
            for (int j = 0; j < n; j++) s += (double)seed[(size_t)i * n + j] * opb(b, tb, p, j);
            worst = fmax(worst, fabs(0.5 + 2 * s - (double)a->grad[(size_t)i * k + p]));
        }
    free(seed);
    tg_tape_free(t);
    tg_tensor_free(a);
    tg_tensor_free(b);
    return worst / (double)(k > n ? k : n);
}

Test(panels, products_and_input_gradients_match_double_sums)
{
    static const int ms[] = {1, 2, 3, 5, 7, 8, 9, 13, 16, 31, 64, 100, 257};
    static const int ns[] = {16, 17, 31, 32, 33, 100, 256};
    static const int ks[] = {8, 9, 100};
    cr_log_info("panel kernel %s", tg_panels_available() ? "available" : "not available (BLAS)");
    double tol = sizeof(tg_real) == sizeof(float) ? 2e-6 : 1e-14;
    for (size_t i = 0; i < sizeof ms / sizeof ms[0]; i++)
        for (size_t j = 0; j < sizeof ns / sizeof ns[0]; j++)
            for (size_t l = 0; l < sizeof ks / sizeof ks[0]; l++)
                for (int tb = 0; tb <= 1; tb++) {
                    double e = check_shape(ms[i], ns[j], ks[l], tb);
                    cr_assert(e <= tol, "%dx%dx%d tb=%d: off by %.3g (over the sum's length)",
                              ms[i], ns[j], ks[l], tb, e);
                }
}

/* The recurrent shapes of the benchmarks, W_hh^T at hidden 256 and 512. */
Test(panels, recurrent_shapes)
{
    double tol = sizeof(tg_real) == sizeof(float) ? 2e-6 : 1e-14;
    cr_assert(check_shape(16, 1024, 256, 1) <= tol);
    double e = check_shape(32, 2048, 512, 1);
    cr_log_info("32x2048x512: %.3g", e);
    cr_assert(e <= tol);
    cr_assert(check_shape(1, 100, 100, 1) <= tol);
}

/* What a panel product adds: nothing, C itself (beta 1), a bias row, or a
 * matrix of its own (rows ldr apart). */
enum { ADD_NONE, ADD_C, ADD_BIAS, ADD_ROWS, ADDS };

static const tg_real *addend(int add, const tg_real *c, const tg_real *bias, const tg_real *rows)
{
    return add == ADD_C ? c : add == ADD_BIAS ? bias : add == ADD_ROWS ? rows : NULL;
}

static int addend_ld(int add, int ldc, int ldr)
{
    return add == ADD_C ? ldc : add == ADD_ROWS ? ldr : 0;
}

/* m x ldr values, D[i][j] = (i ldr + j) mod 11 - 5. */
static tg_real *own_rows(int m, int ldr)
{
    tg_real *d = malloc((size_t)m * ldr * sizeof *d);
    cr_assert_not_null(d);
    for (int x = 0; x < m * ldr; x++) d[x] = (tg_real)(x % 11 - 5);
    return d;
}

/* C = A op(B) + D (D: none, C0[x] = x mod 7, bias[j] = j mod 5 - 2 on
 * every row, or own_rows with ldr = n + 1) straight from the panels on each kernel here, against sums in
 * double; returns the worst error over the longest sum's length, and
 * expects the kernels' results bit for bit equal, and a bias row to give
 * the bits of the bias copied into C and added with beta 1. */
static double kernels_check_shape(const tg_panel_isa *isa, int kernels, int m, int n, int k, int tb,
                                  int add)
{
    tg_rng r;
    tg_rng_seed(&r, (uint64_t)(m * 7919 + n * 104729 + k * 31 + tb * 2 + add));
    tg_tensor *a = random_tensor(&r, m, k, 0), *b = random_tensor(&r, tb ? n : k, tb ? k : n, 0);
    tg_panel_cache *cache = tg_panel_cache_new();
    const tg_real *p = tg_panels_of(cache, b, tb, 128);
    cr_assert_not_null(p);
    size_t bytes = (size_t)m * n * sizeof(tg_real);
    tg_real *c[2] = {malloc(bytes), malloc(bytes)}, *copied = malloc(bytes);
    tg_real *bias = malloc((size_t)n * sizeof *bias), *rows = own_rows(m, n + 1);
    for (int j = 0; j < n; j++) bias[j] = (tg_real)(j % 5 - 2);
    double worst = 0;
    for (int v = 0; v < kernels; v++) {
        for (int x = 0; x < m * n; x++) c[v][x] = (tg_real)(x % 7);
        tg_gemm_panels_isa(isa[v], m, n, k, a->data, k, p, addend(add, c[v], bias, rows),
                           addend_ld(add, n, n + 1), c[v], n, 1);
        if (add == ADD_BIAS) {
            for (int x = 0; x < m * n; x++) copied[x] = bias[x % n];
            tg_gemm_panels_isa(isa[v], m, n, k, a->data, k, p, copied, n, copied, n, 1);
            cr_expect(memcmp(copied, c[v], bytes) == 0,
                      "%s %dx%dx%d tb=%d: a bias row added differs from it copied first",
                      tg_panels_isa_name(isa[v]), m, n, k, tb);
        }
        for (int i = 0; i < m; i++)
            for (int j = 0; j < n; j++) {
                double s = add == ADD_C      ? (double)((i * n + j) % 7)
                           : add == ADD_BIAS ? (double)bias[j]
                           : add == ADD_ROWS ? (double)rows[(size_t)i * (n + 1) + j]
                                             : 0;
                for (int q = 0; q < k; q++)
                    s += (double)a->data[(size_t)i * k + q] * opb(b, tb, q, j);
                worst = fmax(worst, fabs(s - (double)c[v][(size_t)i * n + j]));
            }
    }
    if (kernels == 2)
        cr_expect(memcmp(c[0], c[1], bytes) == 0,
                  "%dx%dx%d tb=%d add=%d: the %s and %s kernels differ in bits", m, n, k, tb, add,
                  tg_panels_isa_name(isa[0]), tg_panels_isa_name(isa[1]));
    free(c[0]);
    free(c[1]);
    free(copied);
    free(bias);
    free(rows);
    tg_panel_cache_free(cache);
    tg_tensor_free(a);
    tg_tensor_free(b);
    return worst / (double)(k > n ? k : n);
}

Test(panels, every_kernel_here_matches_double_sums)
{
    tg_panel_isa isa[2];
    int kernels = kernels_here(isa);
    cr_log_info("panel kernels here: %s%s%s (process: %s)",
                kernels ? tg_panels_isa_name(isa[0]) : "none",
                kernels > 1 ? ", " : "", kernels > 1 ? tg_panels_isa_name(isa[1]) : "",
                tg_panel_kernel());
    if (!kernels) cr_skip_test("no panel kernel runs here (%s)", tg_panel_kernel());
    /* rows: every block (6, 4, 2, 1 for AVX2; 8, 4, 2, 1 for AVX-512) and
     * their tails; columns ending inside, at and past a half panel and a panel */
    static const int ms[] = {1, 2, 3, 4, 5, 6, 7, 8, 9, 11, 12, 13, 17, 31, 64};
    static const int ns[] = {1,  5,  8,  9,  15, 16, 17,  24,  31,  32,
                             33, 40, 47, 48, 63, 65, 100, 128, 129, 161, 257};
    static const int ks[] = {1, 7, 8, 100};
    double tol = sizeof(tg_real) == sizeof(float) ? 2e-6 : 1e-14;
    for (size_t i = 0; i < sizeof ms / sizeof ms[0]; i++)
        for (size_t j = 0; j < sizeof ns / sizeof ns[0]; j++)
            for (size_t l = 0; l < sizeof ks / sizeof ks[0]; l++)
                for (int tb = 0; tb <= 1; tb++)
                    for (int add = 0; add < ADDS; add++) {
                        double e = kernels_check_shape(isa, kernels, ms[i], ns[j], ks[l], tb, add);
                        cr_assert(e <= tol, "%dx%dx%d tb=%d add=%d: off by %.3g", ms[i], ns[j],
                                  ks[l], tb, add, e);
                    }
    cr_assert(kernels_check_shape(isa, kernels, 32, 1024, 256, 1, ADD_C) <= tol); /* a recurrent step */
    cr_assert(kernels_check_shape(isa, kernels, 64, 1000, 256, 1, ADD_BIAS) <= tol); /* an output layer */
}

/* y = A B^T on one tape, twice, with B's values changed in between. */
static void expect_follows(tg_tape *t, tg_tensor *a, tg_tensor *b, const char *when)
{
    tg_tensor *y = tg_matmul(t, a, b, 0, 1);
    for (int i = 0; i < a->rows; i++)
        for (int j = 0; j < b->rows; j++) {
            double s = 0;
            for (int p = 0; p < a->cols; p++)
                s += (double)a->data[(size_t)i * a->cols + p] * (double)b->data[(size_t)j * b->cols + p];
            cr_assert(fabs(s - (double)y->data[(size_t)i * b->rows + j]) < 1e-4,
                      "%s: stale panels (%d,%d): %g vs %g", when, i, j, s,
                      (double)y->data[(size_t)i * b->rows + j]);
        }
}

/* The layout the kernels read: panel p (K rows of 32) holds op(B)'s columns
 * 32p .. 32p+31, zeros past N; exact copies, so compared bit for bit. */
Test(panels, panels_hold_op_b_exactly)
{
    if (!tg_panels_available())
        cr_skip_test("no panel kernel runs here (%s)", tg_panel_kernel());
    static const int shapes[][2] = {{1024, 256}, {1000, 256}, {37, 13}, {8, 8}, {45, 7},
                                    {33, 300}, {3, 17}, {64, 9}, {17, 64}};
    tg_rng r;
    tg_rng_seed(&r, 11);
    for (size_t s = 0; s < sizeof shapes / sizeof *shapes; s++)
        for (int tb = 0; tb <= 1; tb++) {
            int N = shapes[s][0], K = shapes[s][1];
            tg_tensor *b = random_tensor(&r, tb ? N : K, tb ? K : N, 0);
            tg_panel_cache *cache = tg_panel_cache_new();
            const tg_real *p = tg_panels_of(cache, b, tb, 128);
            cr_assert_not_null(p);
            int bad = 0;
            for (int j = 0; j < (N + 31) / 32 * 32 && !bad; j++)
                for (int q = 0; q < K && !bad; q++) {
                    tg_real want = j < N ? (tg_real)opb(b, tb, q, j) : 0;
                    tg_real got = p[(size_t)(j / 32) * K * 32 + (size_t)q * 32 + j % 32];
                    bad = memcmp(&want, &got, sizeof got) != 0;
                    cr_expect(!bad, "N %d K %d tb %d: column %d row %d holds %g, want %g", N, K,
                              tb, j, q, (double)got, (double)want);
                }
            tg_panel_cache_free(cache);
            tg_tensor_free(b);
        }
}

Test(panels, changed_leaf_is_packed_again)
{
    tg_rng r;
    tg_rng_seed(&r, 5);
    tg_tensor *a = random_tensor(&r, 4, 40, 1), *b = random_tensor(&r, 48, 40, 1);
    tg_tape *t = tg_tape_new((size_t)1 << 20);
    tg_tensor *y = tg_matmul(t, a, b, 0, 1);
    expect_follows(t, a, b, "first use");
    tg_backward(t, tg_sum(t, y));
    for (size_t i = 0; i < tg_numel(b); i++) b->data[i] -= 0.1f * b->grad[i]; /* an SGD step */
    expect_follows(t, a, b, "after tg_backward, same tape");
    tg_tape_reset(t);
    for (size_t i = 0; i < tg_numel(b); i++) b->data[i] *= -2;
    expect_follows(t, a, b, "after tg_tape_reset");
    tg_tape_free(t);
    tg_tensor_free(a);
    tg_tensor_free(b);
}

/* On a tape that records, a parameter is packed at its first use, whatever
 * its rows: a model's weight comes again at every step of an unroll (its
 * first step on BLAS cost f 3-4% of its step). A plain leaf with few rows
 * waits for its second use, and so does a parameter on a tape that does not
 * record (a decoder step's, reset every step). Changed between tapes, the
 * parameter's panels follow it. */
Test(panels, parameter_packed_at_first_use)
{
    if (!tg_panels_available())
        cr_skip_test("no panel kernel runs here (%s)", tg_panel_kernel());
    tg_rng r;
    tg_rng_seed(&r, 6);
    tg_params *ps = tg_params_new();
    tg_tensor *w = tg_param_uniform(ps, "w", 48, 40, &r, 0.5);
    tg_tensor *a = random_tensor(&r, 4, 40, 1), *b = random_tensor(&r, 48, 40, 1);
    tg_tape *t = tg_tape_new((size_t)1 << 20);
    expect_follows(t, a, w, "a parameter's first use");
    cr_assert(tg_panels_held(tg_matmul_panel_cache(t), w, 1),
              "a parameter was not packed at its first use");
    expect_follows(t, a, b, "a leaf's first use");
    cr_assert(!tg_panels_held(tg_matmul_panel_cache(t), b, 1),
              "a leaf with 4 rows was packed at its first use");
    tg_tape_reset(t);
    for (size_t i = 0; i < tg_numel(w); i++) w->data[i] *= -2;
    expect_follows(t, a, w, "the parameter changed, after tg_tape_reset");
    tg_tape_reset(t);
    tg_tape_set_grad(t, 0);
    expect_follows(t, a, w, "a parameter's first use, not recorded");
    cr_assert(!tg_panels_held(tg_matmul_panel_cache(t), w, 1),
              "a parameter with 4 rows was packed at its first use on a tape that does not record");
    tg_tape_free(t);
    tg_tensor_free(a);
    tg_tensor_free(b);
    tg_params_free(ps);
}

/* A tape that holds its parameters' panels (tg_tape_hold_param_panels: a
 * decoder's steps, each on a reset tape) packs a parameter at its first
 * use even when it does not record, and finds the panels again after
 * every reset, until the last of nested holds is released; released, a
 * changed parameter is packed again, before the next reset too (the tape's
 * cache still names the released panels). */
Test(panels, held_parameter_panels_outlive_resets)
{
    if (!tg_panels_available())
        cr_skip_test("no panel kernel runs here (%s)", tg_panel_kernel());
    tg_rng r;
    tg_rng_seed(&r, 7);
    tg_params *ps = tg_params_new();
    tg_tensor *w = tg_param_uniform(ps, "w", 48, 40, &r, 0.5);
    tg_tensor *a = random_tensor(&r, 4, 40, 1);
    tg_tape *t = tg_tape_new((size_t)1 << 20);
    tg_tape_set_grad(t, 0);
    cr_assert_eq(tg_tape_hold_param_panels(t, 1), 0);
    cr_assert_eq(tg_tape_hold_param_panels(t, 1), 0, "holds nest");
    for (int step = 0; step < 4; step++) {
        if (step == 2) tg_tape_hold_param_panels(t, 0); /* the inner hold's end */
        tg_tape_reset(t);
        cr_assert(!tg_panels_held(tg_matmul_panel_cache(t), w, 1));
        expect_follows(t, a, w, "a held parameter");
        cr_assert(tg_panels_held(tg_matmul_panel_cache(t), w, 1),
                  "step %d: a held parameter was not on panels at its first use", step);
    }
    cr_assert_eq(tg_tape_hold_param_panels(t, 0), 0);
    cr_assert_eq(tg_tape_hold_param_panels(t, 0), 0, "a release too many does nothing");
    for (size_t i = 0; i < tg_numel(w); i++) w->data[i] *= -2;
    expect_follows(t, a, w, "changed after the panels were released, no reset between");
    tg_tape_reset(t);
    for (size_t i = 0; i < tg_numel(w); i++) w->data[i] += 1;
    expect_follows(t, a, w, "changed after the panels were released and a reset");
    cr_assert(!tg_panels_held(tg_matmul_panel_cache(t), w, 1),
              "released, a parameter with 4 rows is not packed at its first use unrecorded");
    cr_assert_eq(tg_tape_hold_param_panels(t, 1), 0, "held again");
    for (size_t i = 0; i < tg_numel(w); i++) w->data[i] *= 3;
    expect_follows(t, a, w, "held again, the parameter changed before");
    tg_tape_free(t); /* frees the held panels */
    tg_tensor_free(a);
    tg_params_free(ps);
}

/* On a tape that holds its parameters' panels every row count runs on
 * them, one row too (alone, 4 panels at a time): a row's product has the
 * same bits alone as among others, so a sentence translates the same in a
 * batch or alone. x W^T and x W^T + bias, shapes with panel tails. */
Test(panels, a_row_alone_has_its_bits_among_many)
{
    if (!tg_panels_available())
        cr_skip_test("no panel kernel runs here (%s)", tg_panel_kernel());
    static const int shapes[][3] = {{9, 1000, 256}, {3, 77, 40}, {17, 257, 33}, {2, 128, 8}};
    tg_rng r;
    tg_rng_seed(&r, 9);
    for (size_t s = 0; s < sizeof shapes / sizeof *shapes; s++) {
        int m = shapes[s][0], n = shapes[s][1], k = shapes[s][2];
        tg_params *ps = tg_params_new();
        tg_tensor *w = tg_param_uniform(ps, "w", n, k, &r, 0.5);
        tg_tensor *bias = tg_param_uniform(ps, "b", 1, n, &r, 0.5);
        tg_tensor *x = random_tensor(&r, m, k, 0);
        tg_tape *t = tg_tape_new((size_t)8 << 20);
        tg_tape_set_grad(t, 0);
        cr_assert_eq(tg_tape_hold_param_panels(t, 1), 0);
        for (int with_bias = 0; with_bias <= 1; with_bias++) {
            tg_tensor *all = with_bias ? tg_affine(t, x, w, bias) : tg_matmul(t, x, w, 0, 1);
            for (int i = 0; i < m; i++) {
                tg_tensor *row = tg_tensor_new(t, 1, k, 0);
                memcpy(row->data, x->data + (size_t)i * k, (size_t)k * sizeof *row->data);
                tg_tensor *one =
                    with_bias ? tg_affine(t, row, w, bias) : tg_matmul(t, row, w, 0, 1);
                size_t bytes = (size_t)n * sizeof *one->data;
                cr_assert_eq(memcmp(one->data, all->data + (size_t)i * n, bytes), 0,
                             "%dx%dx%d, bias %d: row %d alone differs", m, n, k, with_bias, i);
            }
        }
        tg_tape_hold_param_panels(t, 0);
        tg_tape_free(t);
        tg_tensor_free(x);
        tg_params_free(ps);
    }
}

/* The kernel writes C's m x n block and nothing else: every row is followed
 * by guard columns (ldc > n) and the block by a guard row, which must keep
 * their values (masked stores are invisible to AddressSanitizer). */
Test(panels, kernel_writes_only_its_block)
{
    tg_panel_isa isa[2];
    int kernels = kernels_here(isa);
    if (!kernels) cr_skip_test("no panel kernel runs here (%s)", tg_panel_kernel());
    tg_rng r;
    tg_rng_seed(&r, 17);
    const int ms[] = {1, 2, 3, 4, 5, 6, 7, 8, 9, 13, 15};
    const int ns[] = {1, 9, 16, 17, 31, 32, 33, 47, 63, 64, 65, 127, 128, 129, 161, 257};
    const tg_real guard = (tg_real)12345.5;
    for (size_t i = 0; i < sizeof ms / sizeof ms[0]; i++)
        for (size_t j = 0; j < sizeof ns / sizeof ns[0]; j++) {
            int m = ms[i], n = ns[j], k = 9, ldc = n + 3;
            tg_tensor *a = random_tensor(&r, m, k, 0), *b = random_tensor(&r, n, k, 0);
            tg_panel_cache *cache = tg_panel_cache_new();
            const tg_real *p = tg_panels_of(cache, b, 1, 128);
            cr_assert_not_null(p);
            tg_real *c = malloc((size_t)(m + 1) * ldc * sizeof *c), *rows = own_rows(m, n);
            tg_real *bias = malloc((size_t)n * sizeof *bias);
            for (int x = 0; x < n; x++) bias[x] = (tg_real)x;
            for (int v = 0; v < kernels; v++)
                for (int add = 0; add < ADDS; add++) {
                    for (int x = 0; x < (m + 1) * ldc; x++) c[x] = guard;
                    tg_gemm_panels_isa(isa[v], m, n, k, a->data, k, p, addend(add, c, bias, rows),
                                       addend_ld(add, ldc, n), c, ldc, 1);
                    for (int x = 0; x < (m + 1) * ldc; x++) {
                        int row = x / ldc, col = x % ldc;
                        if (row < m && col < n) continue;
                        cr_assert_eq(c[x], guard, "%s m=%d n=%d add=%d: wrote row %d column %d",
                                     tg_panels_isa_name(isa[v]), m, n, add, row, col);
                    }
                }
            free(c);
            free(bias);
            free(rows);
            tg_panel_cache_free(cache);
            tg_tensor_free(a);
            tg_tensor_free(b);
        }
}

/* A large product split over threads gives the single thread's bits. */
Test(panels, threads_change_no_bit)
{
    tg_panel_isa isa[2];
    int kernels = kernels_here(isa);
    if (!kernels) cr_skip_test("no panel kernel runs here (%s)", tg_panel_kernel());
    tg_rng r;
    tg_rng_seed(&r, 23);
    int m = 301, n = 257, k = 256;
    tg_tensor *a = random_tensor(&r, m, k, 0), *b = random_tensor(&r, n, k, 0);
    tg_panel_cache *cache = tg_panel_cache_new();
    const tg_real *p = tg_panels_of(cache, b, 1, 128);
    cr_assert_not_null(p);
    tg_real *c1 = malloc((size_t)m * n * sizeof *c1), *c2 = malloc((size_t)m * n * sizeof *c2);
    tg_real bias[257], *rows = own_rows(m, n + 1);
    for (int j = 0; j < n; j++) bias[j] = (tg_real)(j % 3);
    for (int v = 0; v < kernels; v++)
        for (int add = 0; add < ADDS; add++) {
            for (int x = 0; x < m * n; x++) c1[x] = c2[x] = (tg_real)(x % 7);
            int ldd = addend_ld(add, n, n + 1);
            tg_gemm_panels_isa(isa[v], m, n, k, a->data, k, p, addend(add, c1, bias, rows), ldd, c1,
                               n, 1);
            tg_gemm_panels_isa(isa[v], m, n, k, a->data, k, p, addend(add, c2, bias, rows), ldd, c2,
                               n, 2);
            cr_assert(memcmp(c1, c2, (size_t)m * n * sizeof *c1) == 0,
                      "%s add=%d: 1 and 2 threads differ", tg_panels_isa_name(isa[v]), add);
        }
    free(rows);
    free(c1);
    free(c2);
    tg_panel_cache_free(cache);
    tg_tensor_free(a);
    tg_tensor_free(b);
}

/* y = affine(tanh(x0), W, B) with enough rows (130) that W is packed at
 * once, B a bias row or a full m x n bias: y against double sums, and,
 * loss = sum(y * coef), dx0 = (coef W) (1 - tanh^2): tanh's output is
 * affine's one use, so its gradient is written over NaN, on panels of W
 * (130 x 40 x 50 suits them and packs at once on either kernel). */
Test(panels, affine_on_panels_adds_bias_and_writes_input_gradient)
{
    if (!tg_panels_available())
        cr_skip_test("no panel kernel runs here (%s)", tg_panel_kernel());
    enum { M = 130, K = 40, NO = 50 };
    tg_rng r;
    tg_rng_seed(&r, 29);
    for (int full = 0; full <= 1; full++) {
        tg_tape *t = tg_tape_new((size_t)1 << 22);
        tg_tensor *x0 = tg_tensor_new(t, M, K, 1), *w = tg_tensor_new(t, NO, K, 1);
        tg_tensor *b = tg_tensor_new(t, full ? M : 1, NO, 1), *coef = tg_tensor_new(t, M, NO, 0);
        tg_tensor *all[4] = {x0, w, b, coef};
        for (int q = 0; q < 4; q++)
            for (size_t i = 0; i < tg_numel(all[q]); i++)
                all[q]->data[i] = (tg_real)(0.5 * tg_rng_normal(&r));
        tg_tensor *a = tg_tanh(t, x0), *y = tg_affine(t, a, w, b);
        cr_assert(tg_panels_held(tg_matmul_panel_cache(t), w, 1), "W^T was not packed");
        double worst = 0;
        for (int i = 0; i < M; i++)
            for (int j = 0; j < NO; j++) {
                double s = (double)b->data[(size_t)(full ? i : 0) * NO + j];
                for (int q = 0; q < K; q++)
                    s += (double)a->data[(size_t)i * K + q] * (double)w->data[(size_t)j * K + q];
                worst = fmax(worst, fabs(s - (double)y->data[(size_t)i * NO + j]));
            }
        cr_assert(worst < 1e-5, "full bias %d: y off by %g", full, worst);
        tg_tensor *loss = tg_sum(t, tg_mul(t, y, coef));
        cr_assert(tg_grad_writes(a), "affine's claim on its input");
        for (size_t i = 0; i < tg_numel(a); i++) a->grad[i] = (tg_real)NAN;
        tg_backward(t, loss);
        worst = 0;
        for (int i = 0; i < M; i++)
            for (int q = 0; q < K; q++) {
                double g = 0, th = (double)a->data[(size_t)i * K + q];
                for (int j = 0; j < NO; j++)
                    g += (double)coef->data[(size_t)i * NO + j] * (double)w->data[(size_t)j * K + q];
                worst = fmax(worst, fabs(g * (1 - th * th) - (double)x0->grad[(size_t)i * K + q]));
            }
        cr_assert(worst < 1e-5, "full bias %d: dx0 off by %g", full, worst);
        tg_tape_free(t);
    }
}

/* A range of W's columns (tg_affine_cols: a decoder's W_ih seen from its
 * embedding's or its context's columns) is packed from W in place: the same
 * panels, both transposes, as W's columns copied into a matrix of their own
 * (odd sizes: tails in both directions). Then the op on them, with 130 rows
 * (packed at once): y, dX and dW's range against double sums, and W's other
 * columns' gradient left exactly 0. */
Test(panels, column_range_packed_in_place_like_its_copy)
{
    if (!tg_panels_available())
        cr_skip_test("no panel kernel runs here (%s)", tg_panel_kernel());
    enum { M = 130, N = 45, KW = 77, C0 = 19, K = 37 };
    tg_rng r;
    tg_rng_seed(&r, 4242);
    tg_tensor *w = random_tensor(&r, N, KW, 1), *copy = random_tensor(&r, N, K, 0);
    for (int j = 0; j < N; j++)
        for (int q = 0; q < K; q++)
            copy->data[(size_t)j * K + q] = w->data[(size_t)j * KW + C0 + q];
    tg_panel_cache *ref = tg_panel_cache_new(), *own = tg_panel_cache_new();
    cr_assert(ref && own);
    tg_panel_src range = tg_panel_src_cols(w, C0, K);
    for (int tb = 0; tb <= 1; tb++) {
        const tg_real *want = tg_panels_of(ref, copy, tb, 128);
        const tg_real *got = tg_panels_of_stored(own, NULL, &range, tb, 128, 0);
        cr_assert(want && got, "tb %d: not packed", tb);
        int kk = tb ? K : N, nn = tb ? N : K;
        size_t floats = (size_t)kk * ((nn + 31) / 32 * 32);
        cr_assert(memcmp(want, got, floats * sizeof *got) == 0, "tb %d: the range's panels differ",
                  tb);
        cr_assert(tg_panels_held_cols(own, w, C0, K, tb), "tb %d: not held as the range", tb);
        cr_assert(!tg_panels_held(own, w, tb), "tb %d: held as all of W", tb);
        /* a matrix of the range's shape at the same address, rows K apart:
         * other values, so not the same panels */
        tg_tensor alias = {.rows = N, .cols = K, .data = w->data + C0};
        cr_assert(!tg_panels_held(own, &alias, tb), "tb %d: the range held for its alias", tb);
    }
    tg_panel_cache_free(ref);
    tg_panel_cache_free(own);

    tg_tape *t = tg_tape_new((size_t)1 << 22);
    tg_tensor *x = tg_tensor_new(t, M, K, 1), *coef = tg_tensor_new(t, M, N, 0);
    tg_tensor *b = tg_tensor_new(t, 1, N, 1);
    tg_tensor *fill[3] = {x, coef, b};
    for (int q = 0; q < 3; q++)
        for (size_t i = 0; i < tg_numel(fill[q]); i++)
            fill[q]->data[i] = (tg_real)(0.5 * tg_rng_normal(&r));
    memset(w->grad, 0, tg_numel(w) * sizeof *w->grad);
    tg_tensor *y = tg_affine_cols(t, x, w, C0, b);
    cr_assert(tg_panels_held_cols(tg_matmul_panel_cache(t), w, C0, K, 1),
              "the range was not packed");
    double worst = 0, worst_dx = 0, worst_dw = 0;
    for (int i = 0; i < M; i++)
        for (int j = 0; j < N; j++) {
            double s = (double)b->data[j];
            for (int q = 0; q < K; q++)
                s += (double)x->data[(size_t)i * K + q] * (double)w->data[(size_t)j * KW + C0 + q];
            worst = fmax(worst, fabs(s - (double)y->data[(size_t)i * N + j]));
        }
    cr_assert(worst < 1e-5, "y off by %g", worst);
    tg_backward(t, tg_sum(t, tg_mul(t, y, coef)));
    for (int i = 0; i < M; i++)
        for (int q = 0; q < K; q++) {
            double g = 0;
            for (int j = 0; j < N; j++)
                g += (double)coef->data[(size_t)i * N + j] *
                     (double)w->data[(size_t)j * KW + C0 + q];
            worst_dx = fmax(worst_dx, fabs(g - (double)x->grad[(size_t)i * K + q]));
        }
    for (int j = 0; j < N; j++)
        for (int q = 0; q < KW; q++) {
            double g = 0;
            for (int i = 0; q >= C0 && q < C0 + K && i < M; i++)
                g += (double)coef->data[(size_t)i * N + j] *
                     (double)x->data[(size_t)i * K + q - C0];
            tg_real got = w->grad[(size_t)j * KW + q];
            if (q < C0 || q >= C0 + K)
                cr_assert(got == 0, "dW[%d][%d] = %g outside the range", j, q, (double)got);
            worst_dw = fmax(worst_dw, fabs(g - (double)got));
        }
    cr_assert(worst_dx < 1e-4 && worst_dw < 1e-4, "dX off by %g, dW by %g", worst_dx, worst_dw);
    tg_tape_free(t);
    tg_tensor_free(w);
    tg_tensor_free(copy);
}

/* An op's output (here rows of scale(w), a view: a weight computed on the
 * tape) is packed at its second use
 * like a leaf, and a full cache takes over slots of matrices seen once: more
 * op outputs than the cache has slots used once each first, then one used
 * twice is still packed. Its products against double sums. */
Test(panels, op_outputs_packed_and_seen_once_slots_taken_over)
{
    if (!tg_panels_available())
        cr_skip_test("no panel kernel runs here (%s)", tg_panel_kernel());
    enum { M = 6, K = 40, N = 48, ONCE = TG_PANEL_SLOTS + 8 };
    tg_rng r;
    tg_rng_seed(&r, 2024);
    tg_tensor *a = random_tensor(&r, M, K, 0), *w = random_tensor(&r, 2 * N, K, 1);
    tg_tape *t = tg_tape_new((size_t)8 << 20);
    for (int i = 0; i < ONCE; i++)
        tg_matmul(t, a, tg_scale(t, w, 1.0 + i), 0, 1);
    tg_tensor *b = tg_row_slice(t, tg_scale(t, w, 0.5), N / 2, N);
    tg_tensor *c[2] = {tg_matmul(t, a, b, 0, 1), tg_matmul(t, a, b, 0, 1)};
    cr_assert(tg_panels_held(tg_matmul_panel_cache(t), b, 1), "the op output was not packed");
    for (int v = 0; v < 2; v++)
        for (int i = 0; i < M; i++)
            for (int j = 0; j < N; j++) {
                double s = 0;
                for (int p = 0; p < K; p++)
                    s += (double)a->data[(size_t)i * K + p] * (double)b->data[(size_t)j * K + p];
                cr_assert(fabs(s - (double)c[v]->data[(size_t)i * N + j]) < 1e-4 * K,
                          "product %d [%d][%d]: %g vs %g", v, i, j,
                          (double)c[v]->data[(size_t)i * N + j], s);
            }
    tg_tape_free(t);
    tg_tensor_free(a);
    tg_tensor_free(w);
}

/* A shared store (the shards' parameter panels) asked by two threads at
 * once: each gets the store's one copy, and whole when it gets it: the
 * threads split the packing (help_pack in graph/panels.c), so a thread that
 * returned before the other's panel was in would read part of it unwritten
 * (the buffer holds the previous round's matrix). Three long panels (2 MB
 * each): a thread each, then the first done takes the third, still being
 * written when a thread that did not wait would compare it (checked: with
 * help_pack's wait taken out, this failed 6 runs out of 6); both
 * transposes, new values and a cleared store every round (a slot reused
 * starts its counts again). */
Test(panels, shared_store_panels_whole_for_every_thread)
{
    if (!tg_panels_available())
        cr_skip_test("no panel kernel runs here (%s)", tg_panel_kernel());
    enum { N = 96, K = 16384, ROUNDS = 24 };
    tg_rng r;
    tg_rng_seed(&r, 77);
    tg_panel_cache *store = tg_panel_cache_new_shared(), *own[2], *ref = tg_panel_cache_new();
    cr_assert(store && ref);
    for (int id = 0; id < 2; id++) cr_assert_not_null(own[id] = tg_panel_cache_new());
    size_t bytes = (size_t)N * K * sizeof(tg_real);
    for (int round = 0; round < ROUNDS; round++) {
        int tb = round % 2;
        tg_tensor *b = random_tensor(&r, tb ? N : K, tb ? K : N, 0);
        const tg_real *want = tg_panels_of(ref, b, tb, 128);
        cr_assert_not_null(want);
        tg_panel_src whole_b = tg_panel_src_cols(b, 0, b->cols);
        const tg_real *got[2] = {NULL, NULL};
        int whole[2] = {0, 0};
#pragma omp parallel num_threads(2)
        {
#ifdef _OPENMP
            int id = omp_get_thread_num();
#else
            int id = 0;
#endif
#pragma omp barrier
            got[id] = tg_panels_of_stored(own[id], store, &whole_b, tb, 128, 1);
            whole[id] = got[id] && memcmp(got[id], want, bytes) == 0;
        }
        int threads = got[1] ? 2 : 1; /* without OpenMP one thread asks */
        for (int id = 0; id < threads; id++)
            cr_assert(whole[id], "round %d (tb %d): thread %d's panels were not all in", round, tb,
                      id);
        cr_assert(threads < 2 || got[0] == got[1], "round %d: two copies, not the store's one",
                  round);
        tg_panel_cache_clear(store);
        tg_panel_cache_clear(ref);
        for (int id = 0; id < 2; id++) tg_panel_cache_clear(own[id]);
        tg_tensor_free(b);
    }
    for (int id = 0; id < 2; id++) tg_panel_cache_free(own[id]);
    tg_panel_cache_free(ref);
    tg_panel_cache_free(store);
}

/* A cache keeps a buffer across clears while each step packs the same
 * matrix into it (the same address, no new allocation), and frees the
 * buffers a step did not fill to half: a slot that held a large matrix once
 * must not keep its size for ever (128 slots of an 8000 x 256 output layer
 * would be 1 GB). A clear with nothing packed since the last frees nothing
 * (a tape clears at the end of its backward and again at its reset). */
Test(panels, cache_frees_the_buffers_a_step_did_not_use)
{
    if (!tg_panels_available())
        cr_skip_test("no panel kernel runs here (%s)", tg_panel_kernel());
    tg_rng r;
    tg_rng_seed(&r, 5);
    tg_tensor *big = random_tensor(&r, 1024, 256, 0), *small = random_tensor(&r, 64, 256, 0);
    tg_panel_cache *c = tg_panel_cache_new(), *fresh = tg_panel_cache_new();
    cr_assert(c && fresh);
    size_t big_bytes = (size_t)1024 * 256 * sizeof(tg_real);
    const tg_real *first = tg_panels_of(c, big, 0, 128);
    cr_assert_not_null(first);
    cr_assert_not_null(tg_panels_of(c, small, 0, 128));
    size_t step = tg_panel_cache_bytes(c);
    cr_assert(step >= big_bytes, "%zu bytes held for a %zu-byte matrix", step, big_bytes);
    for (int again = 0; again < 3; again++) {
        tg_panel_cache_clear(c);
        tg_panel_cache_clear(c); /* nothing used since: nothing freed */
        cr_assert_eq(tg_panel_cache_bytes(c), step, "step %d: %zu bytes, was %zu", again,
                     tg_panel_cache_bytes(c), step);
        cr_assert_eq(tg_panels_of(c, big, 0, 128), first, "step %d packed elsewhere", again);
        cr_assert_not_null(tg_panels_of(c, small, 0, 128));
    }
    tg_panel_cache_clear(c);
    /* a step that packs only the small matrix, into the big one's slot */
    const tg_real *p = tg_panels_of(c, small, 0, 128);
    cr_assert_not_null(p);
    tg_panel_cache_clear(c);
    cr_assert_eq(tg_panel_cache_bytes(c), 0, "%zu bytes kept after a step of %zu",
                 tg_panel_cache_bytes(c), (size_t)64 * 256 * sizeof(tg_real));
    /* and packing after the frees gives the panels a fresh cache gives */
    p = tg_panels_of(c, big, 0, 128);
    const tg_real *want = tg_panels_of(fresh, big, 0, 128);
    cr_assert(p && want && memcmp(p, want, big_bytes) == 0, "panels differ after the free");
    tg_panel_cache_free(c);
    tg_panel_cache_free(fresh);
    tg_tensor_free(big);
    tg_tensor_free(small);
}

/* tg_panels_max_rows says how many rows stay on the panels: what the kernel
 * in use takes (any on AVX-512, 191 on AVX2, none without), and none for a
 * shape the panels never take; a product of that many rows gives each row
 * the bits it has alone (the batches of a stream, seq2seq --translate). */
Test(panels, max_rows_follow_the_kernel_and_keep_a_row_alone)
{
    const char *k = tg_panel_kernel();
    int want = strcmp(k, "avx512") == 0 ? INT_MAX : strcmp(k, "avx2") == 0 ? 191 : 0;
    cr_assert_eq(tg_panels_max_rows(64, 64), want, "kernel %s: %d", k, tg_panels_max_rows(64, 64));
    cr_assert_eq(tg_panels_max_rows(8, 64), 0, "a product 8 wide stays on BLAS");
    cr_assert_eq(tg_panels_max_rows(64, 4), 0, "an inner size of 4 stays on BLAS");
    if (want == 0) return;
    enum { K = 96, N = 80 };
    int m = want < 300 ? want : 300;
    tg_rng r;
    tg_rng_seed(&r, 9);
    tg_tensor *a = random_tensor(&r, m, K, 0), *w = random_tensor(&r, N, K, 1);
    tg_tape *t = tg_tape_new((size_t)8 << 20);
    cr_assert_eq(tg_tape_hold_param_panels(t, 1), 0);
    tg_tensor *all = tg_matmul(t, a, w, 0, 1);
    for (int i = 0; i < m; i += 37) {
        tg_tensor *row = tg_row_slice(t, a, i, 1);
        tg_tensor *alone = tg_matmul(t, row, w, 0, 1);
        cr_assert(memcmp(alone->data, all->data + (size_t)i * N, N * sizeof(tg_real)) == 0,
                  "row %d of %d: other bits alone", i, m);
    }
    tg_tape_hold_param_panels(t, 0);
    tg_tape_free(t);
    tg_tensor_free(a);
    tg_tensor_free(w);
}

/* tg_panel_kernel_check says what the first product would abort on, without
 * aborting: programs refuse a bad TG_ISA with it at start-up (exit 2). */
Test(panels, the_environment_check_names_a_bad_kernel)
{
    const char *was = getenv("TG_ISA");
    char saved[64] = "", err[128];
    if (was) snprintf(saved, sizeof saved, "%s", was);
    const char *fine[] = {"", "auto", "blas"};
    for (int i = 0; i < 3; i++) {
        setenv("TG_ISA", fine[i], 1);
        cr_assert_eq(tg_panel_kernel_check(err, sizeof err), 0, "'%s': %s", fine[i], err);
    }
    unsetenv("TG_ISA");
    cr_assert_eq(tg_panel_kernel_check(err, sizeof err), 0, "%s", err);
    setenv("TG_ISA", "avx1024", 1);
    cr_assert_eq(tg_panel_kernel_check(err, sizeof err), -1);
    cr_assert_str_eq(err, "'avx1024' is not one of auto, avx512, avx2, blas");
    const char *names[] = {"avx512", "avx2"};
    const tg_panel_isa isas[] = {TG_PANEL_AVX512, TG_PANEL_AVX2};
    for (int i = 0; i < 2; i++) {
        setenv("TG_ISA", names[i], 1);
        int runs = tg_panels_isa_runs(isas[i]);
        cr_assert_eq(tg_panel_kernel_check(err, sizeof err), runs ? 0 : -1, "%s", names[i]);
        if (!runs) cr_assert(strstr(err, "cannot run the") != NULL, "%s", err);
    }
    if (was)
        setenv("TG_ISA", saved, 1);
    else
        unsetenv("TG_ISA");
}
