/* seq2seq: an encoder-decoder translation model trained with teacher forcing.
 *
 * With no --train it trains on the built-in English->Korean corpus
 * (corpus_enko.h) and s2s_scores held-out subject-verb-object combinations;
 * --train/--test read any "source<TAB>target" file. --translate translates
 * sentences (arguments or stdin lines) with a --load'ed model.
 * --checkpoint/--every write training checkpoints that --resume continues
 * exactly (resume.c, trainckpt.h). The loop's bookkeeping (stops, guard,
 * checkpoints, log) is the training run's (trainrun.h); the command line is
 * in options.c, the batches in batches.c, the training loop in train.c. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "bleu.h"
#include "cli.h"
#include "decode.h"
#include "model.h"
#include "model_io.h"
#include "pairs.h"
#include "program.h"
#include "tapegrad.h"
#include "tg_checkpoint.h"
#include "tg_layers.h"
#include "tg_optim.h"
#include "train.h"
#include "trainrun.h"

static const char *const prog = S2S_PROG;

typedef s2s_options options;
typedef s2s_id_set id_set;
typedef s2s_trainer trainer;

/* ------------------------------------------------------------------ main */

/* Data-parallel training: one tape and one parameter replica per shard,
 * with the model's tensors looked up by name on each replica. */
static void start_workers(const options *o, trainer *tr, int batch_rows, int max_src,
                          int max_tgt)
{
    int rows = (batch_rows + o->shards - 1) / o->shards;
    size_t arena = s2s_train_arena(tr->m, o, rows, max_src, max_tgt);
    tr->workers = tg_workers_new(tr->m->params, o->shards, arena);
    tr->shard_model = calloc((size_t)o->shards, sizeof *tr->shard_model);
    if (!tr->workers || !tr->shard_model) tg_cli_die(prog, "out of memory (%d shards)", o->shards);
    for (int s = 0; s < o->shards; s++)
        if (s2s_model_init_on(&tr->shard_model[s], &tr->m->cfg,
                              tg_workers_params(tr->workers, s), o->seed) != 0)
            tg_cli_die(prog, "out of memory (shard %d)", s);
}

/* Arena use against capacity: how much margin the size estimates leave. */
static void report_arenas(trainer *tr)
{
    tg_tape *t = tr->workers ? tg_workers_tape(tr->workers, 0) : tr->tape;
    fprintf(stderr, "%s: arena high water: training %.1f of %.1f MiB, decoding %.1f of %.1f MiB\n",
            prog, (double)tg_tape_arena_high_water(t) / 1048576.0,
            (double)tg_tape_arena_capacity(t) / 1048576.0,
            (double)tg_tape_arena_high_water(tr->tape) / 1048576.0,
            (double)tg_tape_arena_capacity(tr->tape) / 1048576.0);
}

/* The arena of the evaluation tape, which also trains with one shard:
 * measured (arenas.c). */
static size_t arena_for(const options *o, const s2s_model *m, int batch_rows, size_t n_test,
                        int max_src, int max_tgt)
{
    size_t train = o->shards > 1 ? 0 : s2s_train_arena(m, o, batch_rows, max_src, max_tgt);
    int sentences = n_test < (size_t)o->eval_batch ? (int)n_test : o->eval_batch;
    size_t dec = s2s_decode_arena(m, o, sentences > 0 ? sentences : 1, max_src);
    return train > dec ? train : dec;
}

/* With --save the run ends on the kept model: when a later evaluation was
 * worse than the best, or the best was kept by the run before a resume
 * (tgx_run_adopt_kept: its step may be this run's last), the best is read
 * back from --save (every rank: the file was written at that earlier
 * evaluation) for the final scores and examples. 1 when it was. A file
 * removed since is said, and the final model is kept instead (best_bleu
 * -1: final_scores saves it), as charlm does; the run had ended on exit 1. */
