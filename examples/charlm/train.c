/* charlm's trainer: truncated BPTT over B parallel streams of the text,
 * data-parallel over shards of the streams, and evaluation.
 *
 * The text is cut into B equal streams; each step takes the next T
 * characters of every stream and carries each stream's recurrent state
 * (values only) into the next window. The batch's streams are split over
 * `shards` workers, each with its own tape and parameter replica; their
 * gradients are added in shard order, so results depend on the number of
 * shards but never on the number of threads. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "charlm.h"
#include "trainrun.h"

/* in/tg (time-major, Tw x nb) from streams b0 .. b0+nb-1 at st->pos. */
static void fill_window(const charlm_streams *st, int b0, int nb, int Tw, int *in, int *tg)
{
    for (int t = 0; t < Tw; t++)
        for (int b = 0; b < nb; b++) {
            const int *src = st->ids + (size_t)(b0 + b) * st->L + st->pos + (size_t)t;
            in[t * nb + b] = src[0];
            tg[t * nb + b] = src[1];
        }
}

static void zero_states(charlm_streams *st, int n)
{
    for (int s = 0; s < n; s++) tg_state_buf_zero(&st->state[s]);
    st->pos = 0;
}

static double shard_step(int s, tg_tape *t, tg_params *params, void *ctx)
{
    (void)params; /* the shard's model was built over it once, at set-up */
    charlm_trainer *tr = ctx;
    charlm_shard *sh = &tr->shard[s];
    tg_state init[TG_MAX_LAYERS], final[TG_MAX_LAYERS];
    fill_window(tr->cur, sh->b0, sh->nb, tr->cur_T, sh->in, sh->tg);
    tg_state_buf_load(&tr->cur->state[s], t, init);
    tg_tensor *loss = charmodel_loss(t, &sh->model, sh->in, sh->tg, tr->cur_T, sh->nb, init, final,
                                     &sh->dropout_rng);
    tg_state_buf_store(&tr->cur->state[s], final);
    /* each shard's mean, weighted by its share of the batch: the sum over
     * shards is the batch mean */
    double share = (double)sh->nb / (double)tr->B;
    tg_backward(t, tg_scale(t, loss, share));
    return (double)loss->data[0] * share;
}

static int init_shards(charlm_trainer *tr, uint64_t seed, char *err, size_t errlen)
{
    const charmodel_config *cfg = &tr->model->cfg;
    int max_nb = (tr->B + tr->shards - 1) / tr->shards;
    tr->arena_bytes = charmodel_arena_bytes(cfg, tr->T, max_nb);
    if (tgx_arena_problem(tr->arena_bytes, CHARLM_LOWER, err, errlen)) return -1;
    tr->workers = tg_workers_new(tr->model->params, tr->shards, tr->arena_bytes);
    if (!tr->workers) goto oom;
    for (int s = 0; s < tr->shards; s++) {
        charlm_shard *sh = &tr->shard[s];
        tg_rng unused;
        tg_rng_seed(&unused, 0); /* a replica draws nothing */
        sh->b0 = s * tr->B / tr->shards;
        sh->nb = (s + 1) * tr->B / tr->shards - sh->b0;
        if (charmodel_build(&sh->model, tg_workers_params(tr->workers, s), cfg, &unused) != 0)
            goto oom;
        sh->in = malloc((size_t)tr->T * (size_t)sh->nb * sizeof(int));
        sh->tg = malloc((size_t)tr->T * (size_t)sh->nb * sizeof(int));
        if (!sh->in || !sh->tg) goto oom;
        tg_rng_seed(&sh->dropout_rng, seed + 0x9E3779B97F4A7C15ull * (uint64_t)(s + 1));
        if (tg_state_buf_init(&tr->train.state[s], cfg->kind, cfg->layers, sh->nb, cfg->hidden))
            goto oom;
        tg_tape_set_threads(tg_workers_tape(tr->workers, s), tr->shards == 1 ? tr->threads : 1);
    }
    return 0;
oom:
    snprintf(err, errlen, "out of memory setting up %d shard(s) of %d streams x %d steps",
             tr->shards, tr->B, tr->T);
    return -1;
}

