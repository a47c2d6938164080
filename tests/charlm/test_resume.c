/* charlm's training checkpoints end to end (--checkpoint, --every,
 * --resume, --skip-nonfinite): N steps, resume, M more gives bitwise the
 * parameters, optimizer moments, generators, data position and carried
 * state of N+M steps in one run, for every optimizer, with two shards and
 * dropout; a resume that does not match names the field and exits 1; a
 * truncated checkpoint exits 1 and stays as it was; a bad checkpoint path
 * fails before training; a non-finite gradient stops the run keeping the
 * last good checkpoint, or is skipped. CHARLM_EXE is the program. */
#include <criterion/criterion.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "progtest.h"

static void setup(void) { pt_setup("CHARLM_EXE", "charlm_resume"); }

TestSuite(charlm_resume, .init = setup, .fini = pt_teardown, .timeout = 120);

/* Every metadata entry of the loop's state that must be equal after an
 * exact resume (train_seconds is wall-clock time, so it is not). */
static const char *const STATE_KEYS[] = {
    "optim.kind", "optim.steps", "u64.step", "u64.data_pos", "u64.skipped", "u64.skip_streak",
    "rng.dropout.0", "rng.dropout.1", "f64.last_loss", "f64.recent_loss", "config.vocab",
    "f64.best_valid_bpc", "u64.best_step", NULL,
};

/* 17 characters a line, 20 lines: 323 training characters, so 4 streams of
 * 80 and 5 windows of 16 per pass (the text wraps after steps 5 and 10).
 * swap: "olleh" for "hello", the same vocabulary in another text. */
static void write_korean(const char *name, int swap)
{
    char line[64], text[4096] = "";
    snprintf(line, sizeof line, "\xEA\xB0\x80\xEB\x82\x98\xEB\x8B\xA4 %s "
             "\xEC\x95\x88\xEB\x85\x95\xED\x95\x98\xEC\x84\xB8\xEC\x9A\x94.\n",
             swap ? "olleh" : "hello");
    for (int i = 0; i < 20; i++) strcat(text, line);
    pt_write(name, text, strlen(text));
}

/* Two shards, two layers, dropout: every piece of state a step reads. */
#define MODEL "--text ko.txt --hidden 16 --embed 8 --layers 2 --dropout 0.3 --batch 4 " \
              "--seq-len 16 --shards 2 --threads 2"

/* ------------------------------------------------------------------ exact resume */

/* 12 steps in one run (evaluating every 4: evaluation must not disturb
 * training) against 7 steps, then a resume to 12 that gives only --text:
 * the rest comes from the checkpoint. Step 7 is mid-pass, so the carried
 * state is not zero there; the resumed part crosses the wrap after step 10.
 * crash: the first part is a 12-step run that dies at step 8 (a NaN
 * gradient), its last checkpoint at step 7 — a schedule over --steps (cosine)
 * needs the same --steps from the start. */
static void expect_exact_resume(const char *optim, int crash)
{
    char a[64], b[64];
    write_korean("ko.txt", 0);
    cr_assert_eq(pt_runf("%s %s --steps 12 --eval-every 4 --checkpoint full.ck --every 0 "
                         "--save full.st --log full.csv", MODEL, optim), 0, "%s", pt_err);
    pt_result_value("train_bpc", a, sizeof a);
    char args[1024];
    if (crash) {
        snprintf(args, sizeof args, "%s %s --steps 12 --eval-every 4 --checkpoint part.ck "
                 "--every 1 --log part.csv", MODEL, optim);
        cr_assert_eq(pt_run_env("CHARLM_FAULT_STEP=8", args), 1, "%s", pt_err);
    } else {
        snprintf(args, sizeof args, "%s %s --steps 7 --eval-every 4 --checkpoint part.ck "
                 "--every 2 --log part.csv", MODEL, optim);
        cr_assert_eq(pt_run(args), 0, "%s", pt_err);
        cr_assert(strstr(pt_result_line(), " steps=7 "), "%s", pt_result_line());
    }
    cr_assert_eq(pt_run("--text ko.txt --threads 1 --resume part.ck --checkpoint part.ck "
                        "--steps 12 --save split.st --log part.csv"), 0, "%s", pt_err);
    cr_assert(strstr(pt_err, "resumed part.ck at step 7"), "%s", pt_err);
    cr_assert(strstr(pt_result_line(), " steps=12 "), "%s", pt_result_line());
    pt_result_value("train_bpc", b, sizeof b);
    cr_assert_str_eq(a, b, "running average of the loss differs");
    pt_expect_same_bytes("full.st", "split.st");
    pt_expect_same_state("full.ck", "part.ck", STATE_KEYS);
    cr_assert_eq(pt_count_lines("part.csv"), pt_count_lines("full.csv"), "the resumed log appends");
}