static int restore_kept(trainer *tr)
{
    const options *o = tr->o;
    char err[1024];
    struct stat st;
    if (!o->save || tr->best_bleu < 0 || (tr->kept_here && tr->best_step == tr->last_eval_step))
        return 0;
    if (stat(o->save, &st) != 0) {
        if (tgx_run_is_root(&tr->run))
            fprintf(stderr, "%s: %s, with the kept model (step %llu), is gone: keeping the final "
                    "one\n", prog, o->save, (unsigned long long)tr->best_step);
        tr->best_bleu = -1;
        return 0;
    }
    tg_checkpoint *ck = tg_checkpoint_open(o->save, err, sizeof err);
    int rc = ck ? tg_checkpoint_load_params(ck, tr->m->params, err, sizeof err) : -1;
    tg_checkpoint_close(ck);
    if (rc != 0) tg_cli_die(prog, "reading back the kept model: %s", err);
    if (tgx_run_is_root(&tr->run))
        printf("final scores of the kept model: best BLEU %.2f at step %llu (%s)\n",
               tr->best_bleu, (unsigned long long)tr->best_step, o->save);
    return 1;
}

/* Evaluates after training: greedy s2s_scores come from the last epoch; with
 * --beam K (or when no epoch was evaluated, or the kept model was read
 * back) the test set is decoded again. */
static s2s_scores final_scores(trainer *tr, s2s_scores last, int evaluated)
{
    const options *o = tr->o;
    const id_set *test_s = tr->test_set;
    if (restore_kept(tr)) evaluated = 0;
    s2s_scores sc = last;
    if (!evaluated || o->beam > 1) {
        int root = tgx_run_is_root(&tr->run);
        if (o->beam > 1 && evaluated && root)
            printf("greedy: exact %.4f  bleu %.2f  chrf %.2f\n", last.exact, last.bleu, last.chrf);
        double t0 = tg_clock_seconds();
        sc = s2s_evaluate_on_root(tr, test_s, o->beam);
        if (root)
            printf("%s: exact %.4f  bleu %.2f  chrf %.2f  (%.1fs to decode %zu sentences)\n",
                   o->beam > 1 ? "beam" : "greedy", sc.exact, sc.bleu, sc.chrf,
                   tg_clock_seconds() - t0, test_s->n);
    }
    /* nothing was kept: a --load'ed or --import-torch'ed model only
     * evaluated (--epochs 0, or no training flag), where --save was
     * silently not written, or the kept file is gone (restore_kept); the
     * model evaluated is the best of the run */
    if (tr->best_bleu < 0) s2s_keep_best(tr, sc);
    return sc;
}

/* ------------------------------------------------------------------ the run */

/* The training run over the model, and every piece of state the loop
 * reads, for the guard, --checkpoint and --resume; the workers' replicas
 * share the master's values. */
static void start_run(trainer *tr, const s2s_vocab *vs, const s2s_vocab *vt,
                      const s2s_pairs *train_p, const s2s_pieces *pc)
{
    const options *o = tr->o;
    tgx_run_config rc = TGX_RUN_CONFIG_FROM(prog, tr->m->params, tr->opt, o);
    rc.dist = tr->dist;
    rc.workers = tr->workers; /* the norm of the gradient they set */
    tgx_run_init(&tr->run, &rc);
    tg_trainckpt *ck = tgx_run_ckpt(&tr->run);
    if (s2s_register_config(ck, o, &tr->m->cfg, vs, vt, train_p, pc) != 0 ||
        tg_trainckpt_rng(ck, "data", &tr->rng) != 0 ||
        tg_trainckpt_rng(ck, "order", &tr->order_rng) != 0 ||
        tg_trainckpt_u64(ck, "epoch", &tr->epoch) != 0 ||
        tg_trainckpt_u64(ck, "batch", &tr->batch) != 0 ||
        tg_trainckpt_f64(ck, "best_bleu", &tr->best_bleu) != 0 ||
        tg_trainckpt_u64(ck, "best_step", &tr->best_step) != 0)
        tg_cli_die(prog, "out of memory");
    tgx_run_register_loss(&tr->run, "epoch_loss", "epoch_losses", NULL, NULL);
}

/* After --resume loaded the run (tgx_run_resume): what the file cannot
 * check, that the position lies inside an epoch; exits 1 naming the file. */
static void check_resumed(const trainer *tr, uint64_t nb)
{
    const options *o = tr->o;
    if (tr->epoch < 1)
        tg_cli_die(prog, "%s: metadata 'u64.epoch' is 0 (epochs count from 1)", o->resume);
    if (tr->batch > nb)
        tg_cli_die(prog, "%s: metadata 'u64.batch' is %llu, beyond the %llu batches of an epoch",
                   o->resume, (unsigned long long)tr->batch, (unsigned long long)nb);
}

