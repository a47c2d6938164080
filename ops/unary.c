/* The running of the element-wise ops of one input (exp, log, relu,
 * one_minus, sigmoid, tanh): each op's file holds its math as a forward
 * kernel and a VJP kernel over a run of elements; these run them over a
 * tensor, in one contiguous block per thread where the tensor is large
 * (every element computed by the same code whatever the thread count). */
#include "tg_fastmath.h"

/* y = f(x) on blocks of n elements of x and y (the same offset each). */
static void forward_blocks(int threads, long n, tg_unary_kernel *f, tg_real *y, const tg_real *x)
{
    if (threads > 1 && n > TG_PAR_MIN) {
#pragma omp parallel num_threads(threads)
        {
            long lo, hi;
            tg_block_range(n, tg_omp_id(), tg_omp_count(), &lo, &hi);
            f(y + lo, x + lo, hi - lo);
        }
    } else {
        f(y, x, n);
    }
}

tg_tensor *tg_unary_forward(tg_tape *t, tg_tensor *x, tg_op_kind op, tg_unary_kernel *f)
{
    int rec = tg_op_records(t, x, NULL, NULL);
    tg_tensor *y = tg_op_output(t, x->rows, x->cols, rec);
    forward_blocks(tg_tape_threads(t), (long)tg_numel(y), f, y->data, x->data);
    if (rec) tg_op_record(t, op, y, 1, x, NULL, NULL);
    return y;
}

void tg_unary_vjp(const tg_node *node, int threads, tg_unary_vjp_kernel *f)
{
    const tg_tensor *x = node->in[0], *y = node->out;
    if (!x->grad) return;
    long n = (long)tg_numel(y);
    if (threads > 1 && n > TG_PAR_MIN) {
#pragma omp parallel num_threads(threads)
        {
            long lo, hi;
            tg_block_range(n, tg_omp_id(), tg_omp_count(), &lo, &hi);
            f(x->grad + lo, y->grad + lo, x->data + lo, y->data + lo, hi - lo);
        }
    } else {
        f(x->grad, y->grad, x->data, y->data, n);
    }
}
