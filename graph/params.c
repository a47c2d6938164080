/* Model parameters: one contiguous block of values and one of gradients,
 * with named tensor views into them. Registration may grow the blocks; the
 * views are rebased, so the tg_tensor pointers handed out stay valid. */
#include <stdlib.h>
#include <string.h>

#include "tapegrad.h"
#include "tg_clones.h"

struct tg_params {
    size_t count, cap;
    tg_tensor **tensors; /* heap headers, stable addresses */
    char **names;
    size_t *offsets;
    size_t numel, cap_numel;
    tg_real *data, *grad;
    int shares_data; /* a replica: data belongs to the master */
};

tg_params *tg_params_new(void) { return calloc(1, sizeof(tg_params)); }

void tg_params_free(tg_params *p)
{
    if (!p) return;
    for (size_t i = 0; i < p->count; i++) {
        free(p->tensors[i]);
        free(p->names[i]);
    }
    free(p->tensors);
    free(p->names);
    free(p->offsets);
    if (!p->shares_data) free(p->data);
    free(p->grad);
    free(p);
}

static void rebase(tg_params *p)
{
    for (size_t i = 0; i < p->count; i++) {
        p->tensors[i]->data = p->data + p->offsets[i];
        p->tensors[i]->grad = p->grad + p->offsets[i];
    }
}

static int grow_values(tg_params *p, size_t need)
{
    if (need <= p->cap_numel) return 1;
    size_t cap = p->cap_numel ? p->cap_numel : 1024;
    while (cap < need) cap *= 2;
    tg_real *d = realloc(p->data, cap * sizeof *d);
    if (!d) return 0;
    p->data = d;
    tg_real *g = realloc(p->grad, cap * sizeof *g);
    if (!g) return 0;
    p->grad = g;
    p->cap_numel = cap;
    rebase(p);
    return 1;
}

static int grow_table(tg_params *p)
{
    if (p->count < p->cap) return 1;
    size_t cap = p->cap ? 2 * p->cap : 16;
    tg_tensor **t = realloc(p->tensors, cap * sizeof *t);
    if (!t) return 0;
    p->tensors = t;
    char **n = realloc(p->names, cap * sizeof *n);
    if (!n) return 0;
    p->names = n;
    size_t *o = realloc(p->offsets, cap * sizeof *o);
    if (!o) return 0;
    p->offsets = o;
    p->cap = cap;
    return 1;
}

/* On a replica, "registering" finds the master's tensor of that name: the
 * same model-building code then builds a worker's model over shared values. */
static tg_tensor *replica_param(tg_params *p, const char *name, int rows, int cols)
{
    tg_tensor *x = tg_params_find(p, name);
    TG_CHECK(x != NULL, TG_HERE, "param", "replica has no parameter '%s'", name);
    TG_CHECK(x->rows == rows && x->cols == cols, TG_HERE, "param",
             "replica's '%s' is %dx%d, asked for %dx%d", name, x->rows, x->cols, rows, cols);
    return x;
}

tg_tensor *tg_param(tg_params *p, const char *name, int rows, int cols)
{
    TG_CHECK(rows > 0 && cols > 0, TG_HERE, "param", "'%s': shape %dx%d must be positive",
             name, rows, cols);
    if (p->shares_data) return replica_param(p, name, rows, cols);
    TG_CHECK(tg_params_find(p, name) == NULL, TG_HERE, "param", "'%s' registered twice", name);
    size_t n = (size_t)rows * (size_t)cols;
    tg_tensor *x = calloc(1, sizeof *x);
    char *nm = malloc(strlen(name) + 1);
    if (!x || !nm || !grow_table(p) || !grow_values(p, p->numel + n)) {
        free(x);
        free(nm);
        return NULL;
    }
    strcpy(nm, name);
    x->rows = rows;
    x->cols = cols;
    x->flags = TG_F_LEAF | TG_F_OWNS_GRAD | TG_F_PARAM;
    p->tensors[p->count] = x;
    p->names[p->count] = nm;
    p->offsets[p->count] = p->numel;
    p->count++;
    p->numel += n;
    rebase(p);
    memset(x->data, 0, n * sizeof(tg_real));
    memset(x->grad, 0, n * sizeof(tg_real));
    return x;
}