/* --train on a --load'ed model: how much of it the model's vocabularies
 * lack (it trains as <unk>; a corpus of another language would train on
 * nothing else, and said nothing). */
static void say_unknown(const s2s_id_set *train, const char *file)
{
    double src = s2s_unknown_share(train, 0), tgt = s2s_unknown_share(train, 1);
    if (src > 0 || tgt > 0)
        fprintf(stderr, "%s: %s: %.1f%% of the source and %.1f%% of the target tokens are not in "
                "the loaded model's vocabularies: they train as <unk>\n", prog, file, 100 * src,
                100 * tgt);
}

/* Refuses (exit 1), before SentencePiece takes it, the memory of learning
 * the pieces when it would not fit beside the pairs: the kernel would kill
 * the run half-way through, not refuse it. */
static void check_pieces_memory(const options *o, const s2s_pairs *train_raw,
                                const s2s_pairs *test_raw)
{
    size_t sample = (size_t)o->subword_sample, pairs = train_raw->n;
    size_t count = sample > 0 && sample < pairs ? sample : pairs;
    char what[96], how[128];
    snprintf(what, sizeof what, "learning the pieces from %zu pairs", count);
    snprintf(how, sizeof how, "the pairs, and SentencePiece's trainer at about %d bytes a "
             "character of a side", S2S_PIECES_BYTES_PER_CHAR);
    size_t need = s2s_pieces_train_bytes(train_raw, sample) + s2s_pairs_bytes(train_raw) +
                  s2s_pairs_bytes(test_raw);
    tgx_memory_check_data(prog, what, need, how, "lower --subword-sample, or --subwords 0 for words");
}

/* Subword mode (pieces.h): the piece models (--load's, --resume's, or
 * learned now on the training text), the vocabularies they give, and the
 * pairs as pieces (dropping, and counting, pairs over --max-tokens pieces;
 * raw keeps the text of the pairs kept). */
static void prepare_pieces(const options *o, int loaded, s2s_pieces *pc, s2s_pairs *train_raw,
                           s2s_pairs *test_raw, s2s_pairs *train_pc, s2s_pairs *test_pc,
                           s2s_vocab *vs, s2s_vocab *vt, char *info, size_t infolen)
{
    char err[1024], note[512];
    double t0 = tg_clock_seconds();
    if (!loaded && o->resume) {
        if (s2s_resume_pieces(o->resume, pc, err, sizeof err) != 0) tg_cli_die(prog, "%s", err);
    } else if (!loaded) {
        check_pieces_memory(o, train_raw, test_raw);
        if (s2s_pieces_train(pc, train_raw, o->subwords, (size_t)o->subword_sample, note,
                             sizeof note, err, sizeof err) != 0)
            tg_cli_die(prog, "%s", err);
        if (note[0]) fprintf(stderr, "%s: %s\n", prog, note);
    }
    for (int side = 0; side < 2 && !loaded; side++) {
        int rc = s2s_pieces_vocab(side ? pc->tgt : pc->src, side ? vt : vs);
        if (rc < 0) tg_cli_die(prog, "out of memory building the vocabularies");
        if (rc > 0)
            tg_cli_die(prog, "the %s piece model%s%s has a piece repeated, empty or holding "
                       "white space", side ? "target" : "source", o->resume ? " of " : "",
                       o->resume ? o->resume : "");
    }
    size_t skipped[2];
    const char *files[2] = {o->train ? o->train : "training pairs", o->test ? o->test : "test pairs"};
    if (s2s_pieces_encode_pairs(pc, files[0], train_raw, train_pc, o->max_tokens, &skipped[0],
                                err, sizeof err) != 0 ||
        s2s_pieces_encode_pairs(pc, o->test || !o->train ? files[1] : o->train, test_raw, test_pc,
                                o->max_tokens, &skipped[1], err, sizeof err) != 0)
        tg_cli_die(prog, "%s", err);
    for (int i = 0; i < 2; i++)
        if (skipped[i])
            fprintf(stderr, "%s: %s: skipped %zu pairs longer than %d pieces (--max-tokens)\n",
                    prog, files[i], skipped[i], o->max_tokens);
    for (int i = 0; i < 2; i++) /* as the word reader's "no test pairs": nothing to score on */
        if ((i ? test_pc : train_pc)->n == 0)
            tg_cli_die(prog, "%s: no sentence pairs within --max-tokens %d pieces", files[i],
                       o->max_tokens);
    /* said after a resume's checks (a refusal is the only line on stderr) */
    char from[96] = "learned";
    if (!loaded && !o->resume && o->subword_sample > 0 && train_raw->n > (size_t)o->subword_sample)
        snprintf(from, sizeof from, "learned from %d of the %zu training pairs (--subword-sample)",
                 o->subword_sample, train_raw->n);
    snprintf(info, infolen, "%s: subwords: %d source and %d target pieces (SentencePiece "
             "unigram, one model per side; %s in %.1fs)\n", prog, s2s_subword_size(pc->src),
             s2s_subword_size(pc->tgt),
             loaded ? (o->import_torch ? "from --import-torch" : "from --load")
                    : o->resume ? "from --resume" : from,
             tg_clock_seconds() - t0);
}

