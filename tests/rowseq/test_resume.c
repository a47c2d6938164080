/* rowseq's training checkpoints end to end (--checkpoint, --every,
 * --resume, --skip-nonfinite) on a toy IDX folder written here: N steps,
 * resume, M more gives bitwise the model, optimizer moments, generators and
 * data position of N+M steps in one run, for every optimizer, with two
 * shards and dropout, split in the middle of an epoch; a resume that does
 * not match names the field and exits 1; a truncated checkpoint exits 1
 * and stays as it was; a bad checkpoint path fails before training; a
 * non-finite gradient stops the run keeping the last good checkpoint, or
 * is skipped; SIGTERM stops cleanly with a checkpoint. ROWSEQ_EXE is the
 * program. */
#include <criterion/criterion.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "idx_files.h"
#include "progtest.h"

/* 320 training images in batches of 32: 10 steps an epoch. */
static void setup(void)
{
    char other[1200];
    pt_setup("ROWSEQ_EXE", "rowseq_resume");
    write_toy_split(pt_dir, "train", 320, 1);
    write_toy_split(pt_dir, "t10k", 100, 2);
    /* another data set of the same size: only its pixels and labels differ */
    snprintf(other, sizeof other, "%s/other", pt_dir);
    cr_assert_eq(mkdir(other, 0700), 0);
    write_toy_split(other, "train", 320, 5);
    write_toy_split(other, "t10k", 100, 2);
}

TestSuite(rowseq_resume, .init = setup, .fini = pt_teardown, .timeout = 120);

/* Every metadata entry of the loop's state that must be equal after an
 * exact resume (train_seconds is wall-clock time, so it is not). */
static const char *const STATE_KEYS[] = {
    "optim.kind",      "optim.steps",     "u64.step",        "u64.epoch",
    "u64.epoch_pos",   "u64.epoch_images", "u64.skipped",    "u64.skip_streak",
    "rng.shuffle",     "rng.dropout.0",   "rng.dropout.1",   "f64.epoch_loss",
    "config.train-data", NULL,
};

/* The last row of a --log CSV without its wall-clock columns (seconds,
 * tokens_per_s): epoch,step,lr,train_loss,test_loss,test_acc. */
static void last_row(const char *name, char *row, size_t cap)
{
    size_t n;
    char *s = pt_read(name, &n);
    cr_assert(s && n > 0 && s[n - 1] == '\n', "%s missing or not ended by a line", name);
    s[n - 1] = '\0';
    char *line = strrchr(s, '\n');
    line = line ? line + 1 : s;
    row[0] = '\0';
    int col = 0;
    for (char *tok = strtok(line, ","); tok; tok = strtok(NULL, ","), col++)
        if (col != 2 && col != 7) {
            strncat(row, tok, cap - strlen(row) - 2);
            strcat(row, ",");
        }
    cr_assert_eq(col, 8, "%s: last row has %d columns", name, col);
    free(s);
}

/* Two shards, two layers with dropout between them, three epochs of ten
 * steps: every piece of state a step reads. */
#define MODEL "--data . --hidden 8 --layers 2 --dropout 0.3 --batch 32 --shards 2 --epochs 3"

/* ------------------------------------------------------------------ exact resume */

/* 30 steps in one run (with 2 threads: results never depend on them)
 * against 13 steps, then a resume to 30 that gives only --data (and
 * --steps 0 to lift the stop at 13): the rest comes from the checkpoint.
 * Step 13 is image 96 of epoch 2, so the resumed part starts mid-epoch
 * from a re-drawn permutation and crosses the end of epochs 2 and 3.
 * crash: the first part is a full run that dies at step 14 (a NaN
 * gradient), its last checkpoint at step 13, resumed with no flag at all. */