static int init_eval(charlm_trainer *tr, const int *ids, size_t n, char *err, size_t errlen)
{
    const charmodel_config *cfg = &tr->model->cfg;
    if (n < 2) return 0; /* no validation split */
    tr->eval_B = n - 1 < (size_t)tr->B ? (int)(n - 1) : tr->B;
    tr->valid.ids = ids;
    tr->valid.B = tr->eval_B;
    tr->valid.L = (n - 1) / (size_t)tr->eval_B;
    tr->eval_arena_bytes = charmodel_arena_bytes(cfg, tr->T, tr->eval_B);
    if (tgx_arena_problem(tr->eval_arena_bytes, CHARLM_LOWER, err, errlen)) return -1;
    tr->eval_tape = tg_tape_new(tr->eval_arena_bytes);
    tr->eval_in = malloc((size_t)tr->T * (size_t)tr->eval_B * sizeof(int));
    tr->eval_tg = malloc((size_t)tr->T * (size_t)tr->eval_B * sizeof(int));
    if (!tr->eval_tape || !tr->eval_in || !tr->eval_tg ||
        tg_state_buf_init(&tr->valid.state[0], cfg->kind, cfg->layers, tr->eval_B, cfg->hidden)) {
        snprintf(err, errlen, "out of memory setting up evaluation");
        return -1;
    }
    tg_tape_set_grad(tr->eval_tape, 0);
    tg_tape_set_threads(tr->eval_tape, tr->threads);
    return 0;
}

int charlm_trainer_init(charlm_trainer *tr, charmodel *m, const int *train_ids, size_t n_train,
                        const int *valid_ids, size_t n_valid, int T, int B, int shards,
                        int threads, uint64_t seed, int trains, char *err, size_t errlen)
{
    memset(tr, 0, sizeof *tr);
    tr->model = m;
    tr->T = T;
    tr->B = B;
    tr->shards = shards;
    tr->threads = threads;
    if (shards < 1 || shards > CHARLM_MAX_SHARDS || shards > B) {
        snprintf(err, errlen, "--shards %d must be in 1..min(--batch %d, %d)", shards, B,
                 CHARLM_MAX_SHARDS);
        return -1;
    }
    size_t L = n_train > 0 ? (n_train - 1) / (size_t)B : 0;
    if (trains && L < (size_t)T && n_train < 2) { /* one character is no training pair */
        snprintf(err, errlen, "the training text (the text less --valid-frac) has %zu "
                 "character%s: it needs at least 2 (one to read, the next to predict)", n_train,
                 n_train == 1 ? "" : "s");
        return -2; /* the data's fault: exit 1 */
    }
    if (trains && L < (size_t)T) {
        snprintf(err, errlen, "the training text (%zu characters) is too short for --batch %d "
                 "streams of --seq-len %d: use a smaller --batch or --seq-len", n_train, B, T);
        return -1;
    }
    tr->train = (charlm_streams){.ids = train_ids, .L = L, .B = B};
    /* one BLAS thread per shard when shards run in parallel (no nested pools) */
    tg_blas_set_threads(shards == 1 ? threads : 1);
    if (init_shards(tr, seed, err, errlen) != 0 || init_eval(tr, valid_ids, n_valid, err, errlen)) {
        charlm_trainer_free(tr);
        return -2; /* memory, not the flags' consistency */
    }
    return 0;
}

void charlm_trainer_free(charlm_trainer *tr)
{
    for (int s = 0; s < tr->shards && s < CHARLM_MAX_SHARDS; s++) {
        charmodel_free(&tr->shard[s].model);
        free(tr->shard[s].in);
        free(tr->shard[s].tg);
        tg_state_buf_free(&tr->train.state[s]);
    }
    tg_workers_free(tr->workers);
    tg_state_buf_free(&tr->valid.state[0]);
    tg_tape_free(tr->eval_tape);
    free(tr->eval_in);
    free(tr->eval_tg);
    memset(tr, 0, sizeof *tr);
}

int charlm_trainer_attach_dist(charlm_trainer *tr, tg_dist *d, char *err, size_t errlen)
{
    int first, count;
    if (tg_dist_shards(d, tr->shards, &first, &count, err, errlen) != 0 ||
        tg_dist_attach(d, tr->workers, err, errlen) != 0)
        return -1;
    tr->dist = d;
    return 0;
}