/* Training and evaluation: data, vocabularies (or the loaded ones), model,
 * epochs, scores, examples, the result line. pairs_from: the checkpoint
 * that gave the pair files, or NULL. */
static int train_main(trainer *tr, const char *pairs_from, s2s_vocab *vs, s2s_vocab *vt,
                      s2s_tokenize_options *tok, s2s_pieces *pc)
{
    const options *o = tr->o;
    s2s_model *m = tr->m;
    char err[1024], pieces_info[256] = "";
    /* raw: the pairs as read (text for subwords, tokens for words); train_p,
     * test_p: as the model reads them (pieces or words) */
    s2s_pairs train_raw, test_raw, train_pc, test_pc;
    int subwords = o->load ? s2s_pieces_on(pc) : o->subwords > 0;
    if (!o->load) tok->split_punct = !subwords; /* SentencePiece reads the text as written */
    s2s_load_pairs(o, pairs_from, subwords, &train_raw, &test_raw, tok);
    if (o->write_corpus) s2s_write_corpus(o->write_corpus, &train_raw, &test_raw);
    if (test_raw.n == 0) tg_cli_die(prog, "no test pairs (use --test or a larger --valid-frac)");
    if (subwords)
        prepare_pieces(o, o->load != NULL, pc, &train_raw, &test_raw, &train_pc, &test_pc, vs,
                       vt, pieces_info, sizeof pieces_info);
    const s2s_pairs *train_p = subwords ? &train_pc : &train_raw;
    const s2s_pairs *test_p = subwords ? &test_pc : &test_raw;
    if (!o->load) {
        if (!subwords && (s2s_vocab_build(vs, train_p->src, train_p->n, o->min_count) != 0 ||
                          s2s_vocab_build(vt, train_p->tgt, train_p->n, o->min_count) != 0))
            tg_cli_die(prog, "out of memory building the vocabularies");
        s2s_build_model(o, m, vs, vt);
    }
    id_set train_s, test_s;
    if (s2s_encode_set(&train_s, train_p, vs, vt, S2S_UNK) != 0 ||
        s2s_encode_set(&test_s, test_p, vs, vt, -1) != 0)
        tg_cli_die(prog, "out of memory encoding the pairs");
    tr->test_set = &test_s;
    tr->refs = &test_raw;
    tr->pc = pc;
    tr->vs = vs;
    tr->vt = vt;
    tr->tok = tok;

    int max_src = train_s.max_src > test_s.max_src ? train_s.max_src : test_s.max_src;
    /* a batch holds at most every training pair: --batch 65536 over 3 pairs
     * measures and takes a step of 3 */
    int batch_rows = train_s.n < (size_t)o->batch ? (int)train_s.n : o->batch;
    tr->tape = tg_tape_new(arena_for(o, m, batch_rows, test_s.n, max_src, train_s.max_tgt));
    if (!tr->tape) tg_cli_die(prog, "out of memory (arena)");
    /* all the threads, with shards too: the shards train on their own tapes,
     * and this one decodes the evaluations (one thread there left the
     * other idle: de-en greedy 1.1 s, beam 5 4.2 s at 1 and at 2 threads) */
    tg_tape_set_threads(tr->tape, o->threads);
    if (o->shards > 1) start_workers(o, tr, batch_rows, max_src, train_s.max_tgt);
    if (tr->dist && !tr->workers && tg_dist_size(tr->dist) > 1)
        tg_cli_die_usage(prog, "%d ranks need --shards a multiple of %d (each rank runs its "
                         "shards)", tg_dist_size(tr->dist), tg_dist_size(tr->dist));
    if (tr->dist && tr->workers && tg_dist_attach(tr->dist, tr->workers, err, sizeof err) != 0)
        tg_cli_die_usage(prog, "%s", err);
    if (!tr->workers) tr->dist = NULL; /* one rank, one tape: nothing to reduce */
    tr->opt = s2s_make_optim(o, m);
    size_t arenas = tg_tape_arena_capacity(tr->tape);
    for (int s = 0; tr->workers && s < o->shards; s++)
        arenas += tg_tape_arena_capacity(tg_workers_tape(tr->workers, s));
    size_t data = s2s_pairs_bytes(&train_raw) + s2s_pairs_bytes(&test_raw) +
                  s2s_id_set_bytes(&train_s) + s2s_id_set_bytes(&test_s);
    if (subwords) data += s2s_pairs_bytes(&train_pc) + s2s_pairs_bytes(&test_pc);
    s2s_check_memory(m, o, tr->opt, arenas, data);
    if (o->load && !o->import_torch && s2s_load_optim(o->load, tr->opt, err, sizeof err) != 0)
        fprintf(stderr, "%s: optimizer state not restored (%s); starting it fresh\n", prog, err);
    start_run(tr, vs, vt, train_p, pc);
    uint64_t nb = (train_s.n + (size_t)o->batch - 1) / (size_t)o->batch; /* batches an epoch */
    tgx_run_resume(&tr->run); /* a refusal is the only line on stderr */
    if (o->resume) check_resumed(tr, nb);
    if (o->resume && o->save) /* kept after the checkpoint by the run that wrote it */
        tgx_run_adopt_kept(&tr->run, o->save, "bleu", 1, &tr->best_bleu, &tr->best_step);
    fputs(pieces_info, stderr);
    fprintf(stderr,
            "%s: %zu training pairs, %zu test pairs; vocabulary %d source, %d target; %s %dx%d, "
            "embed %d, attention %s (%zu parameters)\n",
            prog, train_p->n, test_p->n, vs->n, vt->n, m->cfg.cell->name, m->cfg.layers,
            m->cfg.hidden, m->cfg.embed, tg_attn_kind_name(m->cfg.attention),
            tg_params_numel(m->params));
    if (o->load && o->train) /* another corpus on a model's vocabularies: words it lacks */
        say_unknown(&train_s, o->train);
    if (o->resume)
        fprintf(stderr, "%s: resumed %s at step %llu (epoch %llu, batch %llu of %llu)\n", prog,
                o->resume, (unsigned long long)tr->run.step, (unsigned long long)tr->epoch,
                (unsigned long long)tr->batch, (unsigned long long)nb);

    tgx_run_open_log(&tr->run,
                     "epoch,step,train_loss,test_exact,test_bleu,test_chrf,tokens_per_s,seconds");
    int *lens, **out = s2s_alloc_outputs(test_s.n, o->max_len, &lens), evaluated;
    tr->out = out;
    tr->lens = lens;
    s2s_scores sc = s2s_run_training(tr, &train_s, &evaluated);
    sc = final_scores(tr, sc, evaluated);
    if (tgx_run_is_root(&tr->run)) s2s_export_torch(o, m, vs, vt, tok, pc); /* --save's model */
    if (tgx_run_is_root(&tr->run)) { /* rank 0 alone decoded the test set */
        s2s_show_examples(o, &test_raw, vt, pc, out, lens);
        s2s_attention_map_show(o, tr->tape, m, vs, vt, &test_s);
    }
    if (tg_csv_close(&tr->run.csv, err, sizeof err) != 0) tg_cli_die(prog, "%s", err);
    if (tgx_run_is_root(&tr->run)) report_arenas(tr);
    double tps = tgx_run_tokens_per_second(&tr->run);
    if (tgx_run_is_root(&tr->run) && o->save && tr->best_bleu >= 0) /* the kept model's */
        tg_result("exact_match=%.4f bleu=%.2f test_pairs=%zu tokens_per_s=%.0f seconds=%.1f "
                  "chrf=%.2f best_bleu=%.2f best_step=%llu", sc.exact, sc.bleu, test_s.n, tps,
                  tr->run.train_seconds, sc.chrf, tr->best_bleu,
                  (unsigned long long)tr->best_step);
    else if (tgx_run_is_root(&tr->run))
        tg_result("exact_match=%.4f bleu=%.2f test_pairs=%zu tokens_per_s=%.0f seconds=%.1f "
                  "chrf=%.2f", sc.exact, sc.bleu, test_s.n, tps, tr->run.train_seconds, sc.chrf);

    tgx_run_free(&tr->run);
    s2s_free_outputs(out, test_s.n, lens);
    s2s_free_set(&train_s);
    s2s_free_set(&test_s);
    s2s_pairs_free(&train_raw);
    s2s_pairs_free(&test_raw);
    if (subwords) {
        s2s_pairs_free(&train_pc);
        s2s_pairs_free(&test_pc);
    }
    s2s_pieces_free(pc);
    tg_optim_free(tr->opt);
    tg_workers_free(tr->workers);
    free(tr->shard_model);
    tg_tape_free(tr->tape);
    s2s_model_free(m);
    s2s_vocab_free(vs);
    s2s_vocab_free(vt);
    return 0;
}

