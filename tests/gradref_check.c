/* gradref_check FILE... — our cells against PyTorch's own numbers.
 *
 * Each FILE is in the format of ../shared/gradref/README.txt: tensors one
 * after another, a header "name rows cols" then rows lines of cols numbers.
 * Every size comes from the headers; the cell kind from the file name (it
 * must contain exactly one of lstm, gru, rnn). The program loads the weights
 * into our PyTorch-layout parameters (weight_ih, weight_hh, bias_ih, bias_hh
 * of the cell; out.weight, out.bias of a tg_linear), unrolls the cell over
 * the T steps, takes loss = sum over steps and batch rows of the softmax
 * cross-entropy of out(h_t+1), runs backward, and compares:
 *   loss_rel_err     |loss - ref| / |ref|
 *   max_grad_rel_err max over the six parameter gradients (and grad.x_t when
 *                    present) of max|ours - ref| / max|ref| per tensor
 * and, when present, the per-step states h_t (c_t) — a mismatch there fails
 * the file too (-v prints every tensor's error on stderr).
 * Tolerance: 1e-9 in the double build, 1e-4 in the float build.
 * Output per file: "<file> loss_rel_err=<x> max_grad_rel_err=<x> ok|FAIL".
 * Exit: 0 all ok, 1 a mismatch or a malformed file, 2 usage. */
#include <ctype.h>
#include <errno.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "tapegrad.h"
#include "tg_layers.h"

#ifdef TG_REAL_DOUBLE
#define TOLERANCE 1e-9
#else
#define TOLERANCE 1e-4
#endif

#define MAX_DIM 1000000 /* int, for %d */
#define MAX_NUMEL 50000000L
#define MAX_NAME 64

/* ------------------------------------------------------------------ the file */

typedef struct ref_tensor {
    char name[MAX_NAME];
    int rows, cols, line; /* line of the header */
    double *v;
} ref_tensor;

typedef struct ref_file {
    const char *path;
    ref_tensor *t;
    int n, cap;
} ref_file;

static void ref_free(ref_file *f)
{
    for (int i = 0; i < f->n; i++) free(f->t[i].v);
    free(f->t);
    f->t = NULL;
    f->n = f->cap = 0;
}