tg_tensor *tg_param_uniform(tg_params *p, const char *name, int rows, int cols, tg_rng *r,
                            double bound)
{
    tg_tensor *x = tg_param(p, name, rows, cols);
    if (!x || p->shares_data) return x; /* a replica's values are the master's */
    for (size_t i = 0; i < tg_numel(x); i++)
        x->data[i] = (tg_real)((2.0 * tg_rng_uniform(r) - 1.0) * bound);
    return x;
}

tg_tensor *tg_param_normal(tg_params *p, const char *name, int rows, int cols, tg_rng *r,
                           double std)
{
    tg_tensor *x = tg_param(p, name, rows, cols);
    if (!x || p->shares_data) return x; /* a replica's values are the master's */
    for (size_t i = 0; i < tg_numel(x); i++) x->data[i] = (tg_real)(std * tg_rng_normal(r));
    return x;
}

size_t tg_params_count(const tg_params *p) { return p->count; }
size_t tg_params_numel(const tg_params *p) { return p->numel; }
tg_real *tg_params_data(tg_params *p) { return p->data; }
tg_real *tg_params_grad(tg_params *p) { return p->grad; }
tg_tensor *tg_params_at(const tg_params *p, size_t i) { return i < p->count ? p->tensors[i] : NULL; }
const char *tg_params_name(const tg_params *p, size_t i) { return i < p->count ? p->names[i] : NULL; }

tg_tensor *tg_params_find(const tg_params *p, const char *name)
{
    for (size_t i = 0; i < p->count; i++)
        if (strcmp(p->names[i], name) == 0) return p->tensors[i];
    return NULL;
}

void tg_params_zero_grad(tg_params *p)
{
    if (p->numel) memset(p->grad, 0, p->numel * sizeof(tg_real));
}

enum { SQ_LANES = 16 };

/* One block (n <= TG_SQ_BLOCK): element i goes to lane i % SQ_LANES (a
 * single running sum is one dependent add per element, 4 cycles), the lanes
 * are then added pairwise in a fixed order. */
TG_SIMD_CLONES static double block_squares(const tg_real *x, size_t n)
{
    double s[SQ_LANES] = {0};
    size_t i = 0;
    for (; i + SQ_LANES <= n; i += SQ_LANES)
        for (int j = 0; j < SQ_LANES; j++) s[j] += (double)x[i + j] * (double)x[i + j];
    for (int j = 0; i < n; i++, j++) s[j] += (double)x[i] * (double)x[i];
    for (int m = SQ_LANES; m > 1; m /= 2)
        for (int j = 0; j < m / 2; j++) s[j] = s[2 * j] + s[2 * j + 1];
    return s[0];
}

double tg_sum_squares(const tg_real *x, size_t n)
{
    double total = 0;
    for (size_t lo = 0; lo < n; lo += TG_SQ_BLOCK)
        total += block_squares(x + lo, n - lo < TG_SQ_BLOCK ? n - lo : TG_SQ_BLOCK);
    return total;
}

tg_params *tg_params_replica(const tg_params *m)
{
    tg_params *r = tg_params_new();
    if (!r) return NULL;
    r->shares_data = 1;
    r->data = m->data;
    r->numel = r->cap_numel = m->numel;
    r->grad = calloc(m->numel ? m->numel : 1, sizeof(tg_real));
    int ok = r->grad != NULL;
    for (size_t i = 0; ok && i < m->count; i++) {
        ok = grow_table(r);
        tg_tensor *x = ok ? malloc(sizeof *x) : NULL;
        char *nm = ok ? malloc(strlen(m->names[i]) + 1) : NULL;
        if (!x || !nm) {
            free(x);
            free(nm);
            ok = 0;
            break;
        }
        *x = *m->tensors[i];
        strcpy(nm, m->names[i]);
        r->tensors[i] = x;
        r->names[i] = nm;
        r->offsets[i] = m->offsets[i];
        r->count++;
    }
    if (!ok) {
        tg_params_free(r);
        return NULL;
    }
    rebase(r);
    return r;
}

tg_tensor *tg_params_twin(const tg_params *replica, const tg_params *master, const tg_tensor *m)
{
    for (size_t i = 0; i < master->count && i < replica->count; i++)
        if (master->tensors[i] == m) return replica->tensors[i];
    return NULL;
}