double charlm_train_window(charlm_trainer *tr)
{
    if (tr->train.pos + (size_t)tr->T > tr->train.L) zero_states(&tr->train, tr->shards);
    tr->cur = &tr->train;
    tr->cur_T = tr->T;
    double loss = tr->dist ? tg_dist_run(tr->dist, tr->workers, tr->threads, shard_step, tr)
                           : tg_workers_run(tr->workers, tr->threads, shard_step, tr);
    tr->train.pos += (size_t)tr->T;
    return loss;
}

double charlm_evaluate(charlm_trainer *tr)
{
    if (tr->eval_B == 0) return NAN;
    charlm_streams *v = &tr->valid;
    tg_state init[TG_MAX_LAYERS], final[TG_MAX_LAYERS];
    double total = 0, count = 0;
    if (tr->shards > 1) tg_blas_set_threads(tr->threads); /* one tape: BLAS may use them all */
    zero_states(v, 1);
    while (v->pos < v->L) {
        int Tw = v->L - v->pos < (size_t)tr->T ? (int)(v->L - v->pos) : tr->T;
        tg_tape_reset(tr->eval_tape);
        fill_window(v, 0, tr->eval_B, Tw, tr->eval_in, tr->eval_tg);
        tg_state_buf_load(&v->state[0], tr->eval_tape, init);
        tg_tensor *loss = charmodel_loss(tr->eval_tape, tr->model, tr->eval_in, tr->eval_tg, Tw,
                                         tr->eval_B, init, final, NULL);
        tg_state_buf_store(&v->state[0], final);
        total += (double)loss->data[0] * Tw * tr->eval_B;
        count += (double)Tw * tr->eval_B;
        v->pos += (size_t)Tw;
    }
    if (tr->shards > 1) tg_blas_set_threads(1);
    return total / count;
}

int charlm_trainer_register(charlm_trainer *tr, tg_trainckpt *ck)
{
    if (tg_trainckpt_u64(ck, "data_pos", &tr->train.pos) != 0) return -1;
    for (int s = 0; s < tr->shards; s++) {
        char name[48];
        tg_state_buf *b = &tr->train.state[s];
        size_t n = (size_t)b->layers * (size_t)b->batch * (size_t)b->hidden;
        snprintf(name, sizeof name, "dropout.%d", s);
        if (tg_trainckpt_rng(ck, name, &tr->shard[s].dropout_rng) != 0) return -1;
        snprintf(name, sizeof name, "tbptt.%d.h", s);
        if (tg_trainckpt_array(ck, name, b->h, n) != 0) return -1;
        snprintf(name, sizeof name, "tbptt.%d.c", s);
        if (b->c && tg_trainckpt_array(ck, name, b->c, n) != 0) return -1;
    }
    return 0;
}

void charlm_trainer_share_state(void *trainer)
{
    charlm_trainer *tr = trainer;
    if (!tr->dist) return;
    for (int s = 0; s < tr->shards; s++) {
        tg_state_buf *b = &tr->train.state[s];
        size_t n = (size_t)b->layers * (size_t)b->batch * (size_t)b->hidden * sizeof *b->h;
        tg_dist_share_shard(tr->dist, s, &tr->shard[s].dropout_rng, sizeof(tg_rng));
        tg_dist_share_shard(tr->dist, s, b->h, n);
        if (b->c) tg_dist_share_shard(tr->dist, s, b->c, n);
    }
}

int charlm_trainer_check_loaded(const charlm_trainer *tr, const char *path, char *err,
                                size_t errlen)
{
    /* train_window reads from pos unless pos + T runs past L: a pos beyond
     * L (a doctored file) could wrap that sum and read outside the text */
    if (tr->train.pos > tr->train.L) {
        snprintf(err, errlen, "%s: metadata 'u64.data_pos' is %llu, beyond the %zu characters "
                 "of each stream", path, (unsigned long long)tr->train.pos, tr->train.L);
        return -1;
    }
    return 0;
}

static int state_finite(const tg_state_buf *b)
{
    size_t n = (size_t)b->layers * (size_t)b->batch * (size_t)b->hidden;
    return tg_first_nonfinite(b->h, n) == n && (!b->c || tg_first_nonfinite(b->c, n) == n);
}

int charlm_trainer_reset_nonfinite(charlm_trainer *tr)
{
    int reset = 0;
    for (int s = 0; s < tr->shards; s++)
        if (!state_finite(&tr->train.state[s])) {
            tg_state_buf_zero(&tr->train.state[s]);
            reset++;
        }
    return reset;
}