/* "gradref_check: FILE:LINE: message" on stderr; returns -1. */
static int data_error(const char *path, long line, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static int data_error(const char *path, long line, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    fprintf(stderr, "gradref_check: %s:%ld: ", path, line);
    vfprintf(stderr, fmt, ap);
    fputc('\n', stderr);
    va_end(ap);
    return -1;
}

/* Splits s in place into at most max whitespace-separated tokens; returns
 * the count, or max + 1 when there are more. */
static int split(char *s, char **tok, int max)
{
    int n = 0;
    for (;;) {
        while (*s && isspace((unsigned char)*s)) s++;
        if (!*s) return n;
        if (n == max) return max + 1;
        tok[n++] = s;
        while (*s && !isspace((unsigned char)*s)) s++;
        if (*s) *s++ = '\0';
    }
}

static int parse_long(const char *s, long lo, long hi, long *out)
{
    char *end;
    errno = 0;
    long v = strtol(s, &end, 10);
    if (errno || end == s || *end || v < lo || v > hi) return -1;
    *out = v;
    return 0;
}

static ref_tensor *ref_find(const ref_file *f, const char *name)
{
    for (int i = 0; i < f->n; i++)
        if (strcmp(f->t[i].name, name) == 0) return &f->t[i];
    return NULL;
}

/* Reads one header "name rows cols" from line; appends an empty tensor. */
static int parse_header(ref_file *f, char *line, long lno)
{
    char *tok[3];
    long r, c;
    int n = split(line, tok, 3);
    if (n != 3 && f->n > 0) /* most likely the previous header's row count is off */
        return data_error(f->path, lno,
                          "expected a header 'name rows cols', got %s%d fields (is the row "
                          "count of tensor '%s', %d, on line %d right?)",
                          n > 3 ? "more than " : "", n > 3 ? 3 : n, f->t[f->n - 1].name,
                          f->t[f->n - 1].rows, f->t[f->n - 1].line);
    if (n != 3)
        return data_error(f->path, lno, "expected a header 'name rows cols', got %s%d fields",
                          n > 3 ? "more than " : "", n > 3 ? 3 : n);
    if (strlen(tok[0]) >= MAX_NAME)
        return data_error(f->path, lno, "tensor name '%.40s...' longer than %d chars", tok[0],
                          MAX_NAME - 1);
    if (parse_long(tok[1], 1, MAX_DIM, &r) || parse_long(tok[2], 1, MAX_DIM, &c))
        return data_error(f->path, lno, "tensor '%s': rows and cols must be integers in 1..%d",
                          tok[0], MAX_DIM);
    if (r * c > MAX_NUMEL)
        return data_error(f->path, lno, "tensor '%s': %ld values, more than the %ld allowed",
                          tok[0], r * c, MAX_NUMEL);
    if (ref_find(f, tok[0]))
        return data_error(f->path, lno, "tensor '%s' appears twice", tok[0]);
    if (f->n == f->cap) {
        int cap = f->cap ? 2 * f->cap : 64;
        ref_tensor *t = realloc(f->t, (size_t)cap * sizeof *t);
        if (!t) return data_error(f->path, lno, "out of memory");
        f->t = t;
        f->cap = cap;
    }
    ref_tensor *t = &f->t[f->n];
    t->v = malloc((size_t)(r * c) * sizeof *t->v);
    if (!t->v) return data_error(f->path, lno, "out of memory for tensor '%s'", tok[0]);
    strcpy(t->name, tok[0]);
    t->rows = (int)r;
    t->cols = (int)c;
    t->line = (int)lno;
    f->n++;
    return 0;
}

/* Reads data row `row` of tensor t from line. */
static int parse_row(ref_file *f, ref_tensor *t, char *line, long lno, int row, char **tok)
{
    int n = split(line, tok, t->cols);
    if (n != t->cols)
        return data_error(f->path, lno, "tensor '%s' row %d: expected %d numbers, got %s%d",
                          t->name, row, t->cols, n > t->cols ? "more than " : "",
                          n > t->cols ? t->cols : n);
    for (int j = 0; j < t->cols; j++) {
        char *end;
        double v = strtod(tok[j], &end);
        if (end == tok[j] || *end || !isfinite(v))
            return data_error(f->path, lno, "tensor '%s' row %d column %d: '%.40s' is not a finite number",
                              t->name, row, j, tok[j]);
        t->v[(size_t)row * t->cols + j] = v;
    }
    return 0;
}

static int ref_load(ref_file *f, const char *path)
{
    FILE *fp = fopen(path, "r");
    memset(f, 0, sizeof *f);
    f->path = path;
    if (!fp) {
        fprintf(stderr, "gradref_check: %s: %s\n", path, strerror(errno));
        return -1;
    }
    char *line = NULL, **tok = NULL;
    size_t cap = 0;
    long lno = 0;
    int rc = 0, row = 0; /* row: next data row of the last tensor */
    while (rc == 0 && getline(&line, &cap, fp) >= 0) {
        lno++;
        ref_tensor *cur = f->n ? &f->t[f->n - 1] : NULL;
        if (cur && row < cur->rows) {
            char **nt = realloc(tok, ((size_t)cur->cols + 1) * sizeof *nt);
            if (!nt) rc = data_error(path, lno, "out of memory");
            else rc = parse_row(f, cur, line, lno, row++, tok = nt);
            continue;
        }
        char probe[2];
        if (sscanf(line, " %1s", probe) != 1) continue; /* blank line between tensors */
        rc = parse_header(f, line, lno);
        row = 0;
    }
    if (rc == 0 && ferror(fp)) rc = data_error(path, lno, "read error: %s", strerror(errno));
    if (rc == 0 && f->n && row < f->t[f->n - 1].rows)
        rc = data_error(path, lno, "end of file inside tensor '%s' (%d of %d rows)",
                        f->t[f->n - 1].name, row, f->t[f->n - 1].rows);
    if (rc == 0 && f->n == 0) rc = data_error(path, lno, "no tensors in the file");
    free(line);
    free(tok);
    fclose(fp);
    if (rc) ref_free(f);
    return rc;
}

/* The tensor `name`, checked to be rows x cols (a column vector may also be
 * given as a row). NULL, with a message, when absent or misshapen and
 * required; NULL silently when absent and optional. */
static const ref_tensor *want(const ref_file *f, const char *name, int rows, int cols,
                              int required, int *bad)
{
    const ref_tensor *t = ref_find(f, name);
    if (!t) {
        if (required) {
            fprintf(stderr, "gradref_check: %s: missing tensor '%s'\n", f->path, name);
            *bad = 1;
        }
        return NULL;
    }
    int flip_ok = cols == 1 && t->rows == 1 && t->cols == rows;
    if ((t->rows != rows || t->cols != cols) && !flip_ok) {
        fprintf(stderr, "gradref_check: %s:%d: tensor '%s' is %dx%d, expected %dx%d\n", f->path,
                t->line, name, t->rows, t->cols, rows, cols);
        *bad = 1;
        return NULL;
    }
    return t;
}

/* ------------------------------------------------------------------ the check */

static const tg_cell_kind *kind_from_path(const char *path)
{
    const char *base = strrchr(path, '/');
    static const char *const names[3] = {"lstm", "gru", "rnn"};
    const tg_cell_kind *found = NULL;
    int hits = 0;
    base = base ? base + 1 : path;
    for (int i = 0; i < 3; i++)
        if (strstr(base, names[i])) {
            found = tg_cell_kind_by_name(names[i]);
            hits++;
        }
    if (hits != 1) {
        fprintf(stderr, "gradref_check: %s: the file name must contain exactly one of lstm, gru, "
                        "rnn (found %d)\n", path, hits);
        return NULL;
    }
    return found;
}

typedef struct sizes {
    int T, B, I, H, G, V;
} sizes;

/* Every size from the tensor headers; 0 when consistent. */
static int derive_sizes(const ref_file *f, const tg_cell_kind *k, sizes *z)
{
    const ref_tensor *tg = ref_find(f, "targets"), *wih = ref_find(f, "weight_ih"),
                     *ow = ref_find(f, "out.weight");
    const char *miss = !tg ? "targets" : !wih ? "weight_ih" : !ow ? "out.weight" : NULL;
    if (miss) {
        fprintf(stderr, "gradref_check: %s: missing tensor '%s'\n", f->path, miss);
        return -1;
    }
    z->T = tg->rows;
    z->B = tg->cols;
    z->G = k->gates;
    z->I = wih->cols;
    z->H = wih->rows / z->G;
    z->V = ow->rows;
    if (wih->rows % z->G != 0) {
        fprintf(stderr, "gradref_check: %s:%d: weight_ih has %d rows, not a multiple of %d gates\n",
                f->path, wih->line, wih->rows, z->G);
        return -1;
    }
    if (z->V < 1) return -1;
    return 0;
}

/* Max |a - b| / max |b| over one tensor (absolute when b is all zero). */
static double tensor_rel_err(const tg_real *ours, const double *ref, size_t n)
{
    double diff = 0, scale = 0;
    for (size_t i = 0; i < n; i++) {
        double d = fabs((double)ours[i] - ref[i]);
        diff = d > diff || isnan(d) ? d : diff;
        scale = fmax(scale, fabs(ref[i]));
    }
    return isnan(diff) ? INFINITY : scale > 0 ? diff / scale : diff;
}

static void copy_in(tg_tensor *dst, const ref_tensor *src)
{
    for (size_t i = 0; i < tg_numel(dst); i++) dst->data[i] = (tg_real)src->v[i];
}

typedef struct errs {
    double loss, grad, state;
} errs;

static int verbose;

static void note(const char *path, const char *name, double e, double *worst)
{
    if (verbose) fprintf(stderr, "  %s %-12s rel_err=%.3g\n", path, name, e);
    if (!(e <= *worst)) *worst = isnan(e) ? INFINITY : e;
}

/* Targets: integers in [0, V), time-major like the inputs. */
static int *read_targets(const ref_file *f, const sizes *z)
{
    const ref_tensor *tg = ref_find(f, "targets");
    int *y = malloc((size_t)z->T * z->B * sizeof *y);
    for (int i = 0; y && i < z->T * z->B; i++) {
        double v = tg->v[i];
        if (v != floor(v) || v < 0 || v >= z->V) {
            fprintf(stderr, "gradref_check: %s:%d: targets[%d][%d] = %g is not a class in 0..%d\n",
                    f->path, tg->line + 1 + i / z->B, i / z->B, i % z->B, v, z->V - 1);
            free(y);
            return NULL;
        }
        y[i] = (int)v;
    }
    return y;
}

typedef struct model {
    tg_params *p;
    tg_cell cell;
    tg_linear out;
    tg_tensor *param[6]; /* in file order: weight_ih, weight_hh, bias_ih, bias_hh, out.* */
} model;

static const char *const param_names[6] = {"weight_ih", "weight_hh", "bias_ih",
                                           "bias_hh",   "out.weight", "out.bias"};

static int model_load(model *m, const ref_file *f, const tg_cell_kind *k, const sizes *z)
{
    tg_rng r;
    tg_rng_seed(&r, 1);
    m->p = tg_params_new();
    if (!m->p || tg_cell_init(&m->cell, k, m->p, "cell", z->I, z->H, &r) ||
        tg_linear_init(&m->out, m->p, "out", z->H, z->V, &r)) {
        fprintf(stderr, "gradref_check: out of memory\n");
        return -1;
    }
    tg_tensor *mine[6] = {m->cell.w_ih, m->cell.w_hh, m->cell.b_ih, m->cell.b_hh, m->out.w, m->out.b};
    int bad = 0;
    for (int i = 0; i < 6; i++) {
        /* biases are 1 x n for us, a column n x 1 in the file */
        int col = mine[i]->rows == 1;
        const ref_tensor *src = want(f, param_names[i], col ? mine[i]->cols : mine[i]->rows,
                                     col ? 1 : mine[i]->cols, 1, &bad);
        if (src) copy_in(mine[i], src);
        m->param[i] = mine[i];
    }
    return bad ? -1 : 0;
}

static double ref_scalar(const ref_tensor *t) { return t->v[0]; }

/* Runs forward + backward on tape t; fills errs. 0 ok, -1 data error. */
static int run_check(const ref_file *f, const tg_cell_kind *k, const sizes *z, model *m,
                     const int *y, tg_tape *t, errs *e)
{
    int T = z->T, B = z->B, H = z->H, bad = 0;
    char nm[MAX_NAME + 16];
    tg_tensor *X = tg_tensor_new(t, T * B, z->I, 1);
    for (int s = 0; s < T; s++) {
        snprintf(nm, sizeof nm, "x_%d", s);
        const ref_tensor *x = want(f, nm, B, z->I, 1, &bad);
        for (int i = 0; x && i < B * z->I; i++) X->data[(size_t)s * B * z->I + i] = (tg_real)x->v[i];
    }
    tg_state s0 = tg_state_zeros(t, k, B, H);
    const ref_tensor *h0 = want(f, "h0", B, H, 1, &bad);
    const ref_tensor *c0 = k->has_c ? want(f, "c0", B, H, 1, &bad) : NULL;
    const ref_tensor *loss_ref = want(f, "loss", 1, 1, 1, &bad);
    if (bad) return -1;
    copy_in(s0.h, h0);
    if (c0) copy_in(s0.c, c0);

    tg_params_zero_grad(m->p);
    tg_rnn_stack one = tg_rnn_stack_of_cell(&m->cell);
    tg_rnn_run run = {.T = T, .B = B, .x = X, .init = &s0};
    tg_tensor *hs = tg_rnn_forward(t, &one, &run);
    tg_tensor *logits = tg_linear_forward(t, &m->out, hs);
    /* tg_softmax_xent is a mean over the T*B rows; the reference sums them */
    tg_tensor *loss = tg_scale(t, tg_softmax_xent(t, logits, y, -1), (double)T * B);
    tg_backward(t, loss);

    e->loss = fabs((double)loss->data[0] - ref_scalar(loss_ref)) /
              fmax(fabs(ref_scalar(loss_ref)), 1e-300);
    if (verbose) fprintf(stderr, "  %s %-12s rel_err=%.3g\n", f->path, "loss", e->loss);
    e->grad = e->state = 0;
    for (int i = 0; i < 6; i++) {
        snprintf(nm, sizeof nm, "grad.%s", param_names[i]);
        tg_tensor *p = m->param[i];
        int col = p->rows == 1;
        const ref_tensor *g = want(f, nm, col ? p->cols : p->rows, col ? 1 : p->cols, 1, &bad);
        if (g) note(f->path, nm, tensor_rel_err(p->grad, g->v, tg_numel(p)), &e->grad);
    }
    for (int s = 0; s < T; s++) { /* optional extras: grad.x_t, h_t, c_t */
        snprintf(nm, sizeof nm, "grad.x_%d", s);
        const ref_tensor *g = want(f, nm, B, z->I, 0, &bad);
        if (g) note(f->path, nm, tensor_rel_err(X->grad + (size_t)s * B * z->I, g->v, (size_t)B * z->I), &e->grad);
        snprintf(nm, sizeof nm, "h_%d", s + 1);
        const ref_tensor *h = want(f, nm, B, H, 0, &bad);
        if (h) note(f->path, nm, tensor_rel_err(hs->data + (size_t)s * B * H, h->v, (size_t)B * H), &e->state);
    }
    if (k->has_c) { /* c_t is not an unroll output: step the cell once more, no grad */
        tg_tape_set_grad(t, 0);
        tg_state s = s0;
        for (int step = 0; step < T; step++) {
            s = tg_cell_forward(t, &m->cell, tg_row_slice(t, X, step * B, B), s);
            snprintf(nm, sizeof nm, "c_%d", step + 1);
            const ref_tensor *c = want(f, nm, B, H, 0, &bad);
            if (c) note(f->path, nm, tensor_rel_err(s.c->data, c->v, (size_t)B * H), &e->state);
        }
        tg_tape_set_grad(t, 1);
    }
    return bad ? -1 : 0;
}

/* 0 ok, 1 mismatch or bad file. */
static int check_file(const char *path)
{
    const tg_cell_kind *k = kind_from_path(path);
    ref_file f;
    if (!k || ref_load(&f, path)) return 1;
    sizes z;
    model m = {0};
    int *y = NULL, rc = 1;
    tg_tape *t = NULL;
    if (derive_sizes(&f, k, &z) || !(y = read_targets(&f, &z)) || model_load(&m, &f, k, &z))
        goto done;
    /* generous: ~40 B x GH-sized tensors per step, plus the output layer */
    size_t per_step = (size_t)z.B * ((size_t)z.G * z.H * 40 + z.I * 4 + z.V * 8) * sizeof(tg_real);
    t = tg_tape_new(((size_t)z.T + 2) * (per_step + 8192) + (1u << 20));
    if (!t) {
        fprintf(stderr, "gradref_check: %s: out of memory for the tape\n", path);
        goto done;
    }
    errs e;
    if (run_check(&f, k, &z, &m, y, t, &e)) goto done;
    int ok = e.loss <= TOLERANCE && e.grad <= TOLERANCE && e.state <= TOLERANCE;
    printf("%s loss_rel_err=%.3g max_grad_rel_err=%.3g %s\n", path, e.loss, e.grad,
           ok ? "ok" : "FAIL");
    if (!ok && !(e.state <= TOLERANCE))
        fprintf(stderr, "gradref_check: %s: per-step states differ: max_state_rel_err=%.3g\n",
                path, e.state);
    rc = ok ? 0 : 1;
done:
    tg_tape_free(t);
    tg_params_free(m.p);
    free(y);
    ref_free(&f);
    return rc;
}

static void usage(FILE *out)
{
    fprintf(out,
            "usage: gradref_check [-v] FILE...\n"
            "  Checks our cells against PyTorch reference gradients (format: "
            "shared/gradref/README.txt).\n"
            "  The cell kind comes from the file name (lstm, gru or rnn).\n"
            "  -v, --verbose   print every tensor's relative error on stderr (default off)\n"
            "  -h, --help      this text\n"
            "  Tolerance: %g (%s build).\n",
            TOLERANCE, TG_REAL_NAME);
}

int main(int argc, char **argv)
{
    int first = 1, fails = 0;
    for (; first < argc && argv[first][0] == '-'; first++) {
        if (!strcmp(argv[first], "-v") || !strcmp(argv[first], "--verbose")) {
            verbose = 1;
        } else if (!strcmp(argv[first], "-h") || !strcmp(argv[first], "--help")) {
            usage(stdout);
            return 0;
        } else if (!strcmp(argv[first], "--")) {
            first++;
            break;
        } else {
            fprintf(stderr, "gradref_check: unknown flag '%s' (try --help)\n", argv[first]);
            return 2;
        }
    }
    if (first >= argc) {
        usage(stderr);
        return 2;
    }
    for (int i = first; i < argc; i++) fails += check_file(argv[i]);
    return fails ? 1 : 0;
}