static void expect_exact_resume(const char *optim, int crash)
{
    char a[64], b[64], row_a[512], row_b[512];
    cr_assert_eq(pt_runf("%s %s --threads 2 --checkpoint full.ck --every 0 --save full.st --log "
                         "full.csv", MODEL, optim), 0, "%s", pt_err);
    cr_assert(strstr(pt_result_line(), " steps=30 "), "%s", pt_result_line());
    pt_result_value("test_acc", a, sizeof a);
    char args[1024];
    if (crash) {
        snprintf(args, sizeof args, "%s %s --threads 1 --checkpoint part.ck --every 1 --log "
                 "part.csv", MODEL, optim);
        cr_assert_eq(pt_run_env("ROWSEQ_FAULT_STEP=14", args), 1, "%s", pt_err);
        cr_assert(strstr(pt_err, "step 14: gradient of "), "%s", pt_err);
        cr_assert_eq(pt_run("--data . --threads 1 --resume part.ck --checkpoint part.ck --save "
                            "split.st --log part.csv"), 0, "%s", pt_err);
    } else {
        snprintf(args, sizeof args, "%s %s --threads 1 --steps 13 --checkpoint part.ck --every 4 "
                 "--log part.csv", MODEL, optim);
        cr_assert_eq(pt_run(args), 0, "%s", pt_err);
        cr_assert(strstr(pt_result_line(), " steps=13 "), "%s", pt_result_line());
        cr_assert(strstr(pt_out, "epoch   2 (partial, --steps)"), "%s", pt_out);
        cr_assert_eq(pt_run("--data . --threads 1 --resume part.ck --checkpoint part.ck --steps 0 "
                            "--save split.st --log part.csv"), 0, "%s", pt_err);
    }
    cr_assert(strstr(pt_err, "resumed part.ck at step 13 (epoch 2, image 96 of 320)"), "%s",
              pt_err);
    cr_assert(strstr(pt_result_line(), " epochs=3 ") && strstr(pt_result_line(), " steps=30 "),
              "%s", pt_result_line());
    pt_result_value("test_acc", b, sizeof b);
    cr_assert_str_eq(a, b, "test accuracy differs");
    pt_expect_same_bytes("full.st", "split.st");
    pt_expect_same_state("full.ck", "part.ck", STATE_KEYS);
    last_row("full.csv", row_a, sizeof row_a);
    last_row("part.csv", row_b, sizeof row_b);
    cr_assert_str_eq(row_a, row_b, "the last epoch's log row differs");
}

Test(rowseq_resume, exact_with_sgd) { expect_exact_resume("--optim sgd --lr 0.5 --schedule step", 0); }
Test(rowseq_resume, exact_with_momentum) { expect_exact_resume("--optim momentum --lr 0.05", 0); }

/* --momentum is SGD's, as in charlm: --optim sgd takes a given one (it was
 * dropped for plain SGD), --optim momentum defaults to 0.9, Adam has none. */
Test(rowseq_resume, momentum_follows_the_optimizer)
{
    const char *const run[] = {"--optim sgd --momentum 0.5", "--optim momentum", "--optim adam"};
    const double want[] = {0.5, 0.9, 0};
    for (int i = 0; i < 3; i++) {
        cr_assert_eq(pt_runf("--data . --hidden 8 --batch 32 --steps 1 --threads 1 %s "
                             "--checkpoint m%d.ck", run[i], i), 0, "%s", pt_err);
        char name[16], v[64];
        snprintf(name, sizeof name, "m%d.ck", i);
        pt_meta_of(name, "config.momentum", v, sizeof v);
        cr_expect_eq(strtod(v, NULL), want[i], "%s: config.momentum %s", run[i], v);
    }
}
Test(rowseq_resume, exact_with_adam) { expect_exact_resume("--optim adam --lr 0.01", 0); }
Test(rowseq_resume, exact_with_adamw)
{
    expect_exact_resume("--optim adamw --lr 0.01 --weight-decay 0.05 --schedule constant", 0);
}
Test(rowseq_resume, exact_after_a_crash_with_adamw_cosine)
{
    expect_exact_resume("--optim adamw --lr 0.01 --clip 0.5", 1);
}

