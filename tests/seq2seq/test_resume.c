/* seq2seq's training checkpoints end to end (--checkpoint, --every,
 * --resume, --skip-nonfinite): N steps, resume, M more gives bitwise the
 * model, optimizer state, generators and data position of N+M steps in one
 * run, for sgd, adam and adamw, with two shards and dropout, split inside
 * an epoch; a resume that does not match names the field and exits 1; a
 * truncated checkpoint exits 1 and stays as it was; a bad checkpoint path
 * fails before training; a non-finite gradient stops the run keeping the
 * last good checkpoint, or is skipped. SEQ2SEQ is the program. */
#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "ckptedit.h"
#include "progtest.h"
#include "st_header.h"

static void setup(void) { pt_setup("SEQ2SEQ", "s2s_resume"); }

TestSuite(seq2seq_resume, .init = setup, .fini = pt_teardown, .timeout = 120);

/* "epoch N: loss L  test exact E  bleu B" of stdout (timings cut), into buf. */
static void epoch_line(int n, char *buf, size_t cap)
{
    char pat[32];
    snprintf(pat, sizeof pat, "epoch %d: loss", n);
    const char *p = strstr(pt_out, pat);
    cr_assert_not_null(p, "no '%s' line:\n%s", pat, pt_out);
    const char *tok = strstr(p, " tok/s");
    cr_assert_not_null(tok);
    while (tok > p && tok[-1] != ' ') tok--; /* back over the tok/s figure */
    size_t len = (size_t)(tok - p);
    cr_assert_lt(len, cap);
    memcpy(buf, p, len);
    buf[len] = '\0';
}

/* The loop's state in a checkpoint besides its tensors (training time and
 * settings may differ). */
static const char *const STATE_KEYS[] = {
    "u64.step",       "u64.epoch",        "u64.batch",    "rng.data",   "rng.order",
    "f64.epoch_loss", "u64.epoch_losses", "u64.skipped", "optim.steps", NULL,
};

/* 300 pairs in batches of 16: 19 steps an epoch (the last one of 12 pairs).
 * Two shards, two layers, dropout: every piece of state a step reads. */
#define DATA "--pairs 300 --test-pairs 20 --batch 16 --show 0"
#define MODEL DATA " --hidden 16 --embed 8 --layers 2 --dropout 0.3 --shards 2 --threads 2"

/* ------------------------------------------------------------------ exact resume */

/* Three epochs (57 steps) in one run against `steps` steps, then a resume
 * (both parts --save: it keeps the best model, and the best score so far
 * travels in the checkpoint, so the parts keep the same model as the run)
 * to the end that gives no model or data flags: the rest comes from the
 * checkpoint. crash: the first part is the whole run dying at step
 * steps + 1 (a NaN gradient), its last checkpoint at step `steps` (saved
 * before that epoch's evaluation). The resumed run says where it starts
 * (position), prints epoch lines from first_epoch on, and its log has
 * extra_rows more rows than the full run's (an epoch evaluated by both
 * parts). */
static void expect_exact_resume(const char *flags, int steps, int crash, const char *position,
                                int first_epoch, int extra_rows)
{
    char a[3][128], b[128];
    cr_assert_eq(pt_runf("%s %s --epochs 3 --checkpoint full.ck --every 0 --save full.st --log "
                         "full.csv", MODEL, flags), 0, "%s", pt_err);
    for (int e = 0; e < 3; e++) epoch_line(e + 1, a[e], sizeof a[e]);
    char args[1024];
    if (crash) {
        char env[64];
        snprintf(env, sizeof env, "SEQ2SEQ_FAULT_STEP=%d", steps + 1);
        snprintf(args, sizeof args, "%s %s --epochs 3 --checkpoint part.ck --every 1 --log "
                 "part.csv --save split.st", MODEL, flags);
        cr_assert_eq(pt_run_env(env, args), 1, "%s", pt_err);
    } else {
        snprintf(args, sizeof args, "%s %s --epochs 3 --steps %d --checkpoint part.ck --every 4 "
                 "--log part.csv --save split.st", MODEL, flags, steps);
        cr_assert_eq(pt_run(args), 0, "%s", pt_err);
        cr_assert(strstr(pt_out, "(--steps reached)"), "%s", pt_out);
    }
    cr_assert_eq(pt_run("--threads 1 --resume part.ck --checkpoint part.ck --steps 0 "
                        "--save split.st --log part.csv --show 0"), 0, "%s", pt_err);
    char want[128];
    snprintf(want, sizeof want, "resumed part.ck at step %d (%s)", steps, position);
    cr_assert(strstr(pt_err, want), "%s", pt_err);
    if (first_epoch > 1) cr_assert_null(strstr(pt_out, "epoch 1:"), "%s", pt_out);
    for (int e = first_epoch; e <= 3; e++) {
        epoch_line(e, b, sizeof b);
        cr_assert_str_eq(a[e - 1], b, "epoch %d's loss or scores differ", e);
    }
    pt_expect_same_bytes("full.st", "split.st");
    pt_expect_same_state("full.ck", "part.ck", STATE_KEYS);
    char step[32];
    pt_meta_of("part.ck", "u64.step", step, sizeof step);
    cr_assert_str_eq(step, "57");
    cr_assert_eq(pt_count_lines("part.csv"), pt_count_lines("full.csv") + extra_rows,
                 "the resumed log appends");
}