Test(charlm_resume, exact_with_sgd) { expect_exact_resume("--optim sgd --lr 0.5", 0); }
Test(charlm_resume, exact_with_momentum) { expect_exact_resume("--optim momentum", 0); }
Test(charlm_resume, exact_with_sgd_momentum_flag)
{
    expect_exact_resume("--optim sgd --momentum 0.5 --weight-decay 0.001", 0);
}
Test(charlm_resume, exact_with_adam) { expect_exact_resume("--optim adam --lr 0.01", 0); }
Test(charlm_resume, exact_with_adamw) { expect_exact_resume("--optim adamw", 0); }
Test(charlm_resume, exact_after_a_crash_with_adamw_cosine)
{
    expect_exact_resume("--optim adamw --schedule cosine --warmup 3 --clip 0.5", 1);
}

Test(charlm_resume, steps_count_from_the_start_of_the_run)
{
    write_korean("ko.txt", 0);
    cr_assert_eq(pt_runf("%s --steps 4 --checkpoint c.ck", MODEL), 0, "%s", pt_err);
    size_t n0, n1;
    char *before = pt_read("c.ck", &n0);
    cr_assert_eq(pt_run("--text ko.txt --resume c.ck --steps 3"), 0, "%s", pt_err);
    cr_assert(strstr(pt_err, "already at step 4 of --steps 3: nothing to train"), "%s", pt_err);
    cr_assert(strstr(pt_result_line(), " steps=4 "), "%s", pt_result_line());
    char *after = pt_read("c.ck", &n1); /* no --checkpoint: only read */
    cr_assert(n0 == n1 && memcmp(before, after, n0) == 0);
    free(before);
    free(after);
    /* without --steps the run's own total (4) is inherited */
    cr_assert_eq(pt_run("--text ko.txt --resume c.ck"), 0, "%s", pt_err);
    cr_assert(strstr(pt_result_line(), " steps=4 "), "%s", pt_result_line());
}

/* A run stopped after --save kept a model and before its next checkpoint
 * leaves a file better than the checkpoint knows: resumed from that
 * checkpoint the run keeps the file unless it does better, with nothing to
 * train, with --lr 0 up to the kept model's own step (whose final model is
 * another one: helper-41), and past it (helper-40: the final model of a
 * resume replaced a better kept one). The second run stands in for the
 * stopped one. A file of another configuration is not taken for the run's. */
Test(charlm_resume, a_kept_model_newer_than_the_checkpoint_stays_unless_beaten)
{
    write_korean("ko.txt", 0);
    cr_assert_eq(pt_runf("%s --optim adam --lr 0.01 --steps 10 --checkpoint c.ck --every 0", MODEL),
                 0, "%s", pt_err);
    pt_copy("c.ck", "c10.ck");
    cr_assert_eq(pt_run("--text ko.txt --resume c.ck --checkpoint c.ck --steps 40 --eval-every 5 "
                        "--save s.st"), 0, "%s", pt_err);
    char kept[64], step[64], after[64], want[128];
    pt_meta_of("s.st", "kept.valid_bpc", kept, sizeof kept);
    pt_meta_of("s.st", "kept.step", step, sizeof step);
    cr_assert(atoi(step) > 10 && atoi(step) <= 40, "kept.step %s", step);
    snprintf(want, sizeof want, "s.st holds the model kept at step %s (valid_bpc ", step);
    const char *const runs[] = {"--steps 10", "--lr 0 --eval-every 5 --steps 40", NULL};
    char args[256];
    for (int i = 0; i < 3; i++) {
        pt_copy("c10.ck", "r.ck");
        snprintf(args, sizeof args, "--text ko.txt --resume r.ck --checkpoint r.ck --save s.st %s",
                 runs[i] ? runs[i] : "--lr 0 --eval-every 5 --steps ");
        if (!runs[i]) strncat(args, step, sizeof args - strlen(args) - 1);
        cr_assert_eq(pt_run(args), 0, "%s", pt_err);
        cr_assert(strstr(pt_err, want), "%s: %s", args, pt_err);
        pt_meta_of("s.st", "kept.valid_bpc", after, sizeof after);
        cr_assert(strtod(after, NULL) <= strtod(kept, NULL), "%s: kept %s bpc replaced by %s",
                  args, kept, after);
        if (strcmp(after, kept) == 0) pt_expect_meta("s.st", "kept.step", step);
    }
    /* another configuration's kept model: not this run's, not compared against */
    cr_assert_eq(pt_run("--text ko.txt --hidden 24 --embed 8 --batch 4 --seq-len 16 --steps 20 "
                        "--eval-every 10 --save o.st"), 0, "%s", pt_err);
    pt_copy("c10.ck", "r.ck");
    cr_assert_eq(pt_run("--text ko.txt --resume r.ck --checkpoint r.ck --steps 12 --save o.st"), 0,
                 "%s", pt_err);
    cr_assert_null(strstr(pt_err, "holds the model kept"), "%s", pt_err);
}

/* ------------------------------------------------------------------ refusals */