Test(rowseq_resume, epochs_count_from_the_start_of_the_run)
{
    cr_assert_eq(pt_runf("%s --epochs 1 --checkpoint c.ck", MODEL), 0, "%s", pt_err);
    size_t n0, n1;
    char *before = pt_read("c.ck", &n0);
    cr_assert_eq(pt_run("--data . --resume c.ck --epochs 1"), 0, "%s", pt_err);
    cr_assert(strstr(pt_err, "already at epoch 1 of --epochs 1: nothing to train"), "%s", pt_err);
    cr_assert(strstr(pt_out, "evaluation  test_loss"), "%s", pt_out);
    cr_assert(strstr(pt_result_line(), " steps=10 "), "%s", pt_result_line());
    char *after = pt_read("c.ck", &n1); /* no --checkpoint: only read */
    cr_assert(n0 == n1 && memcmp(before, after, n0) == 0);
    free(before);
    free(after);
    /* without --epochs the run's own total (1) is inherited */
    cr_assert_eq(pt_run("--data . --resume c.ck"), 0, "%s", pt_err);
    cr_assert(strstr(pt_result_line(), " steps=10 "), "%s", pt_result_line());
    /* --epochs 2 trains the one epoch that is missing */
    cr_assert_eq(pt_run("--data . --resume c.ck --checkpoint c.ck --epochs 2"), 0, "%s", pt_err);
    cr_assert(strstr(pt_result_line(), " epochs=2 ") && strstr(pt_result_line(), " steps=20 "),
              "%s", pt_result_line());
    pt_expect_meta("c.ck", "u64.epoch", "2");
    pt_expect_meta("c.ck", "info.epochs", "2");
}

/* ------------------------------------------------------------------ refusals */

Test(rowseq_resume, a_mismatch_exits_1_naming_the_field)
{
    cr_assert_eq(pt_runf("%s --steps 3 --checkpoint c.ck", MODEL), 0, "%s", pt_err);
    const char *common = "--resume c.ck --checkpoint c.ck --steps 5";
    char args[512];
    snprintf(args, sizeof args, "--data . %s --hidden 9", common);
    pt_expect_refused(args, "c.ck: config 'hidden' is '8' in the checkpoint, '9' in this run");
    snprintf(args, sizeof args, "--data . %s --cell gru", common);
    pt_expect_refused(args, "c.ck: config 'cell' is 'lstm' in the checkpoint, 'gru' in this run");
    snprintf(args, sizeof args, "--data . %s --layers 1", common);
    pt_expect_refused(args, "c.ck: config 'layers' is '2' in the checkpoint, '1' in this run");
    snprintf(args, sizeof args, "--data . %s --dropout 0", common);
    pt_expect_refused(args, "c.ck: config 'dropout' is '0.29999999999999999' in the checkpoint, "
                      "'0' in this run");
    snprintf(args, sizeof args, "--data . %s --optim sgd", common);
    pt_expect_refused(args, "c.ck: config 'optim' is 'adam' in the checkpoint, 'sgd' in this run");
    snprintf(args, sizeof args, "--data . %s --batch 16", common);
    pt_expect_refused(args, "c.ck: config 'batch' is '32' in the checkpoint, '16' in this run");
    snprintf(args, sizeof args, "--data . %s --shards 1", common);
    pt_expect_refused(args, "c.ck: config 'shards' is '2' in the checkpoint, '1' in this run");
    /* the same count of images, other pixels and labels */
    snprintf(args, sizeof args, "--data other %s", common);
    pt_expect_refused(args, "c.ck: config 'train-data' is '320x28x28 fnv1a ");
    /* the first 300 images of the same files */
    snprintf(args, sizeof args, "--data . %s --limit-train 300", common);
    pt_expect_refused(args, "in the checkpoint, '300x28x28 fnv1a ");
    /* settings may change: another --lr or test set is used, not refused */
    cr_assert_eq(pt_runf("--data . %s --lr 0.001 --limit-test 50", common), 0, "%s", pt_err);
    cr_assert(strstr(pt_result_line(), " steps=5 "), "%s", pt_result_line());
}

/* Without --data a resume reads the folder the run was trained on
 * (recorded in the checkpoint); when it is gone, the refusal names the
 * checkpoint and the folder. */
