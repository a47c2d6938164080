/* The seq2seq program's training loop: train.h. */
#include "train.h"

#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>

#include "cli.h"
#include "model.h"
#include "model_io.h"
#include "tg_layers.h"

static const char *const prog = S2S_PROG;

typedef s2s_options options;
typedef s2s_id_set id_set;
typedef s2s_trainer trainer;

/* The loss of pairs idx[lo..hi) on tape t, weighted by its share of the
 * batch's target tokens, backpropagated. Returns the weighted loss. */
static double shard_step(trainer *tr, const s2s_model *m, tg_tape *t, const id_set *s,
                         const size_t *idx, int lo, int hi, long batch_tgt, tg_rng *drop)
{
    int B = hi - lo;
    if (B <= 0) return 0;
    const int **src = tg_tape_alloc(t, (size_t)B * sizeof *src);
    const int **tgt = tg_tape_alloc(t, (size_t)B * sizeof *tgt);
    int *sl = tg_tape_ints(t, (size_t)B), *tl = tg_tape_ints(t, (size_t)B);
    for (int i = 0; i < B; i++) {
        size_t k = idx[lo + i];
        src[i] = s->src[k], tgt[i] = s->tgt[k];
        sl[i] = s->src_len[k], tl[i] = s->tgt_len[k];
    }
    s2s_batch b;
    s2s_batch_make(&b, t, &m->cfg, B, src, sl, tgt, tl, 0, 0);
    tg_tensor *loss = s2s_loss_smoothed(t, m, &b, tr->o->label_smoothing,
                                        tr->o->dropout > 0 ? drop : NULL, NULL);
    tg_tensor *share = tg_scale(t, loss, (double)b.n_tgt / (double)batch_tgt);
    tg_backward(t, share);
    return share->data[0];
}

typedef struct shard_job {
    trainer *tr;
    const id_set *s;
    const size_t *idx;
    int B;
    long batch_tgt;
} shard_job;

static double run_shard(int shard, tg_tape *t, tg_params *params, void *ctx)
{
    (void)params; /* the worker's model views were built over it */
    shard_job *j = ctx;
    int S = j->tr->o->shards;
    tg_rng drop; /* per step and shard: the same whatever the thread count */
    tg_rng_seed(&drop, j->tr->o->seed * 0x9e3779b97f4a7c15ull + (uint64_t)j->tr->run.step * 256 +
                           (uint64_t)shard);
    return shard_step(j->tr, &j->tr->shard_model[shard], t, j->s, j->idx, j->B * shard / S,
                      j->B * (shard + 1) / S, j->batch_tgt, &drop);
}

/* One training step on pairs idx[0..B): forward and backward over the
 * shards, then the run's guard, clipping and update. */
static void train_step(trainer *tr, const id_set *s, const size_t *idx, int B)
{
    long batch_tgt = 0, tokens = 0;
    for (int i = 0; i < B; i++) {
        batch_tgt += s->tgt_len[idx[i]] + 1;
        tokens += s->src_len[idx[i]] + s->tgt_len[idx[i]];
    }
    double loss;
    tgx_run_begin_step(&tr->run);
    if (tr->workers) { /* tg_workers_run sets the master gradient */
        shard_job j = {tr, s, idx, B, batch_tgt};
        loss = tr->dist ? tg_dist_run(tr->dist, tr->workers, tr->o->threads, run_shard, &j)
                        : tg_workers_run(tr->workers, tr->o->threads, run_shard, &j);
    } else { /* backward adds into the parameters' gradients */
        tg_params_zero_grad(tr->m->params);
        tg_tape_reset(tr->tape);
        loss = shard_step(tr, tr->m, tr->tape, s, idx, 0, B, batch_tgt, &tr->rng);
    }
    tgx_run_end_step(&tr->run, loss, NAN, 1, (double)tokens);
}

/* --save keeps the best model by test BLEU: written when this evaluation
 * beats every earlier one of the run (a resume included), never replaced
 * by a worse one (train.h). */