Test(charlm_resume, a_mismatch_exits_1_naming_the_field)
{
    write_korean("ko.txt", 0);
    write_korean("swapped.txt", 1);
    char latin[4096] = "";
    for (int i = 0; i < 30; i++) strcat(latin, "the quick brown fox.\n");
    pt_write("latin.txt", latin, strlen(latin));
    cr_assert_eq(pt_runf("%s --steps 3 --checkpoint c.ck", MODEL), 0, "%s", pt_err);
    const char *common = "--resume c.ck --checkpoint c.ck --steps 5";
    char args[512];
    snprintf(args, sizeof args, "--text ko.txt %s --hidden 17", common);
    pt_expect_refused(args, "c.ck: config 'hidden' is '16' in the checkpoint, '17' in this run");
    snprintf(args, sizeof args, "--text ko.txt %s --cell gru", common);
    pt_expect_refused(args, "c.ck: config 'cell' is 'lstm' in the checkpoint, 'gru' in this run");
    snprintf(args, sizeof args, "--text latin.txt %s", common);
    pt_expect_refused(args, "c.ck: config 'vocab' differs from this run's");
    snprintf(args, sizeof args, "--text swapped.txt %s", common);
    pt_expect_refused(args, "c.ck: config 'text' is '340 characters, fnv1a ");
    snprintf(args, sizeof args, "--text ko.txt %s --shards 1", common);
    pt_expect_refused(args, "c.ck: config 'shards' is '2' in the checkpoint, '1' in this run");
    snprintf(args, sizeof args, "--text ko.txt %s --optim sgd", common);
    pt_expect_refused(args, "c.ck: config 'optim' is 'adam' in the checkpoint, 'sgd' in this run");
    snprintf(args, sizeof args, "--text ko.txt %s --seq-len 8", common);
    pt_expect_refused(args, "c.ck: config 'seq-len' is '16' in the checkpoint, '8' in this run");
    /* settings may change: a different --lr is used, not refused */
    cr_assert_eq(pt_runf("--text ko.txt %s --lr 0.001", common), 0, "%s", pt_err);
}

Test(charlm_resume, a_truncated_checkpoint_exits_1_and_stays_as_it_was)
{
    write_korean("ko.txt", 0);
    cr_assert_eq(pt_runf("%s --steps 3 --checkpoint good.ck", MODEL), 0, "%s", pt_err);
    size_t n;
    char *good = pt_read("good.ck", &n);
    const size_t cuts[] = {0, 7, 8, 100, n / 2, n - 1};
    for (size_t i = 0; i < sizeof cuts / sizeof cuts[0]; i++) {
        pt_write("c.ck", good, cuts[i]);
        pt_expect_refused("--text ko.txt --resume c.ck --checkpoint c.ck --steps 5", "c.ck");
    }
    free(good);
}

Test(charlm_resume, not_a_training_checkpoint)
{
    write_korean("ko.txt", 0);
    cr_assert_eq(pt_runf("%s --steps 2 --save model.st", MODEL), 0, "%s", pt_err);
    cr_assert_eq(pt_run("--text ko.txt --resume model.st --steps 3"), 1);
    pt_expect_one_line("model.st: not a training checkpoint");
    cr_assert_eq(pt_run("--text ko.txt --resume missing.ck"), 1);
    pt_expect_one_line("missing.ck");
}

Test(charlm_resume, the_checkpoint_path_is_checked_before_training)
{
    write_korean("ko.txt", 0);
    cr_assert_eq(pt_runf("%s --steps 2 --checkpoint no/such/dir/c.ck", MODEL), 1);
    pt_expect_one_line("--checkpoint no/such/dir/c.ck: directory 'no/such/dir': No such file or "
                       "directory");
    cr_assert_eq(pt_runf("%s --steps 2 --checkpoint .", MODEL), 1);
    pt_expect_one_line("--checkpoint .: is a directory");
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
    snprintf(args, sizeof args, "--text ko.txt --steps 3 --checkpoint c.ck --resume other.ck");
    pt_expect_refused(args, "--checkpoint c.ck already exists");
}

Test(charlm_resume, usage_errors_exit_2)
{
    cr_assert_eq(pt_run("--every 5"), 2);
    pt_expect_one_line("--every needs --checkpoint FILE");
    cr_assert_eq(pt_run("--resume a.ck --load b.st"), 2);
    pt_expect_one_line("--resume and --load exclude each other");
    cr_assert_eq(pt_run("--checkpoint x.st --save x.st"), 2);
    pt_expect_one_line("--checkpoint and --save name the same file x.st");
    cr_assert_eq(pt_run("--optim adam --momentum 0.9"), 2);
    pt_expect_one_line("--momentum is for --optim sgd or momentum");
    cr_assert_eq(pt_run("--every -1"), 2);
    cr_assert_eq(pt_run_env("CHARLM_FAULT_STEP=x", "--steps 1"), 2);
    pt_expect_one_line("CHARLM_FAULT_STEP: expected a step number");
}

/* An output never lands on another file of the run: --log, --save,
 * --export-torch or --checkpoint naming an input (the --resume or --load
 * file, the text) or another output is refused before any work, exit 2,
 * the file untouched, whatever the spelling ("./m.st", a link); the two
 * shares a run means (--checkpoint on its --resume file, --save on its
 * --load file) still go on. */