Test(rowseq_resume, without_data_the_runs_folder_is_taken)
{
    const char *model = "--hidden 8 --batch 32 --epochs 1";
    cr_assert_eq(pt_runf("--data other %s --save full.st", model), 0, "%s", pt_err);
    cr_assert_eq(pt_runf("--data other %s --steps 4 --checkpoint c.ck", model), 0, "%s", pt_err);
    pt_expect_meta("c.ck", "info.data", "other");
    cr_assert_eq(pt_run("--resume c.ck --steps 0 --save split.st"), 0, "%s", pt_err);
    cr_assert(strstr(pt_result_line(), " steps=10 "), "%s", pt_result_line());
    pt_expect_same_bytes("full.st", "split.st");

    char from[sizeof pt_dir + 16], to[sizeof pt_dir + 16];
    pt_path("other", from, sizeof from);
    pt_path("moved", to, sizeof to);
    cr_assert_eq(rename(from, to), 0);
    pt_expect_refused("--resume c.ck --checkpoint c.ck --steps 6",
                      "rowseq: c.ck: cannot read the run's data (taken from the checkpoint): "
                      "other: neither train-images-idx3-ubyte nor train-images-idx3-ubyte.gz "
                      "found");
    cr_assert_eq(pt_run("--data moved --resume c.ck --checkpoint c.ck --steps 6"), 0, "%s",
                 pt_err);
}

/* --save, --log and --checkpoint that cannot be written fail at start-up:
 * one line, before the data is read or a step is trained. */
Test(rowseq_resume, output_paths_are_checked_before_training)
{
    pt_expect_outputs_checked("rowseq", MODEL " --steps 2", "other");
}

Test(rowseq_resume, a_truncated_checkpoint_exits_1_and_stays_as_it_was)
{
    cr_assert_eq(pt_runf("%s --steps 3 --checkpoint good.ck", MODEL), 0, "%s", pt_err);
    size_t n;
    char *good = pt_read("good.ck", &n);
    const size_t cuts[] = {0, 7, 8, 100, n / 2, n - 1};
    for (size_t i = 0; i < sizeof cuts / sizeof cuts[0]; i++) {
        pt_write("c.ck", good, cuts[i]);
        pt_expect_refused("--data . --resume c.ck --checkpoint c.ck --steps 5", "c.ck");
    }
    free(good);
}

Test(rowseq_resume, not_a_training_checkpoint)
{
    cr_assert_eq(pt_runf("%s --epochs 1 --save model.st", MODEL), 0, "%s", pt_err);
    cr_assert_eq(pt_run("--data . --resume model.st --steps 3"), 1);
    pt_expect_one_line("model.st: not a training checkpoint");
    cr_assert_eq(pt_run("--data . --resume missing.ck"), 1);
    pt_expect_one_line("missing.ck");
}

/* An output never replaces a training checkpoint, another run's or the
 * --load file: --save left a model in its place, --log a CSV, and the
 * run's state was lost. Refused at start-up, exit 2, the file untouched. */
Test(rowseq_resume, an_output_never_replaces_a_training_checkpoint)
{
    cr_assert_eq(pt_runf("%s --steps 2 --checkpoint c.ck", MODEL), 0, "%s", pt_err);
    pt_copy("c.ck", "c0.ck");
    cr_assert_eq(pt_runf("%s --steps 2 --save c.ck", MODEL), 2, "%s", pt_err);
    pt_expect_one_line("rowseq: --save c.ck: that file is a training checkpoint (continue it "
                       "with --resume); --save would replace it with a model file, without the "
                       "run's state: name another file or remove it");
    cr_assert_eq(pt_out[0], 0, "trained before refusing: %s", pt_out);
    cr_assert_eq(pt_run("--data . --load c.ck --steps 2 --save ./c.ck"), 2, "%s", pt_err);
    pt_expect_one_line("--save ./c.ck: that file is a training checkpoint");
    cr_assert_eq(pt_runf("%s --steps 2 --log c.ck", MODEL), 2, "%s", pt_err);
    pt_expect_one_line("--log c.ck: that file is a training checkpoint");
    pt_expect_same_bytes("c.ck", "c0.ck");
}

