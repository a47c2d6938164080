/* The README's API example, compiled and run by the test suite so the
 * README stays true: a 2-8-2 tanh network learns XOR with Adam. */
#include <stdio.h>

#include "tapegrad.h"
#include "tg_optim.h"

int main(void)
{
    tg_rng rng;
    tg_rng_seed(&rng, 1);
    tg_params *p = tg_params_new();
    tg_tensor *w1 = tg_param_uniform(p, "w1", 2, 8, &rng, 1.0), *b1 = tg_param(p, "b1", 1, 8);
    tg_tensor *w2 = tg_param_uniform(p, "w2", 8, 2, &rng, 1.0), *b2 = tg_param(p, "b2", 1, 2);
    tg_optim_config cfg = tg_optim_defaults(TG_OPTIM_ADAM);
    cfg.lr = 0.05;
    tg_optim *opt = tg_optim_new(&cfg, tg_params_numel(p), NULL, 0);
    tg_tape *t = tg_tape_new(1 << 20); /* the step arena: 1 MiB */
    const tg_real xs[8] = {0, 0, 0, 1, 1, 0, 1, 1};
    const int ys[4] = {0, 1, 1, 0};
    double loss = 0;
    for (int step = 0; step < 300; step++) {
        tg_tape_reset(t); /* O(1): forget the last step's graph */
        tg_tensor *x = tg_tensor_from(t, 4, 2, xs);
        tg_tensor *h = tg_tanh(t, tg_add(t, tg_matmul(t, x, w1, 0, 0), b1));
        tg_tensor *l = tg_softmax_xent(t, tg_add(t, tg_matmul(t, h, w2, 0, 0), b2), ys, -1);
        tg_params_zero_grad(p);
        tg_backward(t, l); /* reverse scan of the tape */
        tg_optim_step(opt, p);
        loss = l->data[0];
    }
    printf("xor: loss after 300 steps %.4f\n", loss);
    tg_tape_free(t);
    tg_optim_free(opt);
    tg_params_free(p);
    return loss < 0.05 ? 0 : 1;
}
