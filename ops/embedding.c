/* embedding: y[i, :] = table[ids[i], :] for i < n (a row gather).
 * VJP: d table[ids[i], :] += dy[i, :] (scatter-add, in order of i, so repeated
 * ids accumulate deterministically). ids are integers: saved, never
 * differentiated. Checks every id against table->rows (always on). */
#include <string.h>

#include "tg_op.h"

tg_tensor *tg_embedding_(tg_tape *t, tg_tensor *table, const int *ids, int n, tg_src at)
{
    TG_CHECK(n > 0, at, "embedding", "need at least one id, got %d", n);
    for (int i = 0; i < n; i++)
        TG_CHECK(ids[i] >= 0 && ids[i] < table->rows, at, "embedding",
                 "id %d at position %d is outside the %dx%d table", ids[i], i, table->rows,
                 table->cols);
    int rec = tg_op_records(t, table, NULL, NULL);
    int e = table->cols;
    tg_tensor *y = tg_op_output(t, n, e, rec);
    for (int i = 0; i < n; i++)
        memcpy(y->data + (size_t)i * e, table->data + (size_t)ids[i] * e, e * sizeof(tg_real));
    if (rec) {
        int *saved = tg_tape_ints(t, (size_t)n);
        memcpy(saved, ids, (size_t)n * sizeof(int));
        tg_op_record(t, TG_OP_EMBEDDING, y, 1, table, NULL, NULL)->ints = saved;
    }
    return y;
}

void tg_vjp_embedding(const tg_node *node, int threads)
{
    const tg_tensor *table = node->in[0], *y = node->out;
    (void)threads;
    if (!table->grad) return;
    int e = y->cols;
    for (int i = 0; i < y->rows; i++)
        tg_col_sums_into(table->grad + (size_t)node->ints[i] * e, y->grad + (size_t)i * e, 1, e);
}