Test(charlm_resume, an_output_never_overwrites_another_file_of_the_run)
{
    write_korean("ko.txt", 0);
    cr_assert_eq(pt_runf("%s --steps 3 --checkpoint c.ck --save m.st", MODEL), 0, "%s", pt_err);
    static const char *const kept[][2] = {{"c.ck", "c0.ck"}, {"m.st", "m0.st"}, {"ko.txt", "ko0.txt"}};
    for (int i = 0; i < 3; i++) pt_copy(kept[i][0], kept[i][1]);
    char link[sizeof pt_dir + 16];
    pt_path("link.st", link, sizeof link);
    cr_assert_eq(symlink("m.st", link), 0); /* a link to m.st beside it */
    static const struct {
        const char *args, *said;
    } refused[] = {
        {"--resume c.ck --steps 6 --log c.ck", "--log c.ck would overwrite --resume c.ck (one file)"},
        {"--resume c.ck --steps 6 --save ./c.ck", "--save ./c.ck would overwrite --resume c.ck"},
        {"--text ko.txt --load m.st --steps 1 --log ./m.st", "--log ./m.st would overwrite --load m.st"},
        {"--text ko.txt --load link.st --steps 1 --export-torch m.st",
         "--export-torch m.st would overwrite --load link.st"},
        {"--text ko.txt --steps 1 --log ko.txt", "--log ko.txt would overwrite --text ko.txt"},
        {"--text ko.txt --steps 1 --checkpoint n.ck --export-torch ./n.ck",
         "--checkpoint n.ck and --export-torch ./n.ck are one file: one output would overwrite "
         "the other"},
    };
    for (size_t i = 0; i < sizeof refused / sizeof *refused; i++) {
        cr_assert_eq(pt_run(refused[i].args), 2, "%s: %s", refused[i].args, pt_err);
        pt_expect_one_line(refused[i].said);
    }
    for (int i = 0; i < 3; i++) pt_expect_same_bytes(kept[i][0], kept[i][1]);
    cr_assert_not(pt_exists("n.ck"));
    cr_assert_eq(pt_runf("%s --resume c.ck --checkpoint c.ck --steps 4", MODEL), 0, "%s", pt_err);
    cr_assert_eq(pt_run("--text ko.txt --batch 4 --seq-len 16 --load m.st --save m.st --steps 1"),
                 0, "%s", pt_err);
}

/* An output never replaces a training checkpoint, another run's or the
 * --load file: --save left a model file in its place, --log a CSV, and the
 * run's state (optimizer, data position, generators) was lost. Refused at
 * start-up, exit 2, the file untouched; --save over a model file goes on. */
Test(charlm_resume, an_output_never_replaces_a_training_checkpoint)
{
    write_korean("ko.txt", 0);
    cr_assert_eq(pt_runf("%s --steps 3 --checkpoint c.ck --save m.st", MODEL), 0, "%s", pt_err);
    pt_copy("c.ck", "c0.ck");
    static const struct {
        const char *args, *said;
    } refused[] = {
        {MODEL " --steps 1 --save c.ck",
         "charlm: --save c.ck: that file is a training checkpoint (continue it with --resume); "
         "--save would replace it with a model file, without the run's state: name another "
         "file or remove it"},
        {"--text ko.txt --batch 4 --seq-len 16 --load c.ck --steps 1 --save ./c.ck",
         "--save ./c.ck: that file is a training checkpoint"},
        {MODEL " --steps 1 --log c.ck", "--log c.ck: that file is a training checkpoint"},
        {MODEL " --steps 1 --export-torch c.ck",
         "--export-torch c.ck: that file is a training checkpoint"},
    };
    for (size_t i = 0; i < sizeof refused / sizeof *refused; i++) {
        cr_assert_eq(pt_run(refused[i].args), 2, "%s: %s", refused[i].args, pt_err);
        pt_expect_one_line(refused[i].said);
        cr_assert_eq(pt_out[0], 0, "trained before refusing: %s", pt_out);
    }
    pt_expect_same_bytes("c.ck", "c0.ck");
    cr_assert_eq(pt_run("--text ko.txt --batch 4 --seq-len 16 --steps 1 --save m.st"), 0, "%s",
                 pt_err);
}

/* A --log whose reader leaves (a pipe to `head -n 2`) fails its writes:
 * the run stops at the next step, writes its checkpoint and says so, exit
 * 1, where SIGPIPE killed it silently (exit 141) without the checkpoint
 * (and then it went on to its end, every row lost). A
 * row a step, 2000 rows: more than a pipe holds (64 KiB), so a write
 * finds the reader gone however late it leaves. */