Test(rowseq_resume, the_checkpoint_path_is_checked_before_training)
{
    cr_assert_eq(pt_runf("%s --steps 2 --checkpoint no/such/dir/c.ck", MODEL), 1);
    pt_expect_one_line("--checkpoint no/such/dir/c.ck: directory 'no/such/dir': No such file or "
                       "directory");
    cr_assert_eq(pt_out[0], 0, "trained before failing: %s", pt_out);
    cr_assert_eq(pt_runf("%s --steps 2 --checkpoint other", MODEL), 1);
    pt_expect_one_line("--checkpoint other: is a directory");
    /* a fresh run never overwrites an earlier run's checkpoint */
    cr_assert_eq(pt_runf("%s --steps 2 --checkpoint c.ck", MODEL), 0, "%s", pt_err);
    char args[512];
    snprintf(args, sizeof args, "%s --steps 2 --checkpoint c.ck", MODEL);
    pt_expect_refused(args,
                      "--checkpoint c.ck already exists: continue that run with --resume c.ck");
    size_t n;
    char *copy = pt_read("c.ck", &n); /* another file, though equal */
    pt_write("other.ck", copy, n);
    free(copy);
    pt_expect_refused("--data . --steps 3 --checkpoint c.ck --resume other.ck",
                      "--checkpoint c.ck already exists");
}

Test(rowseq_resume, usage_errors_exit_2)
{
    cr_assert_eq(pt_run("--every 5"), 2);
    pt_expect_one_line("--every needs --checkpoint FILE");
    cr_assert_eq(pt_run("--resume a.ck --load b.st"), 2);
    pt_expect_one_line("--resume and --load exclude each other");
    cr_assert_eq(pt_run("--checkpoint x.st --save x.st"), 2);
    pt_expect_one_line("--checkpoint and --save name the same file x.st");
    cr_assert_eq(pt_run("--every -1"), 2);
    cr_assert_eq(pt_run("--steps x"), 2);
    cr_assert_eq(pt_run_env("ROWSEQ_FAULT_STEP=x", "--data . --epochs 1"), 2);
    pt_expect_one_line("ROWSEQ_FAULT_STEP: expected a step number");
}

Test(rowseq_resume, load_takes_a_training_checkpoint)
{
    cr_assert_eq(pt_runf("%s --epochs 1 --checkpoint c.ck --save m.st", MODEL), 0, "%s", pt_err);
    char a[64], b[64];
    cr_assert_eq(pt_run("--data . --load m.st --epochs 0"), 0, "%s", pt_err);
    pt_result_value("test_acc", a, sizeof a);
    static char report[sizeof pt_out];
    memcpy(report, pt_out, (size_t)(pt_result_line() - pt_out));
    cr_assert_eq(pt_run("--data . --load c.ck --epochs 0 --cell gru"), 2); /* it is an lstm */
    pt_expect_one_line("--cell gru does not match the model c.ck (cell=lstm); leave it out to "
                       "use the model's");
    cr_assert_eq(pt_run("--data . --load c.ck --epochs 0"), 0, "%s", pt_err);
    pt_result_value("test_acc", b, sizeof b);
    cr_assert_str_eq(a, b, "the same model evaluates the same");
    pt_out[pt_result_line() - pt_out] = '\0';
    cr_assert_str_eq(report, pt_out, "the same confusion matrix");
    cr_assert(strstr(pt_err, "lstm 2x8"), "architecture not taken from c.ck: %s", pt_err);
}

/* ------------------------------------------------------------------ non-finite steps */

