/* Attention (Luong dot and general, Bahdanau mlp), composed of ops:
 *   scores  = attn_scores(q, keys)          (B x S; mlp: see below)
 *   a       = softmax(scores, padding mask) (B x S)
 *   context = attn_context(a, values)       (B x M)
 *   out     = tanh([context; h] W_c^T (+ b_c))
 * The keys are the memory's projection, made once per batch by
 * tg_attn_memory_init (dot: the memory itself; general: m W_in^T; mlp:
 * m U^T), so a step costs B*S*H for the scores instead of S*B*M*H.
 * mlp: score[b, s] = v . tanh(W h_b + b_q + (U m)[s*B + b]); the per-step
 * part W h + b_q (B x H) is repeated over the S row groups with stack_rows
 * (a copy of the pointer list, S*B*H values), added to the keys, and scored
 * against v (repeated over B rows once per batch) with attn_scores.
 * Parameter names and shapes: tg_attention.h. */
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "tg_layers.h"

static const char *const kind_names[] = {"none", "dot", "general", "mlp"};

const char *tg_attn_kind_name(tg_attn_kind kind)
{
    return kind >= TG_ATTN_NONE && kind <= TG_ATTN_MLP ? kind_names[kind] : "?";
}

int tg_attn_kind_by_name(const char *name, tg_attn_kind *kind)
{
    for (int k = TG_ATTN_NONE; name && k <= TG_ATTN_MLP; k++)
        if (strcmp(name, kind_names[k]) == 0) {
            *kind = (tg_attn_kind)k;
            return 0;
        }
    return -1;
}

const char *tg_attn_kind_names(void) { return "none,dot,general,mlp"; }

static tg_tensor *param(tg_params *p, const char *prefix, const char *what, int rows, int cols,
                        double bound, tg_rng *r)
{
    char nm[TG_NAME_MAX + 32];
    snprintf(nm, sizeof nm, "%s.%s", prefix, what);
    return tg_param_uniform(p, nm, rows, cols, r, bound);
}

int tg_attention_init(tg_attention *a, tg_params *p, const char *prefix, tg_attn_kind kind,
                      int query, int mem, tg_rng *r)
{
    TG_CHECK(kind == TG_ATTN_DOT || kind == TG_ATTN_GENERAL || kind == TG_ATTN_MLP, TG_HERE,
             "attention_init", "kind %d is not dot, general or mlp", (int)kind);
    TG_CHECK(query > 0 && mem > 0 && (kind != TG_ATTN_DOT || query == mem), TG_HERE,
             "attention_init", "%s attention over query %d and memory %d (dot needs them equal)",
             tg_attn_kind_name(kind), query, mem);
    memset(a, 0, sizeof *a);
    a->kind = kind;
    a->query = query;
    a->mem = mem;
    double bm = 1.0 / sqrt((double)mem), bq = 1.0 / sqrt((double)query);
    char nm[TG_NAME_MAX + 32];
    if (kind == TG_ATTN_GENERAL && !(a->linear_in = param(p, prefix, "linear_in.weight", query, mem, bm, r)))
        return -1;
    if (kind == TG_ATTN_MLP) {
        a->linear_context = param(p, prefix, "linear_context.weight", query, mem, bm, r);
        snprintf(nm, sizeof nm, "%s.linear_query", prefix);
        if (!a->linear_context || tg_linear_init(&a->linear_query, p, nm, query, query, r) != 0)
            return -1;
        if (!(a->v = param(p, prefix, "v.weight", 1, query, bq, r))) return -1;
    }
    double bo = 1.0 / sqrt((double)(mem + query));
    a->out_w = param(p, prefix, "linear_out.weight", query, mem + query, bo, r);
    if (kind == TG_ATTN_MLP) a->out_b = param(p, prefix, "linear_out.bias", 1, query, bo, r);
    return a->out_w && (kind != TG_ATTN_MLP || a->out_b) ? 0 : -1;
}

tg_attn_memory tg_attn_memory_init(tg_tape *t, const tg_attention *a, tg_tensor *values, int S,
                                   int B, const int *lengths)
{
    TG_CHECK(S > 0 && B > 0 && values->rows == S * B && values->cols == a->mem, TG_HERE,
             "attn_memory", "memory is %dx%d, expected S*B x M = %dx%d (S=%d, B=%d)",
             values->rows, values->cols, S * B, a->mem, S, B);
    tg_attn_memory m = {S, B, values, values, NULL, NULL};
    if (a->kind == TG_ATTN_GENERAL) m.keys = tg_matmul(t, values, a->linear_in, 0, 1);
    if (a->kind == TG_ATTN_MLP) {
        m.keys = tg_matmul(t, values, a->linear_context, 0, 1);
        tg_tensor *ones = tg_tensor_new(t, B, 1, 0);
        for (int b = 0; b < B; b++) ones->data[b] = 1;
        m.v_rows = tg_matmul(t, ones, a->v, 0, 0);
    }
    if (lengths) {
        int *mask = tg_tape_ints(t, (size_t)B * S);
        for (int b = 0; b < B; b++) {
            TG_CHECK(lengths[b] >= 0 && lengths[b] <= S, TG_HERE, "attn_memory",
                     "lengths[%d] = %d outside 0..%d", b, lengths[b], S);
            for (int s = 0; s < S; s++) mask[(size_t)b * S + s] = s >= lengths[b];
        }
        m.mask = mask;
    }
    return m;
}

/* B x S scores of the query h against the memory's keys. */
static tg_tensor *scores(tg_tape *t, const tg_attention *a, const tg_attn_memory *m, tg_tensor *h)
{
    if (a->kind != TG_ATTN_MLP) return tg_attn_scores(t, h, m->keys);
    tg_tensor *wq = tg_linear_forward(t, &a->linear_query, h);
    tg_tensor **rep = tg_tape_alloc(t, (size_t)m->S * sizeof *rep);
    for (int s = 0; s < m->S; s++) rep[s] = wq;
    tg_tensor *e = tg_tanh(t, tg_add(t, m->keys, tg_stack_rows(t, rep, m->S)));
    return tg_attn_scores(t, m->v_rows, e);
}

tg_tensor *tg_attention_forward(tg_tape *t, const tg_attention *a, const tg_attn_memory *m,
                                tg_tensor *h, tg_tensor **weights)
{
    TG_CHECK(h->rows == m->B && h->cols == a->query, TG_HERE, "attention",
             "query is %dx%d, expected B x H = %dx%d", h->rows, h->cols, m->B, a->query);
    tg_tensor *w = tg_softmax(t, scores(t, a, m, h), m->mask);
    if (weights) *weights = w;
    tg_tensor *ctx = tg_attn_context(t, w, m->values);
    tg_tensor *pre = tg_matmul(t, tg_concat(t, ctx, h), a->out_w, 0, 1);
    return tg_tanh(t, a->out_b ? tg_add(t, pre, a->out_b) : pre);
}