Test(charlm_resume, a_log_reader_that_leaves_does_not_kill_the_run)
{
    write_korean("ko.txt", 0);
    char fifo[sizeof pt_dir + 16];
    pt_path("log.fifo", fifo, sizeof fifo);
    cr_assert_eq(mkfifo(fifo, 0600), 0);
    /* the reader starts in the run's folder (pt_run's "cd DIR &&"), then the run */
    int rc = pt_run_env("{ head -n 2 log.fifo >/dev/null & } ;",
                        "--text ko.txt --hidden 8 --embed 4 --batch 4 --seq-len 16 --steps 2000 "
                        "--eval-every 1000 --checkpoint c.ck --every 0 --log log.fifo "
                        "--save m.st");
    cr_assert_eq(rc, 1, "%s", pt_err);
    cr_assert(!strstr(pt_err, "at step 2000"), "ran to its end: %s", pt_err);
    cr_assert(strstr(pt_err, "charlm: --log log.fifo: write error: Broken pipe; training stopped "
                     "at step "), "%s", pt_err);
    cr_assert(pt_exists("c.ck"));
    cr_assert(pt_exists("m.st"), "the stop lost --save: %s", pt_err); /* the model trained so far */
}

/* Two runs at once on one --checkpoint: the second is refused while the
 * first holds FILE.lock (both ran, each overwrote the other's saves and
 * both said "checkpoint FILE at step N"); the first ends as usual and
 * removes its lock. */
Test(charlm_resume, a_second_run_on_the_same_checkpoint_is_refused)
{
    write_korean("ko.txt", 0);
    char cmd[sizeof pt_dir * 2 + 512], lock[sizeof pt_dir + 16], pidfile[sizeof pt_dir + 16];
    pt_path("c.ck.lock", lock, sizeof lock);
    pt_path("first.pid", pidfile, sizeof pidfile);
    snprintf(cmd, sizeof cmd, "cd '%s' && { '%s' --text ko.txt --hidden 8 --embed 4 --batch 4 "
             "--seq-len 16 --steps 0 --seconds 60 --checkpoint c.ck --every 0 >/dev/null "
             "2>first.err & echo $! > first.pid; }", pt_dir, getenv("CHARLM_EXE"));
    cr_assert_eq(system(cmd), 0);
    const struct timespec tick = {0, 50000000}; /* 50 ms */
    int waited = 0;
    while (access(lock, F_OK) != 0 && waited++ < 600) nanosleep(&tick, NULL); /* its start-up */
    cr_assert_eq(access(lock, F_OK), 0, "the first run holds no lock");
    int rc = pt_run("--text ko.txt --hidden 8 --embed 4 --batch 4 --seq-len 16 --steps 3 "
                    "--checkpoint c.ck");
    char pid_text[32] = "";
    pt_slurp(pidfile, pid_text, sizeof pid_text);
    pid_t first = (pid_t)atol(pid_text);
    cr_assert_gt(first, 0);
    kill(first, SIGTERM); /* the first run: a checkpoint, then its end */
    for (waited = 0; kill(first, 0) == 0 && waited < 600; waited++) nanosleep(&tick, NULL);
    cr_assert_eq(rc, 1, "%s", pt_err);
    pt_expect_one_line("charlm: --checkpoint c.ck: another run is writing it (it holds "
                       "c.ck.lock): give this run another --checkpoint, or let that one end");
    cr_assert(pt_exists("c.ck"), "the first run's checkpoint");
    cr_assert_not(pt_exists("c.ck.lock"), "the lock outlived its run");
    /* a FILE.lock with data is someone's file, not a lock: refused, kept;
     * a --save of that name is not removed with the lock at the end */
    pt_write("d.ck.lock", "mine", 4);
    cr_assert_eq(pt_run("--text ko.txt --hidden 8 --embed 4 --batch 4 --seq-len 16 --steps 2 "
                        "--checkpoint d.ck"), 1, "%s", pt_err);
    pt_expect_one_line("charlm: --checkpoint d.ck: d.ck.lock holds data, so it is no lock a run "
                       "left: move it away");
    cr_assert(pt_exists("d.ck.lock") && !pt_exists("d.ck"));
    cr_assert_eq(pt_run("--text ko.txt --hidden 8 --embed 4 --batch 4 --seq-len 16 --steps 2 "
                        "--checkpoint e.ck --save e.ck.lock"), 0, "%s", pt_err);
    cr_assert(pt_exists("e.ck.lock"), "the --save file went with the lock");
}

/* Until the signals pid was sent are delivered (none pending in
 * /proc/PID/status): two sent at once would merge into one. */
static void wait_delivered(pid_t pid)
{
    const struct timespec tick = {0, 10000000}; /* 10 ms */
    char path[64], status[8192];
    snprintf(path, sizeof path, "/proc/%ld/status", (long)pid);
    for (int waited = 0; waited < 1000; waited++) {
        pt_slurp(path, status, sizeof status);
        if (strstr(status, "\nSigPnd:\t0000000000000000\n") &&
            strstr(status, "\nShdPnd:\t0000000000000000\n"))
            return;
        nanosleep(&tick, NULL);
    }
    cr_assert_fail("signals to %ld still pending after 10 s", (long)pid);
}

/* The resume of c.ck by the clock (a minute, no checkpoint until its
 * end), started in pt_dir, its stderr in resume.err; its pid. */