/* split at batch 6 of epoch 2; both parts evaluate (and log) epoch 2 */
Test(seq2seq_resume, exact_with_sgd)
{
    expect_exact_resume("--optim sgd --lr 0.5", 25, 0, "epoch 2, batch 6 of 19", 2, 1);
}
Test(seq2seq_resume, exact_with_adam)
{
    expect_exact_resume("--optim adam --lr 0.01", 25, 0, "epoch 2, batch 6 of 19", 2, 1);
}
Test(seq2seq_resume, exact_with_adamw)
{
    expect_exact_resume("--optim adamw", 25, 0, "epoch 2, batch 6 of 19", 2, 1);
}
Test(seq2seq_resume, exact_with_attention_and_a_bidirectional_encoder)
{
    expect_exact_resume("--optim adam --lr 0.01 --attention mlp --bidirectional", 25, 0,
                        "epoch 2, batch 6 of 19", 2, 1);
}
/* --label-smoothing travels in the checkpoint: the resume gives none */
Test(seq2seq_resume, exact_with_label_smoothing)
{
    expect_exact_resume("--optim adam --lr 0.01 --label-smoothing 0.2", 25, 0,
                        "epoch 2, batch 6 of 19", 2, 1);
}

Test(seq2seq_resume, exact_with_one_shard)
{
    /* one shard: dropout draws from the batch-order generator itself */
    expect_exact_resume("--shards 1 --clip 0.5", 30, 0, "epoch 2, batch 11 of 19", 2, 1);
}
Test(seq2seq_resume, exact_after_an_epoch)
{
    /* the first part ends with epoch 1 and its evaluation: the resumed
     * part starts epoch 2 (drawing its order) */
    expect_exact_resume("--optim adamw", 19, 0, "epoch 2, batch 0 of 19", 2, 0);
}
Test(seq2seq_resume, exact_after_a_crash)
{
    expect_exact_resume("--optim adam", 33, 1, "epoch 2, batch 14 of 19", 2, 0);
}
Test(seq2seq_resume, exact_after_a_crash_before_an_epochs_evaluation)
{
    /* checkpoint after epoch 1's last step, then the crash: the resumed
     * run evaluates epoch 1 again (with its restored loss average) */
    expect_exact_resume("--optim sgd --lr 0.5", 19, 1, "epoch 1, batch 19 of 19", 1, 1);
}

/* A run on a --load'ed model trained with dropout: it trains with the
 * model's dropout, so a split run equals the whole one (it trained with
 * none, recorded the model's, and the resumed part took that); an explicit
 * --dropout applies (0.9 and 0.3 gave the same bytes). */
Test(seq2seq_resume, a_loaded_models_dropout_is_the_runs)
{
    cr_assert_eq(pt_run(DATA " --hidden 16 --embed 8 --dropout 0.3 --epochs 1 --save m.st"), 0,
                 "%s", pt_err);
    cr_assert_eq(pt_run(DATA " --load m.st --epochs 2 --save whole.st"), 0, "%s", pt_err);
    cr_assert_eq(pt_run(DATA " --load m.st --epochs 2 --steps 10 --checkpoint c.ck --save "
                        "split.st"), 0, "%s", pt_err);
    cr_assert_eq(pt_run("--resume c.ck --checkpoint c.ck --steps 0 --save split.st --show 0"), 0,
                 "%s", pt_err);
    pt_expect_same_bytes("whole.st", "split.st");
    cr_assert_eq(pt_run(DATA " --load m.st --epochs 2 --dropout 0.3 --save same.st"), 0, "%s",
                 pt_err);
    pt_expect_same_bytes("whole.st", "same.st");
    cr_assert_eq(pt_run(DATA " --load m.st --epochs 2 --dropout 0.9 --save more.st"), 0, "%s",
                 pt_err);
    size_t a, b;
    char *x = pt_read("whole.st", &a), *y = pt_read("more.st", &b);
    cr_assert(a != b || memcmp(x, y, a) != 0, "--dropout 0.9 changed nothing");
    free(x);
    free(y);
    pt_expect_meta("more.st", "s2s.dropout", "0.90000000000000002");
}

