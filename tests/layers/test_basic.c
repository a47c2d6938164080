/* Linear, embedding, cell registry, parameter names/shapes/init, and one
 * cell step against the unroll. */
#include <criterion/criterion.h>
#include <string.h>

#include "layer_util.h"

Test(linear, forward_is_x_wT_plus_b_and_init_bound)
{
    tg_rng r;
    tg_rng_seed(&r, 1);
    tg_params *p = tg_params_new();
    tg_linear l;
    cr_assert_eq(tg_linear_init(&l, p, "out", 16, 5, &r), 0);
    cr_expect_eq(tg_params_find(p, "out.weight"), l.w);
    cr_expect_eq(tg_params_find(p, "out.bias"), l.b);
    cr_expect(l.w->rows == 5 && l.w->cols == 16 && l.b->rows == 1 && l.b->cols == 5);
    double bound = 1.0 / sqrt(16.0), mx = 0;
    for (size_t i = 0; i < tg_params_numel(p); i++) mx = fmax(mx, fabs(tg_params_data(p)[i]));
    cr_expect(mx <= bound && mx > 0.8 * bound, "init max %g, bound %g", mx, bound);
    tg_tape *t = tg_tape_new(1u << 20);
    tg_tensor *x = tg_tensor_new(t, 3, 16, 0);
    fill_normal(x, &r, 1);
    tg_tensor *y = tg_linear_forward(t, &l, x);
    cr_assert(y->rows == 3 && y->cols == 5);
    for (int i = 0; i < 3; i++)
        for (int o = 0; o < 5; o++) {
            double s = l.b->data[o];
            for (int k = 0; k < 16; k++) s += (double)x->data[i * 16 + k] * l.w->data[o * 16 + k];
            cr_expect(fabs(s - y->data[i * 5 + o]) <= 1e-5, "y[%d][%d]", i, o);
        }
    tg_tape_free(t);
    tg_params_free(p);
}

Test(embed, rows_of_the_table_and_normal_init)
{
    tg_rng r;
    tg_rng_seed(&r, 2);
    tg_params *p = tg_params_new();
    tg_embed e;
    cr_assert_eq(tg_embed_init(&e, p, "emb", 200, 50, &r), 0);
    cr_expect_eq(tg_params_find(p, "emb.weight"), e.table);
    double s = 0, s2 = 0;
    size_t n = tg_numel(e.table);
    for (size_t i = 0; i < n; i++) {
        s += e.table->data[i];
        s2 += (double)e.table->data[i] * e.table->data[i];
    }
    double mean = s / n, var = s2 / n - mean * mean;
    cr_expect(fabs(mean) < 0.05 && fabs(var - 1) < 0.1, "N(0,1) init: mean %g var %g", mean, var);
    tg_tape *t = tg_tape_new(1u << 20);
    int ids[3] = {7, 0, 199};
    tg_tensor *y = tg_embed_forward(t, &e, ids, 3);
    for (int i = 0; i < 3; i++)
        cr_expect(memcmp(y->data + i * 50, e.table->data + ids[i] * 50, 50 * sizeof(tg_real)) == 0);
    tg_tape_free(t);
    tg_params_free(p);
}

Test(cells, registry_by_name)
{
    cr_expect_eq(tg_cell_kind_by_name("rnn"), &tg_cell_rnn);
    cr_expect_eq(tg_cell_kind_by_name("lstm"), &tg_cell_lstm);
    cr_expect_eq(tg_cell_kind_by_name("gru"), &tg_cell_gru);
    cr_expect_eq(tg_cell_kind_by_name("mgu"), &tg_cell_mgu);
    cr_expect_eq(tg_cell_kind_by_name("peephole"), &tg_cell_peephole);
    cr_expect_null(tg_cell_kind_by_name("LSTM"));
    cr_expect_null(tg_cell_kind_by_name("transformer"));
    cr_expect_null(tg_cell_kind_by_name(NULL));
    const char *names = tg_cell_kind_names();
    cr_expect(strstr(names, "rnn") && strstr(names, "lstm") && strstr(names, "gru") &&
              strstr(names, "mgu") && strstr(names, "peephole"));
}

/* PyTorch names, shapes and U(+-1/sqrt(H)) init, for every cell kind. */
static void check_layout(const tg_cell_kind *k)
{
    enum { I = 6, H = 9 };
    tg_rng r;
    tg_rng_seed(&r, 3);
    tg_params *p = tg_params_new();
    tg_cell c;
    cr_assert_eq(tg_cell_init(&c, k, p, "enc.l0", I, H, &r), 0);
    int G = k->gates;
    cr_expect(c.kind == k && c.in == I && c.hidden == H);
    cr_expect_eq(tg_params_find(p, "enc.l0.weight_ih"), c.w_ih, "%s", k->name);
    cr_expect_eq(tg_params_find(p, "enc.l0.weight_hh"), c.w_hh, "%s", k->name);
    cr_expect_eq(tg_params_find(p, "enc.l0.bias_ih"), c.b_ih, "%s", k->name);
    cr_expect(c.w_ih->rows == G * H && c.w_ih->cols == I, "%s w_ih", k->name);
    cr_expect(c.w_hh->rows == G * H && c.w_hh->cols == H, "%s w_hh", k->name);
    cr_expect(c.b_ih->rows == 1 && c.b_ih->cols == G * H, "%s b_ih", k->name);
    if (c.b_hh) cr_expect(c.b_hh->rows == 1 && c.b_hh->cols == G * H, "%s b_hh", k->name);
    double bound = 1.0 / sqrt((double)H), mx = 0;
    for (size_t i = 0; i < tg_params_numel(p); i++) mx = fmax(mx, fabs(tg_params_data(p)[i]));
    cr_expect(mx <= bound && mx > 0.8 * bound, "%s init max %g, bound %g", k->name, mx, bound);
    tg_params_free(p);
}

