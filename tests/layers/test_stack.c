/* Stacks and truncated BPTT: state buffers round-trip and detach, a window
 * split in two continues exactly, dropout is off without a generator. */
#include <criterion/criterion.h>
#include <string.h>

#include "layer_util.h"

enum { T1 = 3, T2 = 4, B = 2, I = 3, H = 4, L = 2 };

typedef struct fixture {
    tg_params *p;
    tg_rnn_stack s;
    tg_tape *t;
    tg_real x[(T1 + T2) * B * I];
} fixture;

static void make(fixture *f, const char *kind, double dropout)
{
    tg_rng r;
    tg_rng_seed(&r, 77);
    f->p = tg_params_new();
    cr_assert_eq(tg_rnn_stack_init(&f->s, f->p, "s", tg_cell_kind_by_name(kind), I, H, L, dropout,
                                   &r), 0);
    for (size_t i = 0; i < sizeof f->x / sizeof f->x[0]; i++) f->x[i] = (tg_real)tg_rng_normal(&r);
    f->t = tg_tape_new(4u << 20);
}

static void unmake(fixture *f)
{
    tg_tape_free(f->t);
    tg_params_free(f->p);
}

/* Runs steps t0 .. t0+n-1 of the fixture's input. */
static tg_tensor *run(fixture *f, int t0, int n, const tg_state *init, tg_state *fin, tg_rng *r)
{
    tg_tensor *X = tg_tensor_from(f->t, n * B, I, f->x + (size_t)t0 * B * I);
    return stack_x(f->t, &f->s, X, n, B, init, NULL, fin, r);
}

static void check_round_trip(const char *kind)
{
    fixture f;
    make(&f, kind, 0);
    tg_state_buf buf;
    cr_assert_eq(tg_state_buf_init(&buf, f.s.kind, L, B, H), 0);
    cr_expect_eq(buf.c != NULL, f.s.kind->has_c, "%s: c buffer iff the cell has c", kind);
    tg_state fin[L], init[L];
    run(&f, 0, T1, NULL, fin, NULL);
    tg_state_buf_store(&buf, fin);
    for (int l = 0; l < L; l++) {
        cr_expect(memcmp(buf.h + l * B * H, fin[l].h->data, B * H * sizeof(tg_real)) == 0);
        if (buf.c) cr_expect(memcmp(buf.c + l * B * H, fin[l].c->data, B * H * sizeof(tg_real)) == 0);
    }
    tg_tape_reset(f.t); /* the window's graph is gone; the buffer keeps the values */
    tg_state_buf_load(&buf, f.t, init);
    for (int l = 0; l < L; l++) {
        cr_expect_null(init[l].h->grad, "%s: a loaded state must be detached", kind);
        cr_expect(memcmp(init[l].h->data, buf.h + l * B * H, B * H * sizeof(tg_real)) == 0);
        cr_expect_eq(init[l].c != NULL, f.s.kind->has_c);
        if (init[l].c) {
            cr_expect_null(init[l].c->grad);
            cr_expect(memcmp(init[l].c->data, buf.c + l * B * H, B * H * sizeof(tg_real)) == 0);
        }
    }
    tg_state_buf_zero(&buf);
    for (int i = 0; i < L * B * H; i++) {
        cr_expect_eq(buf.h[i], 0);
        if (buf.c) cr_expect_eq(buf.c[i], 0);
    }
    tg_state_buf_free(&buf);
    unmake(&f);
}

Test(state_buf, round_trip_lstm) { check_round_trip("lstm"); }
Test(state_buf, round_trip_gru) { check_round_trip("gru"); }

/* tg_state_buf_keep_rows: the kept rows, in order, become the buffer's
 * batch, in every layer's h and c; a loaded state has the new batch. */
Test(state_buf, keep_rows_drops_the_others)
{
    enum { R = 5, N = 3 };
    tg_state_buf buf;
    cr_assert_eq(tg_state_buf_init(&buf, &tg_cell_lstm, L, R, H), 0);
    for (int i = 0; i < L * R * H; i++) buf.h[i] = (tg_real)i, buf.c[i] = (tg_real)(1000 + i);
    const int keep[N] = {1, 2, 4};
    tg_state_buf_keep_rows(&buf, keep, N);
    cr_assert_eq(buf.batch, N);
    for (int l = 0; l < L; l++)
        for (int r = 0; r < N; r++)
            for (int j = 0; j < H; j++) {
                int was = (l * R + keep[r]) * H + j, now = (l * N + r) * H + j;
                cr_assert_eq(buf.h[now], (tg_real)was, "layer %d row %d col %d", l, r, j);
                cr_assert_eq(buf.c[now], (tg_real)(1000 + was), "layer %d row %d col %d", l, r, j);
            }
    tg_tape *t = tg_tape_new(1u << 20);
    tg_state init[L];
    tg_state_buf_load(&buf, t, init);
    cr_assert_eq(init[L - 1].h->rows, N);
    cr_assert_eq(init[L - 1].h->data[0], (tg_real)((L - 1) * R + 1) * H);
    tg_tape_free(t);
    tg_state_buf_free(&buf);
}