Test(seq2seq_resume, epochs_and_steps_count_from_the_start_of_the_run)
{
    cr_assert_eq(pt_runf("%s --epochs 3 --save three.st", MODEL), 0, "%s", pt_err);
    /* --save keeps the best model: the best score of epochs 1-2 travels in c.ck */
    cr_assert_eq(pt_runf("%s --epochs 2 --checkpoint c.ck --save more.st", MODEL), 0, "%s",
                 pt_err);
    size_t n0, n1;
    char *before = pt_read("c.ck", &n0);
    /* the run's own --epochs 2 is inherited: done */
    cr_assert_eq(pt_run("--resume c.ck"), 0, "%s", pt_err);
    cr_assert(strstr(pt_err, "already past epoch 2 of --epochs 2: nothing to train"), "%s", pt_err);
    cr_assert(strstr(pt_out, "greedy: exact"), "evaluated without training: %s", pt_out);
    cr_assert_eq(pt_run("--resume c.ck --steps 30"), 0, "%s", pt_err);
    cr_assert(strstr(pt_err, "nothing to train"), "%s", pt_err);
    char *after = pt_read("c.ck", &n1); /* no --checkpoint: only read */
    cr_assert(n0 == n1 && memcmp(before, after, n0) == 0);
    free(before);
    free(after);
    /* --epochs 3 trains the third epoch only: the same as three in one run */
    cr_assert_eq(pt_run("--resume c.ck --checkpoint c.ck --epochs 3 --save more.st"), 0, "%s",
                 pt_err);
    cr_assert_null(strstr(pt_out, "epoch 2:"), "%s", pt_out);
    cr_assert(strstr(pt_out, "epoch 3:"), "%s", pt_out);
    pt_expect_same_bytes("three.st", "more.st");
    /* the training time is the run's: a --seconds budget already spent trains nothing */
    cr_assert_eq(pt_run("--resume c.ck --epochs 4 --seconds 0.000001"), 0, "%s", pt_err);
    cr_assert(strstr(pt_err, "(--seconds reached): nothing to train"), "%s", pt_err);
}

/* ------------------------------------------------------------------ refusals */

#define RESUME "--resume c.ck --checkpoint c.ck --epochs 2 --steps 0"

/* 40 pairs over 8 source and 8 target words; swap: the same pairs in
 * another order (the same vocabularies, another data position); extra: a
 * new word in the last pair. */
static void write_tsv(const char *name, int swap, int extra)
{
    static const char *const en[] = {"a", "b", "c", "d", "e", "f", "g", "h"};
    static const char *const ko[] = {"A", "B", "C", "D", "E", "F", "G", "H"};
    char text[4096] = "", line[64];
    for (int k = 0; k < 40; k++) {
        int i = swap ? 39 - k : k;
        snprintf(line, sizeof line, "%s %s\t%s %s\n", en[i % 8], en[(i / 8) % 8], ko[(i / 8) % 8],
                 extra && i == 39 ? "Z" : ko[i % 8]);
        strcat(text, line);
    }
    pt_write(name, text, strlen(text));
}

