/* Padding invariance: each sequence run alone gives the same final states,
 * loss and parameter gradients as the same sequences padded (with garbage)
 * into one batch with lengths. Padded inputs get exactly zero gradient and
 * padded outputs hold the carried state. */
#include <criterion/criterion.h>
#include <string.h>

#include "layer_util.h"

enum { TMAX = 5, B = 4, I = 3, H = 5, L = 2 };
static const int lens[B] = {5, 3, 1, 0};

typedef struct setup {
    tg_params *p;
    tg_rnn_stack s;
    tg_real seq[B][TMAX][I];  /* the real data */
    tg_real w[L][2][B][H];    /* loss weights per layer, for h and c */
    tg_tape *t;
} setup;

static void make(setup *u, const char *kind)
{
    tg_rng r;
    tg_rng_seed(&r, 2024);
    u->p = tg_params_new();
    cr_assert_eq(tg_rnn_stack_init(&u->s, u->p, "rnn", tg_cell_kind_by_name(kind), I, H, L, 0.5,
                                   &r), 0);
    for (int b = 0; b < B; b++)
        for (int t = 0; t < TMAX; t++)
            for (int i = 0; i < I; i++) u->seq[b][t][i] = (tg_real)tg_rng_normal(&r);
    tg_real *w = &u->w[0][0][0][0];
    for (size_t i = 0; i < sizeof u->w / sizeof *w; i++) w[i] = (tg_real)tg_rng_normal(&r);
    u->t = tg_tape_new(8u << 20);
}

/* sum over layers of <W, h_final> (+ <W', c_final>) for rows b0..b0+n-1. */
static tg_tensor *state_loss(setup *u, const tg_state *fin, int b0, int n)
{
    tg_tensor *loss = NULL;
    for (int l = 0; l < L; l++)
        for (int k = 0; k < 1 + u->s.kind->has_c; k++) {
            tg_tensor *w = tg_tensor_from(u->t, n, H, &u->w[l][k][b0][0]);
            tg_tensor *term = tg_sum(u->t, tg_mul(u->t, w, k ? fin[l].c : fin[l].h));
            loss = loss ? tg_add(u->t, loss, term) : term;
        }
    return loss;
}

static void check_padding(const char *kind)
{
    setup u;
    make(&u, kind);
    size_t np = tg_params_numel(u.p);
    tg_real *g_batch = malloc(np * sizeof *g_batch);
    tg_rng garbage;
    tg_rng_seed(&garbage, 9);

    /* padded batch; padding is large garbage */
    tg_tape_reset(u.t);
    tg_params_zero_grad(u.p);
    tg_tensor *X = tg_tensor_new(u.t, TMAX * B, I, 1);
    for (int t = 0; t < TMAX; t++)
        for (int b = 0; b < B; b++)
            for (int i = 0; i < I; i++)
                X->data[(t * B + b) * I + i] =
                    t < lens[b] ? u.seq[b][t][i] : (tg_real)(100 * tg_rng_normal(&garbage));
    tg_state fb[L];
    tg_tensor *top = stack_x(u.t, &u.s, X, TMAX, B, NULL, lens, fb, NULL);
    tg_tensor *loss_b = state_loss(&u, fb, 0, B);
    tg_backward(u.t, loss_b);
    memcpy(g_batch, tg_params_grad(u.p), np * sizeof *g_batch);
    for (int t = 0; t < TMAX; t++)
        for (int b = 0; b < B; b++) {
            const tg_real *gx = X->grad + (t * B + b) * I, *o = top->data + (t * B + b) * H;
            if (t < lens[b]) continue;
            for (int i = 0; i < I; i++)
                cr_expect_eq(gx[i], 0, "%s: padded x[t=%d][b=%d] got gradient", kind, t, b);
            if (lens[b] > 0) /* a padded output is the carried top state, bit for bit */
                cr_expect(memcmp(o, top->data + ((lens[b] - 1) * B + b) * H, H * sizeof *o) == 0,
                          "%s: padded output t=%d b=%d is not the carried state", kind, t, b);
        }
    tg_real fin_h[L][B][H], fin_c[L][B][H], gx_batch[TMAX][B][I], loss_batch = loss_b->data[0];
    for (int l = 0; l < L; l++) {
        memcpy(fin_h[l], fb[l].h->data, sizeof fin_h[l]);
        if (fb[l].c) memcpy(fin_c[l], fb[l].c->data, sizeof fin_c[l]);
    }
    memcpy(gx_batch, X->grad, sizeof gx_batch);

    /* each sequence alone, gradients accumulated over the sequences */
    tg_params_zero_grad(u.p);
    double loss_sum = 0;
    for (int b = 0; b < B; b++) {
        tg_tape_reset(u.t);
        if (lens[b] == 0) { /* nothing to run: the final state is the zero init */
            for (int l = 0; l < L; l++)
                for (int j = 0; j < H; j++) {
                    cr_expect_eq(fin_h[l][b][j], 0, "%s: empty row's h changed", kind);
                    if (fb[l].c) cr_expect_eq(fin_c[l][b][j], 0, "%s: empty row's c changed", kind);
                }
            continue;
        }
        tg_tensor *Xb = tg_tensor_new(u.t, lens[b], I, 1);
        memcpy(Xb->data, u.seq[b], tg_numel(Xb) * sizeof(tg_real));
        tg_state fa[L];
        stack_x(u.t, &u.s, Xb, lens[b], 1, NULL, NULL, fa, NULL);
        tg_tensor *lb = state_loss(&u, fa, b, 1);
        tg_backward(u.t, lb);
        loss_sum += lb->data[0];
        for (int l = 0; l < L; l++) {
            cr_expect(max_abs_diff(fa[l].h->data, fin_h[l][b], H) <= EQ_TOL,
                      "%s: row %d layer %d h differs alone vs padded", kind, b, l);
            if (fa[l].c)
                cr_expect(max_abs_diff(fa[l].c->data, fin_c[l][b], H) <= EQ_TOL,
                          "%s: row %d layer %d c differs alone vs padded", kind, b, l);
        }
        for (int t = 0; t < lens[b]; t++)
            cr_expect(max_abs_diff(Xb->grad + t * I, gx_batch[t][b], I) <= EQ_TOL * 10,
                      "%s: d loss / d x[t=%d][b=%d] differs alone vs padded", kind, t, b);
    }
    double scale = 1;
    for (size_t i = 0; i < np; i++) scale = fmax(scale, fabs((double)g_batch[i]));
    double gdiff = max_abs_diff(tg_params_grad(u.p), g_batch, np);
    cr_log_info("%s: loss %.6g vs %.6g, max grad diff %.3g (scale %.3g)", kind, (double)loss_batch,
                loss_sum, gdiff, scale);
    cr_expect(fabs(loss_sum - loss_batch) <= EQ_TOL * 10 * fmax(1, fabs(loss_sum)),
              "%s: loss %.17g padded vs %.17g alone", kind, (double)loss_batch, loss_sum);
    cr_expect(gdiff <= EQ_TOL * 10 * scale, "%s: parameter gradients differ by %.3g", kind, gdiff);
    free(g_batch);
    tg_tape_free(u.t);
    tg_params_free(u.p);
}

Test(padding, rnn) { check_padding("rnn"); }
Test(padding, lstm) { check_padding("lstm"); }
Test(padding, gru) { check_padding("gru"); }
Test(padding, mgu) { check_padding("mgu"); }
