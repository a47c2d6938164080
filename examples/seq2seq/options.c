/* seq2seq's command line: defaults, the flag table, the checks between
 * flags, and --resume's inherited settings (resume.c). */
#include <stdio.h>
#include <string.h>

#include "attnmap.h"
#include "decode.h"
#include "pieces.h"
#include "program.h"
#include "torch_io.h"
#include "trainrun.h"
#include "tg_layers.h"
#include "tg_attention.h"

static s2s_options defaults(void)
{
    s2s_options o;
    memset(&o, 0, sizeof o);
    o.valid_frac = 0.1;
    o.pairs = 20000;
    o.test_pairs = 1000;
    o.corpus_seed = 1;
    o.cell = "lstm";
    o.hidden = 256;
    o.embed = 0;          /* resolved: 256 with --train, 64 built-in */
    o.layers = 1;
    o.feed_context = 1;
    o.reverse = 0;
    o.attention = "auto"; /* resolved: general with --train, none built-in */
    o.dropout = -1; /* resolved: S2S_DROPOUT_TRAIN with --train, 0 built-in */
    o.batch = 64;
    o.lr = 3e-3;
    o.optim = "adam";
    o.clip = 5;
    o.epochs = 3;
    o.seconds = 150;
    o.every = 100;
    o.beam = 1;
    o.max_len = 0; /* resolved: S2S_MAX_TOKENS words, S2S_MAX_PIECES pieces */
    o.len_alpha = 1.0;
    o.threads = 0; /* every core */
    o.shards = 0; /* max(2, --threads) */
    o.seed = 1;
    o.min_count = 1;
    o.max_tokens = 0; /* resolved like max_len */
    o.subwords = -1;  /* resolved: S2S_SUBWORDS_DEFAULT with --train, 0 built-in */
    o.subword_sample = S2S_SUBWORD_SAMPLE_DEFAULT;
    o.show = 5;
    o.eval_batch = 64; /* 256: de-en greedy 2.7 s, beam 5 11.3 s; 64: 1.9, 9.2 (README) */
    return o;
}