Test(seq2seq_resume, a_mismatch_exits_1_naming_the_field)
{
    cr_assert_eq(pt_runf("%s --epochs 1 --steps 5 --checkpoint c.ck", MODEL), 0, "%s", pt_err);
    pt_expect_refused(RESUME " --hidden 17",
                      "c.ck: config 'hidden' is '16' in the checkpoint, '17' in this run");
    pt_expect_refused(RESUME " --cell gru",
                      "c.ck: config 'cell' is 'lstm' in the checkpoint, 'gru' in this run");
    pt_expect_refused(RESUME " --dropout 0",
                      "c.ck: config 'dropout' is '0.29999999999999999' in the checkpoint, '0' in "
                      "this run");
    pt_expect_refused(RESUME " --pairs 299",
                      "c.ck: config 'pairs' is '300' in the checkpoint, '299' in this run");
    pt_expect_refused(RESUME " --corpus-seed 2",
                      "c.ck: config 'corpus-seed' is '1' in the checkpoint, '2' in this run");
    pt_expect_refused(RESUME " --min-count 2",
                      "c.ck: config 'min-count' is '1' in the checkpoint, '2' in this run");
    pt_expect_refused(RESUME " --batch 8",
                      "c.ck: config 'batch' is '16' in the checkpoint, '8' in this run");
    pt_expect_refused(RESUME " --shards 1",
                      "c.ck: config 'shards' is '2' in the checkpoint, '1' in this run");
    pt_expect_refused(RESUME " --optim sgd",
                      "c.ck: config 'optim' is 'adam' in the checkpoint, 'sgd' in this run");
    pt_expect_refused(RESUME " --seed 2",
                      "c.ck: config 'seed' is '1' in the checkpoint, '2' in this run");
    /* written only when set: a run without them wrote none, and a file
     * without them holds none and 0 (the message said the file came from
     * another version of the program, then that they were not set) */
    pt_expect_refused(RESUME " --attention dot",
                      "c.ck: config 'attention' is 'none' in the checkpoint, 'dot' in this run");
    pt_expect_refused(RESUME " --bidirectional",
                      "c.ck: config 'bidirectional' is '0' in the checkpoint, '1' in this run");
    write_tsv("a.tsv", 0, 0);
    pt_expect_refused(RESUME " --train a.tsv --test a.tsv",
                      "c.ck: config 'corpus' is 'built-in' in the checkpoint, 'tsv' in this run");
    /* settings may change: a different --lr or --clip is used, not refused */
    cr_assert_eq(pt_run(RESUME " --lr 0.001 --clip 1"), 0, "%s", pt_err);
}

Test(seq2seq_resume, an_attention_mismatch_exits_1_naming_the_field)
{
    cr_assert_eq(pt_runf("%s --attention mlp --bidirectional --epochs 1 --steps 5 --checkpoint c.ck",
                         MODEL), 0, "%s", pt_err);
    pt_expect_refused(RESUME " --attention dot",
                      "c.ck: config 'attention' is 'mlp' in the checkpoint, 'dot' in this run");
    /* dropped: refused by the config too, where the parameters' names
     * refused it ("tensor 'decoder.attn...' in the file is not a parameter
     * of this model", "'encoder.l0.weight_ih' is missing from the file") */
    pt_expect_refused(RESUME " --attention none",
                      "c.ck: config 'attention' is 'mlp' in the checkpoint, 'none' in this run: "
                      "cannot resume with a different attention");
    pt_expect_refused(RESUME " --bidirectional=0",
                      "c.ck: config 'bidirectional' is '1' in the checkpoint, '0' in this run: "
                      "cannot resume with a different bidirectional");
    /* not given: inherited, and the run goes on */
    cr_assert_eq(pt_run(RESUME), 0, "%s", pt_err);
}

Test(seq2seq_resume, a_changed_pair_file_exits_1_naming_the_field)
{
    write_tsv("a.tsv", 0, 0);
    write_tsv("swapped.tsv", 1, 0);
    write_tsv("extra.tsv", 0, 1);
    /* word vocabularies (with pieces, the checkpoint's piece models are
     * used and an edited file is caught by 'data', as the first refusal) */
    cr_assert_eq(pt_run("--train a.tsv --test a.tsv --hidden 8 --embed 4 --batch 8 --epochs 1 "
                        "--steps 3 --checkpoint c.ck --show 0 --subwords 0"), 0, "%s", pt_err);
    pt_expect_refused(RESUME " --train swapped.tsv --test a.tsv",
                      "c.ck: config 'data' is '40 pairs, fnv1a ");
    pt_expect_refused(RESUME " --train extra.tsv --test a.tsv",
                      "c.ck: config 'tgt-vocab' is 'A B C D E F G H' in the checkpoint, ");
    pt_expect_refused(RESUME " --train a.tsv --test a.tsv --lowercase",
                      "c.ck: config 'lowercase' is '0' in the checkpoint, '1' in this run");
    /* without --train/--test the run's files are taken */
    cr_assert_eq(pt_run(RESUME), 0, "%s", pt_err);
    cr_assert(strstr(pt_err, "resumed c.ck at step 3 (epoch 1, batch 3 of 5)"), "%s", pt_err);
    /* and when they are gone, the refusal names the checkpoint and the file */
    char from[sizeof pt_dir + 16], to[sizeof pt_dir + 16];
    pt_path("a.tsv", from, sizeof from);
    pt_path("moved.tsv", to, sizeof to);
    cr_assert_eq(rename(from, to), 0);
    pt_expect_refused(RESUME, "seq2seq: c.ck: cannot read the run's training pairs (taken from the "
                      "checkpoint): a.tsv: No such file or directory; give --train FILE with the "
                      "run's training pairs");
    cr_assert_eq(pt_run(RESUME " --train moved.tsv --test moved.tsv"), 0, "%s", pt_err);
}