static pid_t start_resume(void)
{
    const char *exe = getenv("CHARLM_EXE");
    pid_t pid = fork();
    cr_assert_neq(pid, -1);
    if (pid == 0) {
        if (chdir(pt_dir) != 0 || !freopen("/dev/null", "w", stdout) ||
            !freopen("resume.err", "w", stderr))
            _exit(127);
        execl(exe, exe, "--resume", "c.ck", "--checkpoint", "c.ck", "--every", "0", "--seconds",
              "60", "--log", "log.csv", (char *)NULL);
        _exit(127);
    }
    return pid;
}

/* A second Ctrl-C during a checkpoint's write ends the run at once and
 * leaves no temporary file beside the checkpoint, which stays as it was.
 * Once the run trains (a row in its log: its handler is in place), its
 * temporary (FILE.tmp.PID) is made a FIFO this test reads nothing from:
 * the first Ctrl-C's final checkpoint, larger than a pipe holds, is held
 * inside its data. Under glibc's System V signal(), reset at the first
 * signal, the second found the default action and left the FIFO. */
Test(charlm_resume, a_second_interrupt_during_a_save_leaves_no_temporary)
{
    write_korean("ko.txt", 0);
    cr_assert_eq(pt_run("--text ko.txt --hidden 64 --embed 8 --batch 4 --seq-len 16 --steps 2 "
                        "--checkpoint c.ck"), 0, "%s", pt_err);
    pt_copy("c.ck", "before.ck");
    pid_t pid = start_resume();
    const struct timespec tick = {0, 10000000}; /* 10 ms */
    for (int waited = 0; waited < 6000 && !(pt_exists("log.csv") && pt_count_lines("log.csv") > 1);
         waited++)
        nanosleep(&tick, NULL);
    char tmp[sizeof pt_dir + 64], err_path[sizeof pt_dir + 16], err[4096];
    snprintf(tmp, sizeof tmp, "%s/c.ck.tmp.%ld", pt_dir, (long)pid);
    cr_assert_eq(mkfifo(tmp, 0600), 0);
    int rd = open(tmp, O_RDONLY | O_NONBLOCK);
    cr_assert_geq(rd, 0);
    kill(pid, SIGINT); /* noted: the run stops after its step and saves */
    wait_delivered(pid);
    struct pollfd in = {rd, POLLIN, 0};
    for (int waited = 0; waited < 600 && !(in.revents & POLLIN); waited++) poll(&in, 1, 100);
    kill(pid, SIGINT); /* ends it at once, inside the write */
    int st;
    cr_assert_eq(waitpid(pid, &st, 0), pid);
    close(rd);
    pt_path("resume.err", err_path, sizeof err_path);
    pt_slurp(err_path, err, sizeof err);
    cr_assert(in.revents & POLLIN, "the run never wrote its final checkpoint: %s", err);
    cr_assert(WIFSIGNALED(st) && WTERMSIG(st) == SIGINT, "status %#x: %s", st, err);
    cr_assert_neq(access(tmp, F_OK), 0, "the temporary %s was left", tmp);
    pt_expect_same_bytes("c.ck", "before.ck");
}

Test(charlm_resume, load_takes_a_training_checkpoint)
{
    write_korean("ko.txt", 0);
    cr_assert_eq(pt_runf("%s --steps 3 --checkpoint c.ck --save m.st", MODEL), 0, "%s", pt_err);
    char a[64], b[64];
    cr_assert_eq(pt_run("--text ko.txt --batch 4 --seq-len 16 --load m.st --steps 0 --sample 30"),
                 0, "%s", pt_err);
    pt_result_value("valid_bpc", a, sizeof a);
    static char sample[sizeof pt_out];
    memcpy(sample, pt_out, (size_t)(pt_result_line() - pt_out));
    cr_assert_eq(pt_run("--text ko.txt --batch 4 --seq-len 16 --load c.ck --steps 0 --sample 30"),
                 0, "%s", pt_err);
    pt_result_value("valid_bpc", b, sizeof b);
    cr_assert_str_eq(a, b, "the same model evaluates the same");
    pt_out[pt_result_line() - pt_out] = '\0';
    cr_assert_str_eq(sample, pt_out, "the same model samples the same");
}

/* ------------------------------------------------------------------ the best model */

/* Training on "abab..." with "aabb" held out: validation improves, then
 * worsens as the model learns the training pattern (best at step 15 of 40,
 * evaluating every 5). */
static void write_overfitting(void)
{
    char text[2048] = "";
    for (int i = 0; i < 600; i++) strcat(text, "ab");
    for (int i = 0; i < 40; i++) strcat(text, "aabb");
    pt_write("ab.txt", text, strlen(text));
}

#define AB "--text ab.txt --hidden 16 --embed 8 --batch 4 --seq-len 16 --valid-frac 0.1 " \
           "--eval-every 5"