Test(rowseq_resume, a_nonfinite_gradient_stops_and_keeps_the_last_checkpoint)
{
    cr_assert_eq(pt_run_env("ROWSEQ_FAULT_STEP=4", MODEL " --threads 1 --checkpoint c.ck --every 1 "
                            "--save bad.st"), 1);
    cr_assert(strstr(pt_err, "\nrowseq: step 4: gradient of 'rnn.l0.weight_ih'[0] is not finite; "
                     "stopping, last checkpoint kept (try a smaller --lr or --clip, or "
                     "--skip-nonfinite)\n"), "%s", pt_err);
    cr_assert_not(pt_exists("bad.st"), "--save written after a non-finite step");
    pt_expect_meta("c.ck", "u64.step", "3");
    /* the kept checkpoint is the good state of step 3: resuming it without
     * the fault gives exactly the clean run */
    cr_assert_eq(pt_run("--data . --resume c.ck --checkpoint c.ck --save resumed.st"), 0, "%s",
                 pt_err);
    cr_assert(strstr(pt_result_line(), " steps=30 "), "%s", pt_result_line());
    cr_assert_eq(pt_runf("%s --save clean.st", MODEL), 0, "%s", pt_err);
    pt_expect_same_bytes("clean.st", "resumed.st");
}

Test(rowseq_resume, skip_nonfinite_skips_the_update)
{
    cr_assert_eq(pt_run_env("ROWSEQ_FAULT_STEP=2", MODEL " --steps 4 --skip-nonfinite "
                            "--checkpoint c.ck"), 0, "%s", pt_err);
    cr_assert(strstr(pt_err, "\nrowseq: step 2: gradient of 'rnn.l0.weight_ih'[0] is not finite; "
                     "step skipped (--skip-nonfinite)\n"), "%s", pt_err);
    cr_assert(strstr(pt_result_line(), " steps=4 ") && strstr(pt_result_line(), " skipped=1"), "%s",
              pt_result_line());
    pt_expect_meta("c.ck", "optim.steps", "3"); /* 3 updates in 4 steps */
    pt_expect_meta("c.ck", "u64.skipped", "1");
    pt_expect_meta("c.ck", "u64.epoch_pos", "128"); /* the skipped batch is consumed */
}

/* ------------------------------------------------------------------ signals */

/* SIGTERM in the middle of a run: training stops after the current step,
 * the test set is evaluated, the checkpoint holds that step, and the run
 * resumes from it. */
Test(rowseq_resume, sigterm_stops_cleanly_with_a_checkpoint)
{
    const char *exe = getenv("ROWSEQ_EXE");
    cr_assert_not_null(exe);
    char cmd[8192];
    snprintf(cmd, sizeof cmd, "cd '%s' && exec '%s' %s --threads 1 --epochs 100000 "
             "--checkpoint c.ck --every 1 > stdout 2> stderr", pt_dir, exe, MODEL);
    pid_t pid = fork();
    cr_assert_neq(pid, -1);
    if (pid == 0) {
        execl("/bin/sh", "sh", "-c", cmd, (char *)NULL);
        _exit(127);
    }
    /* the first checkpoint exists only once the handlers are in place */
    struct timespec tick = {0, 10 * 1000 * 1000};
    for (int i = 0; i < 6000 && !pt_exists("c.ck"); i++) nanosleep(&tick, NULL);
    cr_assert(pt_exists("c.ck"), "no checkpoint after 60 s");
    cr_assert_eq(kill(pid, SIGTERM), 0);
    int st;
    cr_assert_eq(waitpid(pid, &st, 0), pid);
    char op[1200], ep[1200];
    pt_path("stdout", op, sizeof op);
    pt_path("stderr", ep, sizeof ep);
    pt_slurp(op, pt_out, sizeof pt_out);
    pt_slurp(ep, pt_err, sizeof pt_err);
    cr_assert(WIFEXITED(st) && WEXITSTATUS(st) == 0, "status %d: %s", st, pt_err);
    char steps[32], line[128];
    pt_result_value("steps", steps, sizeof steps);
    snprintf(line, sizeof line, "rowseq: interrupted at step %s\n", steps);
    cr_assert(strstr(pt_err, line), "%s", pt_err);
    pt_expect_meta("c.ck", "u64.step", steps);
    int n = atoi(steps);
    cr_assert_eq(pt_runf("--data . --resume c.ck --checkpoint c.ck --steps %d", n + 3), 0, "%s",
                 pt_err);
    snprintf(line, sizeof line, " steps=%d ", n + 3);
    cr_assert(strstr(pt_result_line(), line), "%s", pt_result_line());
}