Test(seq2seq_resume, a_truncated_checkpoint_exits_1_and_stays_as_it_was)
{
    cr_assert_eq(pt_runf("%s --epochs 1 --steps 3 --checkpoint good.ck", MODEL), 0, "%s", pt_err);
    size_t n;
    char *good = pt_read("good.ck", &n);
    const size_t cuts[] = {0, 7, 8, 100, n / 2, n - 1};
    for (size_t i = 0; i < sizeof cuts / sizeof cuts[0]; i++) {
        pt_write("c.ck", good, cuts[i]);
        pt_expect_refused(RESUME, "c.ck");
    }
    free(good);
}

Test(seq2seq_resume, not_a_training_checkpoint)
{
    cr_assert_eq(pt_runf("%s --epochs 1 --steps 2 --save model.st --checkpoint c.ck", MODEL), 0,
                 "%s", pt_err);
    cr_assert_eq(pt_run("--resume model.st"), 1);
    pt_expect_one_line("model.st: not a training checkpoint");
    cr_assert_eq(pt_run("--resume missing.ck"), 1);
    pt_expect_one_line("missing.ck");
    cr_assert_eq(pt_run("--load c.ck --translate hello"), 1);
    pt_expect_one_line("c.ck: a training checkpoint, not a model: continue its run with --resume "
                       "c.ck");
    /* a safetensors file of another program (here PyTorch's own) */
    static const char header[] = "{\"__metadata__\":{\"format\":\"pt\"},\"w\":{\"dtype\":"
                                 "\"F32\",\"shape\":[1],\"data_offsets\":[0,4]}}";
    unsigned char file[8 + sizeof header - 1 + 4] = {sizeof header - 1};
    memcpy(file + 8, header, sizeof header - 1);
    pt_write("other.st", file, sizeof file);
    cr_assert_eq(pt_run("--load other.st --translate hello"), 1);
    pt_expect_one_line("other.st: metadata 's2s.cell' missing: not a seq2seq model");
    /* the model with an empty word put in its target vocabulary (a second
     * "\n" after the first word; the header grows by 2 bytes) */
    size_t n;
    char *model = pt_read("model.st", &n);
    char *words = strstr(model + 8, "\"s2s.tgt_vocab\":\"");
    char *nl = words ? strstr(words, "\\n") : NULL;
    cr_assert(nl, "no target vocabulary in model.st's header");
    char *edited = malloc(n + 2);
    size_t at = (size_t)(nl - model) + 2;
    memcpy(edited, model, at);
    memcpy(edited + at, "\\n", 2);
    memcpy(edited + at + 2, model + at, n - at);
    unsigned long long hlen = pt_header_len(model);
    for (int i = 0; i < 8; i++) edited[i] = (char)((hlen + 2) >> (8 * i));
    size_t edited_len = n + 2;
    pt_fix_header_crc(&edited, &edited_len);
    pt_write("empty_word.st", edited, edited_len);
    free(edited);
    free(model);
    cr_assert_eq(pt_run("--load empty_word.st --translate hello"), 1);
    pt_expect_one_line("empty_word.st: metadata 's2s.tgt_vocab' is not a vocabulary (a word "
                       "repeated, empty or holding white space)");
    /* the model file still loads and translates */
    cr_assert_eq(pt_run("--load model.st --translate \"I study deeplearning\""), 0, "%s", pt_err);
    cr_assert(strstr(pt_out, "result: translated=1"), "%s", pt_out);
}