void s2s_keep_best(trainer *tr, s2s_scores sc)
{
    const options *o = tr->o;
    char err[1024];
    if (!o->save || !tgx_run_keep_best(sc.bleu, &tr->best_bleu, 1)) return;
    tr->best_step = tr->run.step;
    tr->kept_here = 1;
    tgx_run_touch(&tr->run); /* the final checkpoint must hold the new best */
    if (!tgx_run_is_root(&tr->run)) return; /* the same model on every rank */
    tgx_kept_meta km; /* a resumed run compares against it (tgx_run_adopt_kept) */
    tgx_kept_meta_make(&km, &tr->run, "bleu", sc.bleu);
    if (s2s_save_with_pieces(o->save, tr->m, tr->opt, tr->vs, tr->vt, tr->tok, tr->pc, km.kv,
                             TGX_KEPT_KEYS, err, sizeof err) != 0)
        tg_cli_die(prog, "%s", err);
    printf("best BLEU %.2f at step %llu: saved %s\n", sc.bleu,
           (unsigned long long)tr->best_step, o->save);
}

s2s_scores s2s_evaluate_on_root(trainer *tr, const id_set *s, int beam)
{
    s2s_scores sc = {0, 0, 0};
    if (tgx_run_is_root(&tr->run))
        sc = s2s_evaluate(tr->tape, tr->m, tr->o, s, beam, tr->run.step > tr->run.start_step,
                          tr->out, tr->lens, tr->refs, tr->pc, tr->vt);
    if (tr->dist) tg_dist_broadcast(tr->dist, &sc, sizeof sc);
    return sc;
}

/* Greedy evaluation on the test set now (train.h). */
s2s_scores s2s_evaluate_now(trainer *tr, const char *why)
{
    tgx_run *run = &tr->run;
    tg_progress_done(&run->pg);
    s2s_scores sc = s2s_evaluate_on_root(tr, tr->test_set, 1);
    double tps = tgx_run_tokens_per_second(run), loss = tgx_run_mean_loss(run);
    /* no step applied since the last evaluation (all skipped, or none run):
     * no loss, "-" and an empty field, where it read as a loss of 0 */
    char shown[32] = "-", logged[32] = "";
    if (!isnan(loss)) {
        snprintf(shown, sizeof shown, "%.4f", loss);
        snprintf(logged, sizeof logged, "%.6f", loss);
    }
    if (tgx_run_is_root(run))
        printf("epoch %d: loss %s  test exact %.4f  bleu %.2f  chrf %.2f  %.0f tok/s  "
               "%.1fs%s%s%s\n", (int)tr->epoch, shown, sc.exact, sc.bleu, sc.chrf, tps,
               run->train_seconds, why ? "  (" : "", why ? why : "", why ? ")" : "");
    tg_csv_row(&run->csv, "%d,%llu,%s,%.6f,%.4f,%.4f,%.1f,%.3f", (int)tr->epoch,
               (unsigned long long)run->step, logged, sc.exact, sc.bleu, sc.chrf, tps,
               run->train_seconds);
    s2s_keep_best(tr, sc);
    fflush(stdout);
    tr->last_eval_step = run->step;
    tr->last = sc;
    return sc;
}

/* The batch order of the epoch in progress. A new epoch draws it from the
 * data generator (keeping the generator's state before, for checkpoints);
 * an epoch resumed in the middle draws it again from that saved state. */
static void begin_epoch(trainer *tr, s2s_batcher *bt, const id_set *s)
{
    double t0 = tg_clock_seconds();
    if (tr->batch == 0) {
        tr->order_rng = tr->rng;
        s2s_batcher_epoch(bt, s, &tr->rng);
        tgx_run_reset_loss(&tr->run);
    } else {
        tg_rng r = tr->order_rng;
        s2s_batcher_epoch(bt, s, &r);
    }
    tgx_run_add_time(&tr->run, tg_clock_seconds() - t0);
}