/* The smallest valid_bpc of a --log (its last column), 6 decimals. */
static double best_in_log(const char *name)
{
    size_t len;
    char *log = pt_read(name, &len);
    double best = 1e300, v;
    cr_assert(log, "no %s", name);
    for (char *line = strchr(log, '\n'); line && line[1]; line = strchr(line + 1, '\n')) {
        char *end = strchr(line + 1, '\n'), *comma = line;
        for (char *p = line + 1; end && p < end; p++)
            if (*p == ',') comma = p;
        if (comma != line && comma[1] != '\n' && sscanf(comma + 1, "%lf", &v) == 1 && v < best)
            best = v;
    }
    free(log);
    return best;
}

Test(charlm_resume, save_keeps_the_best_model_by_validation_across_a_resume)
{
    write_overfitting();
    cr_assert_eq(pt_run(AB " --steps 40 --save best.st --export-torch best.torch.st --log a.csv"),
                 0, "%s", pt_err);
    cr_assert(strstr(pt_err, "charlm: kept best.st: the best model by validation, 0.9872 bpc at "
                     "step 15 (the final model's: 1.2878 bpc)"), "%s", pt_err);
    double best = best_in_log("a.csv");
    char v[64], want[64];
    /* the kept file holds the best model: it evaluates to the log's best */
    cr_assert_eq(pt_run("--text ab.txt --batch 4 --seq-len 16 --valid-frac 0.1 --load best.st"),
                 0, "%s", pt_err);
    pt_result_value("valid_bpc", v, sizeof v);
    snprintf(want, sizeof want, "%.4f", best);
    cr_assert_str_eq(v, want, "--save does not hold the best model");
    cr_assert_eq(pt_run("--text ab.txt --batch 4 --seq-len 16 --valid-frac 0.1 --import-torch "
                        "best.torch.st"), 0, "%s", pt_err);
    pt_result_value("valid_bpc", v, sizeof v);
    cr_assert_str_eq(v, want, "--export-torch does not hold the best model");
    /* the same run in two processes: the resumed one compares against the
     * best of the first (in the checkpoint), keeps its file, and the
     * checkpoint records the step */
    cr_assert_eq(pt_run(AB " --steps 20 --checkpoint c.ck --save split.st"), 0, "%s", pt_err);
    pt_expect_meta("c.ck", "u64.best_step", "15");
    cr_assert_eq(pt_run("--text ab.txt --resume c.ck --checkpoint c.ck --steps 40 --save "
                        "split.st"), 0, "%s", pt_err);
    cr_assert(strstr(pt_err, "kept split.st: the best model by validation, 0.9872 bpc at step 15"),
              "%s", pt_err);
    pt_expect_same_bytes("best.st", "split.st");
    /* --eval-every 0: the final model, as before */
    cr_assert_eq(pt_run(AB " --steps 40 --eval-every 0 --save final.st"), 0, "%s", pt_err);
    cr_assert(strstr(pt_err, "charlm: saved final.st"), "%s", pt_err);
}

/* The final model, better than every evaluated one, is what --save and
 * --export-torch keep when the last step is no --eval-every step (a
 * --seconds stop, or --steps off the grid): the file held step 10's model
 * and said "saved". */
Test(charlm_resume, the_final_model_is_saved_when_it_is_the_best)
{
    write_overfitting();
    cr_assert_eq(pt_run("--text ab.txt --hidden 16 --embed 8 --batch 4 --seq-len 16 --valid-frac "
                        "0.1 --eval-every 10 --lr 0.001 --steps 14 --save f.st --export-torch "
                        "f.torch.st --log f.csv"), 0, "%s", pt_err);
    cr_assert(strstr(pt_err, "charlm: saved f.st\n"), "%s", pt_err);
    char final[64], v[64];
    pt_result_value("valid_bpc", final, sizeof final);
    cr_assert_lt(strtod(final, NULL), best_in_log("f.csv"), "the final model is not the best: "
                 "%s against the log's best %g (the test needs it to be)", final,
                 best_in_log("f.csv"));
    cr_assert_eq(pt_run("--text ab.txt --batch 4 --seq-len 16 --valid-frac 0.1 --load f.st"), 0,
                 "%s", pt_err);
    pt_result_value("valid_bpc", v, sizeof v);
    cr_assert_str_eq(v, final, "--save holds an earlier model");
    cr_assert_eq(pt_run("--text ab.txt --batch 4 --seq-len 16 --valid-frac 0.1 --import-torch "
                        "f.torch.st"), 0, "%s", pt_err);
    pt_result_value("valid_bpc", v, sizeof v);
    cr_assert_str_eq(v, final, "--export-torch holds an earlier model");
}

/* ------------------------------------------------------------------ non-finite steps */