/* A run stopped after --save kept a model and before its next checkpoint
 * (killed, its machine lost) leaves a file better than the checkpoint
 * knows: resumed from that checkpoint, the run compares against the file's
 * kept score, so no worse model replaces it (helper-40: a BLEU 35 model was
 * replaced by one of 0.05 at another --lr). The second run stands in for
 * the stopped one: it trains on from step 20 keeping models; then step
 * 20's checkpoint is resumed with --lr 0, its evaluations scoring step
 * 20's model: to 40 steps, and to the kept model's own step, where the
 * run ends on the kept model read back, not its own (helper-41). A file
 * of another configuration is not taken for the run's. */
Test(seq2seq_resume, a_kept_model_newer_than_the_checkpoint_stays_unless_beaten)
{
    cr_assert_eq(pt_runf("%s --epochs 10 --steps 20 --checkpoint c.ck --every 0", MODEL), 0, "%s",
                 pt_err);
    pt_copy("c.ck", "c20.ck");
    cr_assert_eq(pt_run("--resume c.ck --checkpoint c.ck --steps 60 --eval-every 10 --save s.st"),
                 0, "%s", pt_err);
    char kept[64], step[64], after[64], want[128];
    pt_meta_of("s.st", "kept.bleu", kept, sizeof kept);
    pt_meta_of("s.st", "kept.step", step, sizeof step);
    cr_assert(atoi(step) > 20 && atoi(step) <= 60, "kept.step %s", step);
    snprintf(want, sizeof want, "s.st holds the model kept at step %s (bleu ", step);
    const char *const ends[] = {"40", step};
    for (int i = 0; i < 2; i++) {
        pt_copy("c20.ck", "r.ck");
        cr_assert_eq(pt_runf("--resume r.ck --checkpoint r.ck --steps %s --eval-every 5 --save "
                             "s.st --lr 0", ends[i]), 0, "%s", pt_err);
        cr_assert(strstr(pt_err, want), "%s", pt_err);
        pt_meta_of("s.st", "kept.bleu", after, sizeof after);
        cr_assert(strtod(after, NULL) >= strtod(kept, NULL), "kept BLEU %s replaced by %s", kept,
                  after);
        if (strcmp(after, kept) == 0) {
            pt_expect_meta("s.st", "kept.step", step);
            cr_assert(strstr(pt_out, "final scores of the kept model: best BLEU"), "%s", pt_out);
        }
    }
    /* another configuration's kept model: not this run's, not compared against */
    cr_assert_eq(pt_run(DATA " --hidden 24 --embed 8 --steps 80 --eval-every 40 --save o.st"), 0,
                 "%s", pt_err);
    pt_copy("c20.ck", "r.ck");
    cr_assert_eq(pt_run("--resume r.ck --checkpoint r.ck --steps 30 --eval-every 5 --save o.st"),
                 0, "%s", pt_err);
    cr_assert_null(strstr(pt_err, "holds the model kept"), "%s", pt_err);
}

/* The kept model's file removed during a run: at the end, where the run
 * would read it back (a later evaluation was no better: here --lr 0 after
 * a resume), the run says so and keeps its final model instead, exit 0,
 * as charlm does (it ended on exit 1, "reading back the kept model"). */
Test(seq2seq_resume, a_kept_model_removed_during_the_run_is_replaced_by_the_final_one)
{
    cr_assert_eq(pt_runf("%s --epochs 10 --steps 20 --eval-every 10 --checkpoint c.ck --every 0 "
                         "--save s.st", MODEL), 0, "%s", pt_err);
    char step[64];
    pt_meta_of("s.st", "kept.step", step, sizeof step);
    char path[sizeof pt_dir + 16];
    pt_path("s.st", path, sizeof path);
    cr_assert_eq(remove(path), 0);
    cr_assert_eq(pt_run("--resume c.ck --checkpoint c.ck --steps 40 --eval-every 10 --lr 0 "
                        "--save s.st"), 0, "%s", pt_err);
    char want[160];
    snprintf(want, sizeof want, "s.st, with the kept model (step %s), is gone: keeping the final "
             "one", step);
    cr_assert(strstr(pt_err, want), "%s", pt_err);
    cr_assert(strstr(pt_out, "saved s.st"), "%s", pt_out);
    pt_expect_meta("s.st", "kept.step", "40");
}

/* An output never replaces a training checkpoint: --save left a model in
 * its place, --attention-map an SVG, and the run's state was lost. Refused
 * at start-up, exit 2, the file untouched, in training and in --translate. */