/* The flag table over o, into c->flags. */
static void make_flags(s2s_options *o, tg_cmdline *c)
{
    static char cells[64], attns[64];
    snprintf(cells, sizeof cells, "%s", tg_cell_kind_names());
    snprintf(attns, sizeof attns, "auto,%s", tg_attn_kind_names());
    const tg_flag flags[] = {
        {"train", TG_STR, &o->train, "training pairs, source<TAB>target per line; none: the built-in English->Korean corpus", 0, 0, NULL},
        {"test", TG_STR, &o->test, "test pairs; none: the built-in held-out set, or --valid-frac of --train", 0, 0, NULL},
        {"valid-frac", TG_DOUBLE, &o->valid_frac, "share of --train held out for testing when no --test", 0, 0.9, NULL},
        {"pairs", TG_INT, &o->pairs, "built-in corpus: training pairs", 1, 10000000, NULL},
        {"test-pairs", TG_INT, &o->test_pairs, "built-in corpus: held-out test pairs", 1, 100000, NULL},
        {"corpus-seed", TG_U64, &o->corpus_seed, "built-in corpus: generator seed", 0, 0, NULL},
        {"write-corpus", TG_STR, &o->write_corpus, "write the data as DIR/train.tsv and DIR/test.tsv", 0, 0, NULL},
        {"cell", TG_STR, &o->cell, "recurrent cell of encoder and decoder", 0, 0, cells},
        {"hidden", TG_INT, &o->hidden, "hidden units per layer", 1, S2S_MAX_WIDTH, NULL},
        {"embed", TG_INT, &o->embed, "embedding size (0: 256 with --train, 64 for the built-in corpus)", 0, S2S_MAX_WIDTH, NULL},
        {"layers", TG_INT, &o->layers, "recurrent layers (encoder and decoder each)", 1, TG_MAX_LAYERS, NULL},
        {"feed-context", TG_BOOL, &o->feed_context, "give every decoder step the encoder's final h", 0, 0, NULL},
        {"reverse", TG_BOOL, &o->reverse, "read the source backwards", 0, 0, NULL},
        {"attention", TG_STR, &o->attention, "decoder attention over the encoder's outputs, with input feeding (replaces --feed-context); auto: general with --train, none for the built-in corpus", 0, 0, attns},
        {"attention-map", TG_STR, &o->attention_map, "write the attention weights of the --show test sentences (or of --translate's) to FILE as SVG (greedy decode)", 0, 0, NULL},
        {"bidirectional", TG_BOOL, &o->bidirectional, "bidirectional encoder, --hidden/2 units per direction (--hidden even)", 0, 0, NULL},
        {"dropout", TG_DOUBLE, &o->dropout, "dropout on embeddings, between layers and before the output (default 0.3 with --train, 0 for the built-in corpus; a --load'ed model's own)", 0, TG_CLI_DROPOUT_MAX, NULL},
        {"label-smoothing", TG_DOUBLE, &o->label_smoothing, "label smoothing of the training loss: each target is (1-X) its word + X spread over the vocabulary, as PyTorch's cross_entropy(label_smoothing=X)", 0, 0.9, NULL},
        {"batch", TG_INT, &o->batch, "sentence pairs per training step", 1, 65536, NULL},
        {"lr", TG_DOUBLE, &o->lr, "learning rate", 0, 10, NULL},
        {"optim", TG_STR, &o->optim, "optimizer", 0, 0, TGX_OPTIM_CHOICES},
        {"clip", TG_DOUBLE, &o->clip, "clip the gradient's global norm (0: off)", 0, 1e9, NULL},
        {"epochs", TG_INT, &o->epochs, "training epochs, counted from the run's start (0: evaluate/translate only; when only --seconds or --steps is given, they alone set the limit)", 0, S2S_EPOCHS_UNLIMITED, NULL},
        {"steps", TG_INT, &o->steps, "stop training after this many steps, counted from the run's start (0: no limit)", 0, 1 << 30, NULL},
        {"seconds", TG_DOUBLE, &o->seconds, "stop training after this many seconds, then evaluate (0: no limit)", 0, 1e9, NULL},
        {"beam", TG_INT, &o->beam, "beam size for the final evaluation and --translate (1: greedy)", 1, S2S_BEAM_MAX, NULL},
        {"len-alpha", TG_DOUBLE, &o->len_alpha, "beam length normalisation: score = log p / len^alpha", 0, 5, NULL},
        {"max-len", TG_INT, &o->max_len, "longest output in tokens (words or pieces; 0: 60 words, 200 pieces)", 0, 1000, NULL},
        {"max-tokens", TG_INT, &o->max_tokens, "skip (and count) pairs with a side longer than this many tokens (words or pieces; 0: 60 words, 200 pieces)", 0, 10000, NULL},
        {"subwords", TG_INT, &o->subwords, "SentencePiece pieces per side, learned on --train (0: word vocabularies; default 8000 with --train, 0 for the built-in corpus)", 0, S2S_SUBWORD_MAX, NULL},
        {"subword-sample", TG_INT, &o->subword_sample, "learn the pieces from at most this many pairs of --train, drawn at random (a fixed seed) from all of it (0: every pair)", 0, S2S_SUBWORD_SAMPLE_MAX, NULL},
        {"eval-every", TG_INT, &o->eval_every, "evaluate on the test set every N steps too (BLEU, chrF in the log; --save keeps the best model); 0: after each epoch only", 0, 1 << 30, NULL},
        {"min-count", TG_INT, &o->min_count, "words seen fewer times become <unk>", 1, 1000000, NULL},
        {"lowercase", TG_BOOL, &o->lowercase, "lowercase --train/--test text", 0, 0, NULL},
        {"threads", TG_INT, &o->threads, TGX_HELP_THREADS, 0, 1024, NULL},
        {"shards", TG_INT, &o->shards, TGX_SHARDS_HELP, 0, S2S_MAX_SHARDS, NULL},
        {"seed", TG_U64, &o->seed, "seed for initialisation and batch order", 0, 0, NULL},
        {"save", TG_STR, &o->save, TGX_HELP_SAVE("the best model so far by test BLEU (with its optimizer and piece models), at each evaluation that beats it"), 0, 0, NULL},
        {"load", TG_STR, &o->load, TGX_HELP_LOAD("its vocabularies, piece models and shape"), 0, 0, NULL},
        {"export-torch", TG_STR, &o->export_torch, TGX_HELP_EXPORT_TORCH("Seq2Seq") " (with --translate: the --load'ed model, before translating)", 0, 0, NULL},
        {"import-torch", TG_STR, &o->import_torch, "start from a Seq2Seq state_dict in FILE (scripts/torch_models.py writes one); its metadata gives the model's size and vocabularies, every tensor checked against them (as --load: evaluates, translates, or trains on)", 0, 0, NULL},
        {"checkpoint", TG_STR, &o->checkpoint, TGX_HELP_CHECKPOINT, 0, 0, NULL},
        {"every", TG_INT, &o->every, TGX_HELP_EVERY, 0, 1 << 30, NULL},
        {"resume", TG_STR, &o->resume, TGX_HELP_RESUME, 0, 0, NULL},
        {"skip-nonfinite", TG_BOOL, &o->skip_nonfinite, TGX_HELP_SKIP_NONFINITE, 0, 0, NULL},
        {"translate", TG_BOOL, &o->translate, "translate the arguments (or stdin lines) with --load's model, in batches (from a pipe: of the lines that came together)", 0, 0, NULL},
        {"show", TG_INT, &o->show, "test sentences to print at the end", 0, 1000, NULL},
        {"eval-batch", TG_INT, &o->eval_batch, "sentences per batch when decoding (--translate: at most 64)", 1, 65536, NULL},
        {"log", TG_STR, &o->log, TGX_HELP_LOG("one row per epoch and per --eval-every"), 0, 0, NULL},
    };
    _Static_assert(sizeof flags / sizeof *flags <= TG_CLI_MAX_FLAGS, "raise TG_CLI_MAX_FLAGS");
    c->n = (int)(sizeof flags / sizeof *flags);
    memcpy(c->flags, flags, sizeof flags);
}