/* Before any work: no output is another output's or an input's file, and
 * a training run's outputs can be written. */
static void check_files(const options *o)
{
    tg_run_files files = s2s_run_files(o);
    if (o->translate) { /* it writes only --attention-map and --export-torch */
        tg_run_files_check_distinct(prog, &files);
        return;
    }
    char train[S2S_PATH_MAX], test[S2S_PATH_MAX], err[S2S_PATH_MAX + 256];
    if (o->write_corpus) {
        s2s_write_corpus_paths(o->write_corpus, train, test);
        tg_run_files_add(files.writes, "--write-corpus", train);
        tg_run_files_add(files.writes, "--write-corpus", test);
    }
    tg_trainckpt_check_outputs(prog, &files);
    if (o->write_corpus && (tg_cli_check_output("--write-corpus", train, 0, err, sizeof err) != 0 ||
                            tg_cli_check_output("--write-corpus", test, 0, err, sizeof err) != 0))
        tg_cli_die(prog, "%s", err);
}

int main(int argc, char **argv)
{
    tg_cli_adopt_blas_core(argv); /* first: it may start the program again */
    options o;
    tg_cmdline cl;
    tg_inherited inherited;
    int first = argc;
    s2s_parse_options(argc, argv, &o, &cl, &inherited, &first);
    if (o.translate) tg_cli_one_process(prog, "--translate");
    check_files(&o);
    tg_blas_set_threads(1); /* our threads are OpenMP's: BLAS pools never nest */

    s2s_tokenize_options tok = {o.lowercase, 1};
    s2s_vocab vs, vt;
    s2s_pieces pc = {NULL, NULL};
    s2s_model m;
    trainer tr;
    memset(&tr, 0, sizeof tr);
    tr.o = &o;
    tr.m = &m;
    tr.epoch = 1;
    tr.best_bleu = -1;
    tr.last_eval_step = UINT64_MAX;
    tg_dist *dist = o.translate ? NULL : tgx_dist_init(prog, &argc, &argv); /* NULL: no mpirun */
    tr.dist = dist;
    tg_rng_seed(&tr.rng, o.seed ^ 0xba7c4ull);
    if (o.load) { /* the model decides words or pieces, and so the length defaults */
        s2s_load_model(&o, &cl, &m, &vs, &vt, &tok, &pc);
        s2s_take_dropout(&o, &cl, &m);
        o.subwords = s2s_pieces_on(&pc) ? s2s_subword_size(pc.src) : 0;
        s2s_resolve_defaults(&o);
    }
    /* the pair files, when --resume took them from the checkpoint */
    const char *pairs_from = tg_inherited_has(&inherited, "train") ? o.resume : NULL;
    int rc = o.translate ? s2s_translate_main(&o, &m, argc, argv, first, &vs, &vt, &tok, &pc)
                         : train_main(&tr, pairs_from, &vs, &vt, &tok, &pc);
    tg_inherited_free(&inherited);
    tg_dist_finalize(dist);
    return rc;
}