Test(seq2seq_resume, an_output_never_replaces_a_training_checkpoint)
{
    cr_assert_eq(pt_runf("%s --epochs 1 --steps 2 --save model.st --checkpoint c.ck", MODEL), 0,
                 "%s", pt_err);
    pt_copy("c.ck", "c0.ck");
    cr_assert_eq(pt_runf("%s --epochs 1 --steps 2 --save c.ck", MODEL), 2, "%s", pt_err);
    pt_expect_one_line("seq2seq: --save c.ck: that file is a training checkpoint (continue it "
                       "with --resume); --save would replace it with a model file, without the "
                       "run's state: name another file or remove it");
    cr_assert_eq(pt_out[0], 0, "trained before refusing: %s", pt_out);
    cr_assert_eq(pt_run("--load model.st --attention-map c.ck --translate hello"), 2, "%s",
                 pt_err);
    pt_expect_one_line("--attention-map c.ck: that file is a training checkpoint");
    pt_expect_same_bytes("c.ck", "c0.ck");
}

Test(seq2seq_resume, the_checkpoint_path_is_checked_before_training)
{
    cr_assert_eq(pt_runf("%s --epochs 1 --checkpoint no/such/dir/c.ck", MODEL), 1);
    pt_expect_one_line("--checkpoint no/such/dir/c.ck: directory 'no/such/dir': No such file or "
                       "directory");
    cr_assert_eq(pt_runf("%s --epochs 1 --checkpoint .", MODEL), 1);
    pt_expect_one_line("--checkpoint .: is a directory");
    /* a fresh run never overwrites an earlier run's checkpoint */
    cr_assert_eq(pt_runf("%s --epochs 1 --steps 2 --checkpoint c.ck", MODEL), 0, "%s", pt_err);
    char args[512];
    snprintf(args, sizeof args, "%s --epochs 1 --checkpoint c.ck", MODEL);
    pt_expect_refused(args,
                      "--checkpoint c.ck already exists: continue that run with --resume c.ck");
    size_t n;
    char *copy = pt_read("c.ck", &n); /* another file, though equal */
    pt_write("other.ck", copy, n);
    free(copy);
    pt_expect_refused("--epochs 2 --checkpoint c.ck --resume other.ck",
                      "--checkpoint c.ck already exists");
}

Test(seq2seq_resume, usage_errors_exit_2)
{
    cr_assert_eq(pt_run("--every 5"), 2);
    pt_expect_one_line("--every needs --checkpoint FILE");
    cr_assert_eq(pt_run("--resume a.ck --load b.st"), 2);
    pt_expect_one_line("--resume and --load exclude each other");
    cr_assert_eq(pt_run("--checkpoint x.st --save x.st"), 2);
    pt_expect_one_line("--checkpoint and --save name the same file x.st");
    cr_assert_eq(pt_run("--load m.st --translate --checkpoint c.ck"), 2);
    pt_expect_one_line("--translate does not train");
    cr_assert_eq(pt_run("--every -1"), 2);
    cr_assert_eq(pt_run("--steps x"), 2);
    cr_assert_eq(pt_run_env("SEQ2SEQ_FAULT_STEP=x", "--epochs 1"), 2);
    pt_expect_one_line("SEQ2SEQ_FAULT_STEP: expected a step number");
}

/* ------------------------------------------------------------------ non-finite steps */

Test(seq2seq_resume, a_nonfinite_gradient_stops_and_keeps_the_last_checkpoint)
{
    cr_assert_eq(pt_run_env("SEQ2SEQ_FAULT_STEP=6", MODEL " --epochs 2 --checkpoint c.ck --every 1 "
                            "--save bad.st"), 1);
    cr_assert(strstr(pt_err, "seq2seq: step 6: gradient of 'src_embed.weight'[0] is not finite; "
                     "stopping, last checkpoint kept"), "%s", pt_err);
    cr_assert_not(pt_exists("bad.st"), "--save written after a non-finite step");
    char step[32];
    pt_meta_of("c.ck", "u64.step", step, sizeof step);
    cr_assert_str_eq(step, "5");
    /* the kept checkpoint is the good state of step 5: resuming it without
     * the fault gives exactly the clean run */
    cr_assert_eq(pt_run("--resume c.ck --checkpoint c.ck --save resumed.st"), 0, "%s", pt_err);
    cr_assert_eq(pt_runf("%s --epochs 2 --save clean.st", MODEL), 0, "%s", pt_err);
    pt_expect_same_bytes("clean.st", "resumed.st");
}