/* Two windows through a state buffer == one long unroll (same values), and
 * the second window's backward reaches only its own steps. */
static void check_continuation(const char *kind)
{
    fixture f;
    make(&f, kind, 0);
    tg_state full[L], fin1[L], fin2[L], init[L];
    run(&f, 0, T1 + T2, NULL, full, NULL);
    tg_real want[L][2][B * H];
    for (int l = 0; l < L; l++) {
        memcpy(want[l][0], full[l].h->data, sizeof want[l][0]);
        if (full[l].c) memcpy(want[l][1], full[l].c->data, sizeof want[l][1]);
    }
    tg_state_buf buf;
    cr_assert_eq(tg_state_buf_init(&buf, f.s.kind, L, B, H), 0);
    tg_tape_reset(f.t);
    run(&f, 0, T1, NULL, fin1, NULL);
    tg_state_buf_store(&buf, fin1);
    tg_tape_reset(f.t);
    tg_state_buf_load(&buf, f.t, init);
    size_t nodes_before = tg_tape_node_count(f.t);
    tg_tensor *top = run(&f, T1, T2, init, fin2, NULL);
    cr_expect_gt(tg_tape_node_count(f.t), nodes_before);
    for (int l = 0; l < L; l++) {
        cr_expect(max_abs_diff(fin2[l].h->data, want[l][0], B * H) <= EQ_TOL,
                  "%s: layer %d h after two windows differs from one long unroll", kind, l);
        if (fin2[l].c)
            cr_expect(max_abs_diff(fin2[l].c->data, want[l][1], B * H) <= EQ_TOL,
                      "%s: layer %d c after two windows differs", kind, l);
    }
    tg_params_zero_grad(f.p);
    tg_backward(f.t, tg_sum(f.t, top));
    double g = 0;
    for (size_t i = 0; i < tg_params_numel(f.p); i++) g += fabs((double)tg_params_grad(f.p)[i]);
    cr_expect(g > 0 && isfinite(g), "%s: the second window must still train the weights", kind);
    tg_state_buf_free(&buf);
    unmake(&f);
}

Test(state_buf, continuation_lstm) { check_continuation("lstm"); }
Test(state_buf, continuation_rnn) { check_continuation("rnn"); }
Test(state_buf, continuation_mgu) { check_continuation("mgu"); }

/* ------------------------------------------------------------ dropout */

Test(dropout, off_without_generator)
{
    fixture f;
    make(&f, "lstm", 0.5);
    tg_tensor *a = run(&f, 0, T1, NULL, NULL, NULL);
    /* the same layers by hand, no dropout between them */
    tg_tensor *X = tg_tensor_from(f.t, T1 * B, I, f.x);
    tg_tensor *y = X;
    for (int l = 0; l < L; l++)
        y = unroll_cell(f.t, &f.s.cell[l], y, T1, B, tg_state_zeros(f.t, f.s.kind, B, H), NULL, NULL);
    cr_expect(memcmp(a->data, y->data, tg_numel(a) * sizeof(tg_real)) == 0,
              "rng NULL must disable dropout");
    unmake(&f);
}

Test(dropout, on_with_generator_and_deterministic)
{
    fixture f;
    make(&f, "gru", 0.5);
    tg_rng r1, r2, keep;
    tg_rng_seed(&r1, 5);
    r2 = keep = r1;
    tg_tensor *plain = run(&f, 0, T1, NULL, NULL, NULL);
    tg_tensor *d1 = run(&f, 0, T1, NULL, NULL, &r1);
    tg_tensor *d2 = run(&f, 0, T1, NULL, NULL, &r2);
    size_t n = tg_numel(plain) * sizeof(tg_real);
    cr_expect(memcmp(plain->data, d1->data, n) != 0, "dropout 0.5 changed nothing");
    cr_expect(memcmp(d1->data, d2->data, n) == 0, "same seed, different dropout masks");
    cr_expect(memcmp(&r1, &keep, sizeof r1) != 0, "dropout drew nothing from the generator");
    unmake(&f);
}

Test(dropout, zero_rate_leaves_generator_alone)
{
    fixture f;
    make(&f, "rnn", 0);
    tg_rng r, keep;
    tg_rng_seed(&r, 8);
    keep = r;
    tg_tensor *a = run(&f, 0, T1, NULL, NULL, NULL);
    tg_tensor *b = run(&f, 0, T1, NULL, NULL, &r);
    cr_expect(memcmp(a->data, b->data, tg_numel(a) * sizeof(tg_real)) == 0);
    cr_expect(memcmp(&r, &keep, sizeof r) == 0, "dropout 0 must not draw");
    unmake(&f);
}
