/* Misuse hits an always-on check: the process aborts after a message that
 * names the op, the shapes and the caller's file:line. Each case runs once
 * as a Criterion test expecting SIGABRT, and once in a forked child whose
 * stderr is read back to check the message. */
#include <criterion/criterion.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "tapegrad.h"

static tg_tape *tape(void) { return tg_tape_new((size_t)1 << 16); }
static tg_tensor *m(tg_tape *t, int rows, int cols) { return tg_tensor_new(t, rows, cols, 1); }

static void matmul_inner(void)
{
    tg_tape *t = tape();
    tg_matmul(t, m(t, 3, 4), m(t, 5, 2), 0, 0);
}
static void matmul_transposed(void)
{
    tg_tape *t = tape();
    tg_matmul(t, m(t, 3, 4), m(t, 4, 2), 1, 0); /* A^T is 4x3: inner 3 vs 4 */
}
static void add_shapes(void)
{
    tg_tape *t = tape();
    tg_add(t, m(t, 3, 4), m(t, 2, 4));
}
static void sub_shapes(void)
{
    tg_tape *t = tape();
    tg_sub(t, m(t, 3, 4), m(t, 3, 5));
}
static void mul_shapes(void)
{
    tg_tape *t = tape();
    tg_mul(t, m(t, 2, 2), m(t, 3, 3));
}
static void mul_broadcast_cols(void)
{
    tg_tape *t = tape();
    tg_mul(t, m(t, 32, 16), m(t, 1, 15));
}
static void attn_scores_memory(void)
{
    tg_tape *t = tape();
    tg_attn_scores(t, m(t, 4, 3), m(t, 10, 3)); /* 10 rows: not S*4 */
}
static void attn_context_memory(void)
{
    tg_tape *t = tape();
    tg_attn_context(t, m(t, 2, 5), m(t, 8, 3)); /* needs 5*2 rows */
}
static void concat_rows(void)
{
    tg_tape *t = tape();
    tg_concat(t, m(t, 2, 3), m(t, 3, 3));
}
static void col_slice_range(void)
{
    tg_tape *t = tape();
    tg_col_slice(t, m(t, 3, 4), 3, 2);
}
static void affine_cols_range(void)
{
    tg_tape *t = tape();
    tg_affine_cols(t, m(t, 3, 4), m(t, 2, 6), 3, NULL); /* columns 3..6 of 6 */
}
static void affine_cols_negative(void)
{
    tg_tape *t = tape();
    tg_affine_cols(t, m(t, 3, 4), m(t, 2, 6), -1, NULL);
}
static void affine_no_bias(void)
{
    tg_tape *t = tape();
    tg_affine(t, m(t, 3, 4), m(t, 2, 4), NULL);
}
static void row_slice_range(void)
{
    tg_tape *t = tape();
    tg_row_slice(t, m(t, 3, 4), 2, 2);
}
static void stack_rows_cols(void)
{
    tg_tape *t = tape();
    tg_tensor *xs[2] = {m(t, 2, 3), m(t, 2, 4)};
    tg_stack_rows(t, xs, 2);
}
static void embedding_id_too_big(void)
{
    tg_tape *t = tape();
    const int ids[3] = {0, 5, 1};
    tg_embedding(t, m(t, 5, 3), ids, 3);
}
static void embedding_id_negative(void)
{
    tg_tape *t = tape();
    const int ids[2] = {-2, 1};
    tg_embedding(t, m(t, 5, 3), ids, 2);
}
static void softmax_target_range(void)
{
    tg_tape *t = tape();
    const int targets[2] = {1, 4};
    tg_softmax_xent(t, m(t, 2, 4), targets, -1);
}
static void dropout_p_one(void)
{
    tg_tape *t = tape();
    tg_rng r;
    tg_rng_seed(&r, 1);
    tg_dropout(t, m(t, 2, 2), 1.0, &r);
}
static void backward_not_scalar(void)
{
    tg_tape *t = tape();
    tg_backward(t, tg_tanh(t, m(t, 2, 3)));
}
static void backward_without_grad(void)
{
    tg_tape *t = tape();
    tg_backward(t, tg_sum(t, tg_tensor_new(t, 2, 3, 0)));
}
static void arena_overflow(void)
{
    tg_tape *t = tg_tape_new(1024);
    tg_tape_alloc(t, 4096);
}
/* A size so large that rounding it up to the alignment wraps around. */
static void arena_overflow_wrapping(void)
{
    tg_tape *t = tg_tape_new(1024);
    tg_tape_alloc(t, SIZE_MAX - 10);
}
static void tensor_new_empty(void)
{
    tg_tape *t = tape();
    tg_tensor_new(t, 0, 3, 0);
}

typedef struct misuse {
    const char *name;
    void (*fn)(void);
    const char *needles[3]; /* each must appear in the message */
} misuse;