Test(cells, pytorch_layout_and_init)
{
    check_layout(&tg_cell_rnn);
    check_layout(&tg_cell_lstm);
    check_layout(&tg_cell_gru);
    check_layout(&tg_cell_mgu);
    check_layout(&tg_cell_peephole);
    cr_expect(tg_cell_lstm.has_c && !tg_cell_gru.has_c && !tg_cell_rnn.has_c && !tg_cell_mgu.has_c);
    cr_expect(tg_cell_lstm.gates == 4 && tg_cell_gru.gates == 3 && tg_cell_rnn.gates == 1);
}

/* tg_cell_forward one step at a time == the unroll's hoisted projection. */
static void check_forward_vs_unroll(const tg_cell_kind *k)
{
    enum { T = 3, B = 2, I = 4, H = 3 };
    tg_rng r;
    tg_rng_seed(&r, 4);
    tg_params *p = tg_params_new();
    tg_cell c;
    cr_assert_eq(tg_cell_init(&c, k, p, "c", I, H, &r), 0);
    tg_tape *t = tg_tape_new(1u << 20);
    tg_tensor *X = tg_tensor_new(t, T * B, I, 0);
    fill_normal(X, &r, 1);
    tg_state s = tg_state_zeros(t, k, B, H), fin;
    cr_expect(s.h->rows == B && s.h->cols == H && s.h->grad == NULL);
    cr_expect_eq(s.c != NULL, k->has_c);
    tg_tensor *outs = unroll_cell(t, &c, X, T, B, s, NULL, &fin);
    cr_assert(outs->rows == T * B && outs->cols == H);
    for (int step = 0; step < T; step++) {
        s = tg_cell_forward(t, &c, tg_row_slice(t, X, step * B, B), s);
        cr_expect(max_abs_diff(s.h->data, outs->data + step * B * H, B * H) <= EQ_TOL,
                  "%s step %d", k->name, step);
    }
    cr_expect(max_abs_diff(s.h->data, fin.h->data, B * H) <= EQ_TOL);
    if (k->has_c) cr_expect(max_abs_diff(s.c->data, fin.c->data, B * H) <= EQ_TOL);
    tg_tape_free(t);
    tg_params_free(p);
}

Test(cells, forward_matches_unroll)
{
    check_forward_vs_unroll(&tg_cell_rnn);
    check_forward_vs_unroll(&tg_cell_lstm);
    check_forward_vs_unroll(&tg_cell_gru);
    check_forward_vs_unroll(&tg_cell_mgu);
    check_forward_vs_unroll(&tg_cell_peephole);
}

/* With its peephole weights at zero the peephole LSTM is the LSTM (same
 * weight_ih/hh and biases); with them non-zero it is not. */
Test(cells, peephole_without_peepholes_is_lstm)
{
    enum { T = 3, B = 2, I = 4, H = 5 };
    tg_rng r;
    tg_rng_seed(&r, 8);
    tg_params *pp = tg_params_new(), *pl = tg_params_new();
    tg_cell peep, lstm;
    cr_assert_eq(tg_cell_init(&peep, &tg_cell_peephole, pp, "c", I, H, &r), 0);
    cr_assert_eq(tg_cell_init(&lstm, &tg_cell_lstm, pl, "c", I, H, &r), 0);
    cr_expect_not_null(tg_params_find(pp, "c.weight_ci"));
    cr_expect_not_null(tg_params_find(pp, "c.weight_cf"));
    cr_expect_not_null(tg_params_find(pp, "c.weight_co"));
    tg_tensor *src[4] = {lstm.w_ih, lstm.w_hh, lstm.b_ih, lstm.b_hh};
    tg_tensor *dst[4] = {peep.w_ih, peep.w_hh, peep.b_ih, peep.b_hh};
    for (int k = 0; k < 4; k++)
        memcpy(dst[k]->data, src[k]->data, tg_numel(src[k]) * sizeof(tg_real));
    tg_tape *t = tg_tape_new(1u << 20);
    tg_tensor *X = tg_tensor_new(t, T * B, I, 0);
    fill_normal(X, &r, 1);
    tg_state s0 = tg_state_zeros(t, &tg_cell_lstm, B, H);
    fill_normal(s0.c, &r, 1);
    tg_tensor *want = unroll_cell(t, &lstm, X, T, B, s0, NULL, NULL);
    tg_tensor *with = unroll_cell(t, &peep, X, T, B, s0, NULL, NULL);
    cr_expect(max_abs_diff(want->data, with->data, tg_numel(want)) > 1e-3, "peepholes do nothing");
    for (int k = 0; k < 3; k++)
        for (int j = 0; j < H; j++) peep.extra[k]->data[j] = 0;
    tg_tensor *none = unroll_cell(t, &peep, X, T, B, s0, NULL, NULL);
    cr_expect(max_abs_diff(want->data, none->data, tg_numel(want)) <= 1e-5,
              "zero peepholes differ from the LSTM by %g",
              max_abs_diff(want->data, none->data, tg_numel(want)));
    tg_tape_free(t);
    tg_params_free(pp);
    tg_params_free(pl);
}