Test(charlm_resume, a_nonfinite_gradient_stops_and_keeps_the_last_checkpoint)
{
    write_korean("ko.txt", 0);
    cr_assert_eq(pt_run_env("CHARLM_FAULT_STEP=4", MODEL " --steps 6 --checkpoint c.ck --every 1 "
                            "--save bad.st"), 1);
    cr_assert(strstr(pt_err, "step 4: gradient of 'embed.weight'[0] is not finite; stopping, last "
                     "checkpoint kept"), "%s", pt_err);
    cr_assert_not(pt_exists("bad.st"), "--save written after a non-finite step");
    pt_st_file f = pt_st_read("c.ck");
    char step[32];
    pt_st_meta(&f, "u64.step", step, sizeof step);
    cr_assert_str_eq(step, "3");
    pt_st_free(&f);
    /* the kept checkpoint is the good state of step 3: resuming it without
     * the fault gives exactly the clean run */
    cr_assert_eq(pt_run("--text ko.txt --resume c.ck --checkpoint c.ck --save resumed.st"), 0, "%s",
                 pt_err);
    cr_assert(strstr(pt_result_line(), " steps=6 "), "%s", pt_result_line());
    cr_assert_eq(pt_runf("%s --steps 6 --save clean.st", MODEL), 0, "%s", pt_err);
    pt_expect_same_bytes("clean.st", "resumed.st");
}

Test(charlm_resume, skip_nonfinite_skips_the_update)
{
    write_korean("ko.txt", 0);
    cr_assert_eq(pt_run_env("CHARLM_FAULT_STEP=2", MODEL " --steps 4 --skip-nonfinite "
                            "--checkpoint c.ck --log s.csv"), 0, "%s", pt_err);
    /* the skipped step's row: no loss, bpc or norm (it repeated step 1's) */
    size_t len;
    char *log = pt_read("s.csv", &len), *row2 = strstr(log, "\n2,");
    cr_assert(row2, "%s", log);
    int commas = 0;
    const char *field = row2 + 1;
    for (; *field && *field != '\n' && commas < 3; field++) commas += *field == ',';
    cr_assert(!strncmp(field, ",,", 2), "row 2 has a loss: %.80s", row2 + 1);
    free(log);
    cr_assert(strstr(pt_err, "charlm: step 2: gradient of 'embed.weight'[0] is not finite; step "
                     "skipped (--skip-nonfinite)\n"), "%s", pt_err);
    cr_assert(strstr(pt_result_line(), " steps=4 ") && strstr(pt_result_line(), " skipped=1"), "%s",
              pt_result_line());
    pt_st_file f = pt_st_read("c.ck");
    char v[32];
    pt_st_meta(&f, "optim.steps", v, sizeof v);
    cr_assert_str_eq(v, "3", "3 updates in 4 steps");
    pt_st_meta(&f, "u64.skipped", v, sizeof v);
    cr_assert_str_eq(v, "1");
    pt_st_free(&f);
}

/* ------------------------------------------------------------------ the run's text, output paths */

/* Without --text a resume reads the text the run was trained on (recorded
 * in the checkpoint); when that file is gone or another text now, the
 * refusal names the checkpoint, the text and what differs. */
Test(charlm_resume, without_text_the_runs_text_is_taken)
{
    write_korean("ko.txt", 0);
    cr_assert_eq(pt_runf("%s --steps 6 --save full.st", MODEL), 0, "%s", pt_err);
    cr_assert_eq(pt_runf("%s --steps 3 --checkpoint c.ck", MODEL), 0, "%s", pt_err);
    pt_expect_meta("c.ck", "info.text", "ko.txt");
    cr_assert_eq(pt_run("--resume c.ck --steps 6 --save split.st"), 0, "%s", pt_err);
    cr_assert(strstr(pt_err, "charlm: ko.txt: 340 characters"), "%s", pt_err);
    pt_expect_same_bytes("full.st", "split.st");

    char from[sizeof pt_dir + 16], to[sizeof pt_dir + 16];
    pt_path("ko.txt", from, sizeof from);
    pt_path("moved.txt", to, sizeof to);
    cr_assert_eq(rename(from, to), 0);
    pt_expect_refused("--resume c.ck --checkpoint c.ck --steps 6",
                      "charlm: c.ck: cannot read the run's text (taken from the checkpoint): "
                      "ko.txt: No such file or directory; give --text FILE with the run's text");
    const char latin[] = "the quick brown fox.\nthe quick brown fox.\nthe quick brown fox.\n";
    pt_write("ko.txt", latin, strlen(latin));
    pt_expect_refused("--resume c.ck --checkpoint c.ck --steps 6",
                      "charlm: c.ck: the run's text ko.txt (taken from the checkpoint) has "
                      "changed: its vocabulary is ");
    write_korean("ko.txt", 1); /* the same characters in another order */
    pt_expect_refused("--resume c.ck --checkpoint c.ck --steps 6",
                      "charlm: c.ck: the run's text ko.txt (taken from the checkpoint) has "
                      "changed: 340 characters, fnv1a ");
    /* --text names the moved file */
    cr_assert_eq(pt_run("--text moved.txt --resume c.ck --checkpoint c.ck --steps 6 --save "
                        "moved.st"), 0, "%s", pt_err);
    pt_expect_same_bytes("full.st", "moved.st");
}

/* --save, --log and --checkpoint that cannot be written fail at start-up:
 * one line, before the text is described or a step is trained. */
Test(charlm_resume, output_paths_are_checked_before_training)
{
    write_korean("ko.txt", 0);
    pt_expect_outputs_checked("charlm", MODEL " --steps 2", ".");
}