/* The run's checkpoint and output files. */
tg_run_files s2s_run_files(const s2s_options *o)
{
    /* --import-torch stands in o->load (take_torch_flags) but is named as
     * itself, among the reads */
    tg_run_files f = {.checkpoint = o->checkpoint, .resume = o->resume,
                      .load = o->import_torch ? NULL : o->load, .save = o->save, .log = o->log};
    tg_run_files_add(f.writes, "--export-torch", o->export_torch);
    tg_run_files_add(f.writes, "--attention-map", o->attention_map);
    tg_run_files_add(f.reads, "--train", o->train);
    tg_run_files_add(f.reads, "--test", o->test);
    tg_run_files_add(f.reads, "--import-torch", o->import_torch);
    return f; /* --write-corpus's two files: main.c adds them */
}

/* --attention-map: an attention model (a --load'ed model is checked when
 * the map is made), sentences to draw, a file that can be written. */
static void check_attention_map(const s2s_options *o)
{
    char err[512];
    if (!o->load && strcmp(o->attention, "none") == 0)
        tg_cli_die_usage(S2S_PROG, "--attention-map needs attention weights: give --attention "
                         "dot, general or mlp (the model has --attention none)");
    if (!o->translate && o->show == 0)
        tg_cli_die_usage(S2S_PROG, "--attention-map draws the --show test sentences: --show 0 "
                         "leaves none");
    /* written in place (a FIFO or device as it is: never opened here, where
     * a test open and close would end a reader's input) */
    if (tg_cli_check_output("--attention-map", o->attention_map, 0, err, sizeof err) != 0)
        tg_cli_die(S2S_PROG, "%s", err);
}

/* --import-torch FILE stands for --load FILE (setup.c reads it in
 * PyTorch's names); --export-torch needs a file it can write (and
 * check_exportable, a cell with a PyTorch module), before any work. */
static void take_torch_flags(s2s_options *o)
{
    char err[1024];
    if (o->import_torch && (o->load || o->resume))
        tg_cli_die_usage(S2S_PROG, "--import-torch and --%s exclude each other (both give the "
                         "model)", o->load ? "load" : "resume");
    if (o->import_torch) o->load = o->import_torch;
    if (o->export_torch &&
        tg_cli_check_output("--export-torch", o->export_torch, 1, err, sizeof err) != 0)
        tg_cli_die(S2S_PROG, "%s", err);
}

/* --export-torch of a cell without a PyTorch module, refused before any
 * training (after --resume's settings; a --load'ed model's cell is
 * checked when it is read, setup.c). */
static void check_exportable(const s2s_options *o)
{
    const tg_cell_kind *kind = tg_cell_kind_by_name(o->cell);
    if (o->export_torch && !o->load && kind && !tgx_torch_module_of(kind))
        tg_cli_die_usage(S2S_PROG, "--export-torch: cell '%s' has no PyTorch module ("
                         TGX_TORCH_CELLS ")", o->cell);
}

/* Flags that exclude or need each other. */
static void check_combinations(const s2s_options *o, const tg_cmdline *c, int argc, int first)
{
    if (!o->translate && first < argc)
        tg_cli_die_usage(S2S_PROG, "unexpected argument '%s' (sentences go with --translate)",
                         c->argv[first]);
    if (o->translate && !o->load) tg_cli_die_usage(S2S_PROG, "--translate needs --load MODEL (or --import-torch FILE)");
    if (o->translate && (o->checkpoint || o->resume))
        tg_cli_die_usage(S2S_PROG, "--translate does not train: --checkpoint and --resume do not apply");
    const tg_run_files files = s2s_run_files(o);
    tg_trainckpt_check_flags(S2S_PROG, c, &files);
}