Test(seq2seq_resume, skip_nonfinite_skips_the_update)
{
    cr_assert_eq(pt_run_env("SEQ2SEQ_FAULT_STEP=2", MODEL " --epochs 1 --skip-nonfinite "
                            "--checkpoint c.ck"), 0, "%s", pt_err);
    cr_assert(strstr(pt_err, "seq2seq: step 2: gradient of 'src_embed.weight'[0] is not finite; "
                     "step skipped (--skip-nonfinite)\n"), "%s", pt_err);
    cr_assert(strstr(pt_err, "seq2seq: 1 of 19 steps skipped as not finite\n"), "%s", pt_err);
    cr_assert(strstr(pt_out, "result: "), "%s", pt_out);
    char v[32];
    pt_meta_of("c.ck", "optim.steps", v, sizeof v);
    cr_assert_str_eq(v, "18", "18 updates in 19 steps");
    pt_meta_of("c.ck", "u64.skipped", v, sizeof v);
    cr_assert_str_eq(v, "1");
    pt_meta_of("c.ck", "u64.step", v, sizeof v);
    cr_assert_str_eq(v, "19");
}

/* ------------------------------------------------------------------ output paths */

/* --save, --log and --checkpoint that cannot be written fail at start-up:
 * one line, before the corpus is made or a step is trained. */
Test(seq2seq_resume, output_paths_are_checked_before_training)
{
    pt_expect_outputs_checked("seq2seq", MODEL " --epochs 1", ".");
}

/* A --log that takes nothing (/dev/full) is refused before training; one
 * whose writes fail later (a full disk; here a FIFO whose reader left after
 * the header) stops the run at once, keeping its checkpoint: the run went
 * on to its end, every row lost, and only the log's close said so. */
Test(seq2seq_resume, a_log_write_error_stops_the_run_keeping_its_checkpoint)
{
    cr_assert_eq(pt_run(MODEL " --steps 30 --log /dev/full --checkpoint c.ck"), 1, "%s", pt_err);
    /* the flag named, as every output check names its flag */
    cr_assert(strstr(pt_err, "seq2seq: --log /dev/full: cannot write log file: No space left "
                     "on device\n"), "%s", pt_err);
    cr_assert(!strstr(pt_out, "epoch"), "trained before failing: %s", pt_out);

    char fifo[sizeof pt_dir + 16], line[256];
    pt_path("log.fifo", fifo, sizeof fifo);
    cr_assert_eq(mkfifo(fifo, 0600), 0);
    /* the reader takes the header and leaves: every later row is EPIPE */
    int rc = pt_run_env("{ head -n 1 log.fifo >/dev/null & } ;",
                        MODEL " --steps 3000 --eval-every 1 --log log.fifo --checkpoint c.ck "
                        "--save m.tg");
    cr_assert_eq(rc, 1, "%s", pt_err);
    char step[32];
    pt_meta_of("c.ck", "u64.step", step, sizeof step);
    /* 3000 steps: seconds for the reader to leave, on a loaded machine */
    cr_assert_lt(atoi(step), 3000, "ran to its end: %s", pt_err);
    cr_assert(pt_exists("m.tg"), "the stop lost --save: %s", pt_err);
    snprintf(line, sizeof line, "seq2seq: --log log.fifo: write error: Broken pipe; training "
             "stopped at step %s, checkpoint c.ck kept (--resume it with another --log)\n", step);
    cr_assert(strstr(pt_err, line), "stderr lacks '%s':\n%s", line, pt_err);
}

/* The same where the failing row is an epoch's evaluation (no
 * --eval-every): the run stops at that epoch's end (a multiple of 19
 * steps), where it ran one step into the next epoch. */
Test(seq2seq_resume, a_log_write_error_at_an_epoch_end_stops_there)
{
    char fifo[sizeof pt_dir + 16], step[32];
    pt_path("log.fifo", fifo, sizeof fifo);
    cr_assert_eq(mkfifo(fifo, 0600), 0);
    int rc = pt_run_env("{ head -n 1 log.fifo >/dev/null & } ;",
                        MODEL " --epochs 40 --log log.fifo --checkpoint c.ck");
    cr_assert_eq(rc, 1, "%s", pt_err);
    cr_assert(strstr(pt_err, "write error: Broken pipe; training stopped at step"), "%s", pt_err);
    pt_meta_of("c.ck", "u64.step", step, sizeof step);
    cr_assert(atoi(step) > 0 && atoi(step) % 19 == 0, "stopped at step %s, not an epoch's end",
              step);
}
