/* Parameters: one contiguous block of values and one of gradients with named
 * views that stay valid while the blocks grow; replicas share values and
 * own their gradients. */
#include <criterion/criterion.h>
#include <math.h>
#include <signal.h>
#include <stdio.h>

#include "tapegrad.h"

Test(params, views_are_contiguous_and_stay_valid_while_growing)
{
    tg_params *p = tg_params_new();
    tg_tensor *first = tg_param(p, "first", 2, 3);
    first->data[5] = 7;
    first->grad[5] = 8;
    char name[32];
    for (int i = 0; i < 100; i++) { /* forces the blocks to grow several times */
        snprintf(name, sizeof name, "w%d", i);
        cr_assert_not_null(tg_param(p, name, 10, 7));
    }
    cr_assert_eq(tg_params_count(p), 101);
    cr_assert_eq(tg_params_numel(p), 6 + 100 * 70);
    cr_assert_eq(first->data, tg_params_data(p), "the first tensor starts the block");
    cr_assert_eq(first->grad, tg_params_grad(p));
    cr_assert_eq(first->data[5], 7, "values survive growth");
    cr_assert_eq(first->grad[5], 8, "gradients survive growth");
    size_t off = 0;
    for (size_t i = 0; i < tg_params_count(p); i++) {
        tg_tensor *x = tg_params_at(p, i);
        cr_assert_eq(x->data, tg_params_data(p) + off, "tensor %zu", i);
        cr_assert_eq(x->grad, tg_params_grad(p) + off, "tensor %zu", i);
        cr_assert(x->flags & TG_F_LEAF);
        off += tg_numel(x);
    }
    cr_assert_eq(tg_params_find(p, "w42"), tg_params_at(p, 43));
    cr_assert_str_eq(tg_params_name(p, 43), "w42");
    cr_assert_null(tg_params_find(p, "nope"));
    cr_assert_null(tg_params_at(p, 101));
    tg_params_free(p);
}

Test(params, zero_grad_clears_every_gradient)
{
    tg_params *p = tg_params_new();
    tg_param(p, "a", 3, 3);
    tg_param(p, "b", 1, 4);
    for (size_t i = 0; i < tg_params_numel(p); i++) tg_params_grad(p)[i] = (tg_real)i + 1;
    tg_params_zero_grad(p);
    for (size_t i = 0; i < tg_params_numel(p); i++) cr_assert_eq(tg_params_grad(p)[i], 0);
    tg_params_free(p);
}

Test(params, uniform_init_is_bounded_and_seeded)
{
    tg_params *p = tg_params_new(), *q = tg_params_new();
    tg_rng r1, r2;
    tg_rng_seed(&r1, 5);
    tg_rng_seed(&r2, 5);
    tg_tensor *a = tg_param_uniform(p, "w", 20, 20, &r1, 0.1);
    tg_tensor *b = tg_param_uniform(q, "w", 20, 20, &r2, 0.1);
    for (size_t i = 0; i < tg_numel(a); i++) {
        cr_assert(fabs((double)a->data[i]) <= 0.1);
        cr_assert_eq(a->data[i], b->data[i], "same seed, same values");
    }
    tg_params_free(p);
    tg_params_free(q);
}

/* A parameter block feeds ops like any leaf: backward accumulates into the
 * flat gradient array. */
Test(params, backward_fills_the_flat_gradient)
{
    tg_params *p = tg_params_new();
    tg_tensor *w = tg_param(p, "w", 2, 2), *b = tg_param(p, "b", 1, 2);
    for (int i = 0; i < 4; i++) w->data[i] = (tg_real)(i + 1);
    tg_tape *t = tg_tape_new((size_t)1 << 16);
    tg_tensor *x = tg_tensor_new(t, 3, 2, 0);
    for (int i = 0; i < 6; i++) x->data[i] = 1;
    tg_backward(t, tg_sum(t, tg_add(t, tg_matmul(t, x, w, 0, 0), b)));
    /* d/dW sum(x W) = x^T 1 = 3 everywhere; d/db = 3 (three rows) */
    for (size_t i = 0; i < tg_params_numel(p); i++) cr_assert_eq(tg_params_grad(p)[i], 3, "%zu", i);
    tg_tape_free(t);
    tg_params_free(p);
}

Test(params, replica_shares_values_and_owns_gradients)
{
    tg_params *m = tg_params_new();
    tg_tensor *w = tg_param(m, "w", 2, 3);
    tg_tensor *b = tg_param(m, "b", 1, 3);
    tg_params *r = tg_params_replica(m);
    cr_assert_not_null(r);
    cr_assert_eq(tg_params_count(r), 2);
    tg_tensor *rw = tg_params_twin(r, m, w), *rb = tg_params_twin(r, m, b);
    cr_assert_eq(rw->data, w->data, "values are shared");
    cr_assert_neq(rw->grad, w->grad, "gradients are the replica's own");
    cr_assert_eq(rb, tg_params_find(r, "b"));
    cr_assert_eq(tg_param(r, "w", 2, 3), rw, "registering on a replica finds the master's name");
    w->data[0] = 5;
    cr_assert_eq(rw->data[0], 5);
    rw->grad[0] = 1;
    cr_assert_eq(w->grad[0], 0);
    tg_params_free(r);
    tg_params_free(m);
}

Test(params, duplicate_name_aborts, .signal = SIGABRT)
{
    tg_params *p = tg_params_new();
    tg_param(p, "w", 2, 2);
    tg_param(p, "w", 2, 2);
}