/* The defaults that depend on other flags (after --resume's inherited
 * ones): subwords and dropout for a user's TSV (what every translation
 * toolkit trains with), the built-in corpus keeps its words and no dropout;
 * a piece is about a third of a word, so the length limits grow with
 * pieces (a 60-word sentence is about 160 pieces). With --load the model
 * decides (main.c, once it is read). */
void s2s_resolve_defaults(s2s_options *o)
{
    /* Real text needs attention and wide embeddings (examples/seq2seq/
     * README.md, "Choosing the defaults"); the template corpus is learnt
     * fastest without (issue 12: 100% exact in 60 s against 81% with). */
    if (!strcmp(o->attention, "auto")) o->attention = o->train ? "general" : "none";
    if (o->embed == 0) o->embed = o->train ? 256 : 64;
    if (o->subwords < 0) o->subwords = o->train ? S2S_SUBWORDS_DEFAULT : 0;
    if (o->dropout < 0) o->dropout = o->train ? S2S_DROPOUT_TRAIN : 0;
    int limit = o->subwords > 0 ? S2S_MAX_PIECES : S2S_MAX_TOKENS;
    if (o->max_tokens == 0) o->max_tokens = limit;
    if (o->max_len == 0) o->max_len = limit;
}

void s2s_parse_options(int argc, char **argv, s2s_options *o, tg_cmdline *c, tg_inherited *inh,
                       int *first_positional)
{
    *o = defaults();
    c->argc = argc;
    c->argv = argv;
    make_flags(o, c);
    tg_cli_parse(argc, argv, c->flags, c->n, S2S_PROG,
                 "Encoder-decoder translation (English->Korean built in, or any TSV pair file).",
                 first_positional);
    take_torch_flags(o);
    check_combinations(o, c, argc, *first_positional);
    inh->n = 0;
    if (o->resume) s2s_inherit_settings(o->resume, c, inh);
    /* a checkpoint records --attention only when the model has one */
    if (o->resume && !strcmp(o->attention, "auto")) o->attention = "none";
    check_exportable(o);
    if (o->bidirectional && o->hidden % 2 != 0)
        tg_cli_die_usage(S2S_PROG, "--bidirectional needs an even --hidden (%d per direction "
                         "would not fill %d)", o->hidden / 2, o->hidden);
    if (!o->load) s2s_resolve_defaults(o);
    if (o->subwords > 0 && o->subwords < S2S_SUBWORD_MIN) /* SentencePiece's own floor */
        tg_cli_die_usage(S2S_PROG, "--subwords %d: expected 0 (words) or %d..%d pieces",
                         o->subwords, S2S_SUBWORD_MIN, S2S_SUBWORD_MAX);
    if (tg_cmdline_given(c, "subword-sample") && (o->load || o->resume || o->subwords <= 0))
        tg_cli_die_usage(S2S_PROG, "--subword-sample applies when pieces are learned on --train "
                         "(--load, --import-torch and --resume bring their pieces; --subwords 0, "
                         "the built-in corpus's default, uses words)");
    if (o->attention_map) check_attention_map(o);
    /* a time or step budget alone is the limit: --epochs's default of 3
     * would end a --seconds 600 run on a small corpus after a few minutes */
    if (!o->resume && !tg_cmdline_given(c, "epochs") &&
        (tg_cmdline_given(c, "seconds") || tg_cmdline_given(c, "steps")))
        o->epochs = S2S_EPOCHS_UNLIMITED;
    /* --load evaluates (or translates) unless a training flag asks for more */
    if (o->load && !tg_cmdline_given(c, "epochs") && !tg_cmdline_given(c, "steps") &&
        !tg_cmdline_given(c, "seconds"))
        o->epochs = 0;
    o->threads = tgx_run_threads(o->threads);
    o->shards = tgx_default_shards(o->shards, o->threads, o->batch);
    tgx_check_shards(S2S_PROG, o->shards, o->batch, S2S_MAX_SHARDS); /* none of no rows */
    if (o->test && !o->train) tg_cli_die_usage(S2S_PROG, "--test needs --train");
    /* a test hook: poison a gradient at this step (the non-finite guard) */
    o->fault_step = tg_cli_env_step(S2S_PROG, "SEQ2SEQ_FAULT_STEP");
}