static const misuse cases[] = {
    {"matmul_inner", matmul_inner, {"matmul", "3x4", "5x2"}},
    {"matmul_transposed", matmul_transposed, {"matmul", "3x4^T", "4x2"}},
    {"add_shapes", add_shapes, {"add", "3x4", "2x4"}},
    {"sub_shapes", sub_shapes, {"sub", "3x4", "3x5"}},
    {"mul_shapes", mul_shapes, {"mul", "2x2", "3x3"}},
    {"mul_broadcast_cols", mul_broadcast_cols, {"mul", "32x16", "1x15"}},
    {"attn_scores_memory", attn_scores_memory, {"attn_scores", "4x3", "10x3"}},
    {"attn_context_memory", attn_context_memory, {"attn_context", "2x5", "8x3"}},
    {"concat_rows", concat_rows, {"concat", "2x3", "3x3"}},
    {"col_slice_range", col_slice_range, {"col_slice", "3x4", "3..4"}},
    {"affine_cols_range", affine_cols_range, {"affine_cols", "3..6", "2x6"}},
    {"affine_cols_negative", affine_cols_negative, {"affine_cols", "-1..2", "2x6"}},
    {"affine_no_bias", affine_no_bias, {"affine", "no bias", "tg_affine_cols"}},
    {"row_slice_range", row_slice_range, {"row_slice", "3x4", "2..3"}},
    {"stack_rows_cols", stack_rows_cols, {"stack_rows", "2x4", "3 cols"}},
    {"embedding_id_too_big", embedding_id_too_big, {"embedding", "5x3", "id 5"}},
    {"embedding_id_negative", embedding_id_negative, {"embedding", "5x3", "id -2"}},
    {"softmax_target_range", softmax_target_range, {"softmax_xent", "2x4", "target 4"}},
    {"dropout_p_one", dropout_p_one, {"dropout", "p = 1", "[0, 1)"}},
    {"backward_not_scalar", backward_not_scalar, {"backward", "1x1", "2x3"}},
    {"backward_without_grad", backward_without_grad, {"backward", "1x1", "no-grad"}},
    {"arena_overflow", arena_overflow, {"arena", "4096 bytes needed", "1024"}},
    {"arena_overflow_wrapping", arena_overflow_wrapping, {"arena", "bytes needed", "1024"}},
    {"tensor_new_empty", tensor_new_empty, {"tensor_new", "0x3", "positive"}},
};
#define N_CASES (int)(sizeof cases / sizeof cases[0])

/* ---- each case aborts (SIGABRT) */

#define ABORTS(name) \
    Test(misuse_aborts, name, .signal = SIGABRT) { name(); }

ABORTS(matmul_inner)
ABORTS(matmul_transposed)
ABORTS(add_shapes)
ABORTS(sub_shapes)
ABORTS(mul_shapes)
ABORTS(mul_broadcast_cols)
ABORTS(attn_scores_memory)
ABORTS(attn_context_memory)
ABORTS(concat_rows)
ABORTS(col_slice_range)
ABORTS(affine_cols_range)
ABORTS(affine_cols_negative)
ABORTS(affine_no_bias)
ABORTS(row_slice_range)
ABORTS(stack_rows_cols)
ABORTS(embedding_id_too_big)
ABORTS(embedding_id_negative)
ABORTS(softmax_target_range)
ABORTS(dropout_p_one)
ABORTS(backward_not_scalar)
ABORTS(backward_without_grad)
ABORTS(arena_overflow)
ABORTS(arena_overflow_wrapping)
ABORTS(tensor_new_empty)

/* ---- ... with a message naming the op, the shapes and file:line */

/* Runs fn in a child with stderr piped back; returns its wait status. */
static int run_captured(void (*fn)(void), char *buf, size_t cap)
{
    int fd[2];
    cr_assert_eq(pipe(fd), 0);
    fflush(NULL);
    pid_t pid = fork();
    cr_assert_neq(pid, -1);
    if (pid == 0) {
        close(fd[0]);
        dup2(fd[1], STDERR_FILENO);
        fn();
        _exit(0); /* no abort: the parent reports it */
    }
    close(fd[1]);
    size_t len = 0;
    ssize_t got;
    while (len + 1 < cap && (got = read(fd[0], buf + len, cap - 1 - len)) > 0) len += (size_t)got;
    buf[len] = '\0';
    close(fd[0]);
    int status = 0;
    waitpid(pid, &status, 0);
    return status;
}

/* Checks that name the caller's line use TG_HERE at the call in this file;
 * the arena and tensor_new checks are inside the engine. */
static int names_this_file(const misuse *c)
{
    return strncmp(c->name, "arena", 5) != 0 && strcmp(c->name, "tensor_new_empty") != 0;
}

Test(misuse_message, names_op_shapes_and_caller)
{
    char msg[2048];
    for (int i = 0; i < N_CASES; i++) {
        const misuse *c = &cases[i];
        int status = run_captured(c->fn, msg, sizeof msg);
        cr_expect(WIFSIGNALED(status) && WTERMSIG(status) == SIGABRT, "%s: did not abort", c->name);
        cr_expect(strncmp(msg, "tapegrad: ", 10) == 0, "%s: message '%s'", c->name, msg);
        for (int k = 0; k < 3; k++)
            cr_expect(strstr(msg, c->needles[k]) != NULL, "%s: '%s' not in message '%s'", c->name,
                      c->needles[k], msg);
        if (names_this_file(c))
            cr_expect(strstr(msg, "test_misuse.c:") != NULL, "%s: no caller file:line in '%s'",
                      c->name, msg);
    }
}
