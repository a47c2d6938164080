/* The running of the element-wise ops of one input (exp, log, relu,
 * one_minus, sigmoid, tanh): each op's file holds its math as a forward
 * kernel and a VJP kernel over a run of elements; these run them over a
 * tensor, in one contiguous block per thread where the tensor is large
 * (every element computed by the same code whatever the thread count). */
#include "tg_fastmath.h"

/* A kernel and its arrays, for a run of their elements [lo, hi). */
typedef struct unary_job {
    tg_unary_kernel *forward;   /* y = f(x): out is y, in x */
    tg_unary_vjp_kernel *vjp;   /* dx += ...: out is dx, in dy, x and y */
    tg_real *out;
    const tg_real *in, *x, *y;
} unary_job;

static void run_part(const unary_job *j, long lo, long hi)
{
    if (j->forward)
        j->forward(j->out + lo, j->in + lo, hi - lo);
    else
        j->vjp(j->out + lo, j->in + lo, j->x + lo, j->y + lo, hi - lo);
}

static void run_blocks(int threads, long n, const unary_job *j)
{
    if (threads > 1 && n > TG_PAR_MIN) {
#pragma omp parallel num_threads(threads)
        {
            long lo, hi;
            tg_block_range(n, tg_omp_id(), tg_omp_count(), &lo, &hi);
            run_part(j, lo, hi);
        }
    } else {
        run_part(j, 0, n);
    }
}

tg_tensor *tg_unary_forward(tg_tape *t, tg_tensor *x, tg_op_kind op, tg_unary_kernel *f)
{
    int rec = tg_op_records(t, x, NULL, NULL);
    tg_tensor *y = tg_op_output(t, x->rows, x->cols, rec);
    unary_job j = {f, NULL, y->data, x->data, NULL, NULL};
    run_blocks(tg_tape_threads(t), (long)tg_numel(y), &j);
    if (rec) tg_op_record(t, op, y, 1, x, NULL, NULL);
    return y;
}

void tg_unary_vjp(const tg_node *node, int threads, tg_unary_vjp_kernel *f)
{
    const tg_tensor *x = node->in[0], *y = node->out;
    if (!x->grad) return;
    unary_job j = {NULL, f, x->grad, y->grad, x->data, y->data};
    run_blocks(threads, (long)tg_numel(y), &j);
}