/* The rest of the epoch in progress, or until a stop; returns the reason
 * of a stop (TGX_GOING: the epoch is done). */
static tgx_stop train_epoch(trainer *tr, const s2s_batcher *bt, const id_set *s)
{
    tgx_run *run = &tr->run;
    tgx_stop stop = TGX_GOING;
    for (size_t k = (size_t)tr->batch; k < bt->nb && !stop; k++) {
        size_t first = bt->starts[k];
        int B = (int)(first + bt->B <= bt->n ? bt->B : bt->n - first);
        train_step(tr, s, bt->order + first, B);
        tr->batch = k + 1;
        if (tgx_run_eval_due(run, (uint64_t)tr->o->eval_every)) /* before its checkpoint */
            s2s_evaluate_now(tr, "--eval-every");
        double loss = tgx_run_mean_loss(run);
        char of[24] = ""; /* "/3"; nothing when --seconds or --steps is the limit */
        if (tr->o->epochs < S2S_EPOCHS_UNLIMITED) snprintf(of, sizeof of, "/%d", tr->o->epochs);
        tg_progress_update(&run->pg, 0, "epoch %d%s  batch %zu/%zu  loss %.4f  %.0f tok/s  %.0fs",
                           (int)tr->epoch, of, k + 1, bt->nb, isnan(loss) ? 0 : loss,
                           tgx_run_tokens_per_second(run), run->train_seconds);
        tgx_run_periodic_checkpoint(run);
        stop = tgx_run_stop(run);
    }
    return stop;
}

/* Runs the epochs from the one in progress (or until --steps, --seconds or
 * Ctrl-C), evaluating greedily after each; *evaluated says whether any was. */
static s2s_scores train(trainer *tr, const id_set *train_set, int *evaluated)
{
    const options *o = tr->o;
    tgx_run *run = &tr->run;
    s2s_batcher bt;
    s2s_scores sc = {0, 0, 0};
    if (s2s_batcher_init(&bt, train_set->n, o->batch) != 0) tg_cli_die(prog, "out of memory");
    tgx_stop stop = TGX_GOING;
    while (!stop && tr->epoch <= (uint64_t)o->epochs) {
        begin_epoch(tr, &bt, train_set);
        stop = train_epoch(tr, &bt, train_set);
        /* the epoch's evaluation, unless --eval-every just ran one */
        sc = tr->last_eval_step == run->step ? tr->last : s2s_evaluate_now(tr, tgx_stop_name(stop));
        *evaluated = 1;
        if (tr->batch == bt.nb) { /* done: a checkpoint from here on starts the next one */
            tr->epoch++;
            tr->batch = 0;
            tgx_run_touch(run);
        }
        /* the evaluation's log row failed, or a Ctrl-C came during it: stop
         * here, not a step into the next epoch */
        if (!stop) stop = tgx_run_stop(run);
    }
    s2s_batcher_free(&bt);
    return sc;
}

/* Whether there is nothing (more) to train; says so after a resume. */
static int nothing_to_train(const trainer *tr)
{
    const options *o = tr->o;
    tgx_stop stop = tgx_run_stop(&tr->run);
    if (o->epochs > 0 && tr->epoch > (uint64_t)o->epochs)
        fprintf(stderr, "%s: already past epoch %d of --epochs %d: nothing to train\n", prog,
                o->epochs, o->epochs);
    else if (o->epochs > 0 && stop)
        tgx_run_say_nothing_left(&tr->run);
    return o->epochs == 0 || tr->epoch > (uint64_t)o->epochs || stop;
}

/* Training, then the final checkpoint (train.h). */
s2s_scores s2s_run_training(trainer *tr, const id_set *train_s, int *evaluated)
{
    s2s_scores sc = {0, 0, 0};
    *evaluated = 0;
    tgx_run_start(&tr->run);
    if (!nothing_to_train(tr)) sc = train(tr, train_s, evaluated);
    tgx_run_finish(&tr->run);
    return sc;
}
