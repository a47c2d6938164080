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
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "idx_files.h"

static char dir[1024];
static char out[1 << 16], err[1 << 16];

/* 320 training images in batches of 32: 10 steps an epoch. */
static void setup(void)
{
    char other[1200];
    tmpdir_make(dir, sizeof dir);
    write_toy_split(dir, "train", 320, 1);
    write_toy_split(dir, "t10k", 100, 2);
    /* another data set of the same size: only its pixels and labels differ */
    snprintf(other, sizeof other, "%s/other", dir);
    cr_assert_eq(mkdir(other, 0700), 0);
    write_toy_split(other, "train", 320, 5);
    write_toy_split(other, "t10k", 100, 2);
}

static void teardown(void) { tmpdir_remove(dir); }

TestSuite(rowseq_resume, .init = setup, .fini = teardown, .timeout = 120);

/* ------------------------------------------------------------------ helpers */

static void path_of(const char *name, char *path, size_t cap)
{
    snprintf(path, cap, "%s/%s", dir, name);
}

/* The whole file (malloc'ed, NUL-terminated), its size in *len; NULL if absent. */
static char *read_all(const char *name, size_t *len)
{
    char path[1200];
    path_of(name, path, sizeof path);
    FILE *f = fopen(path, "rb");
    if (!f) return NULL;
    fseek(f, 0, SEEK_END);
    long n = ftell(f);
    fseek(f, 0, SEEK_SET);
    char *buf = malloc((size_t)n + 1);
    cr_assert_not_null(buf);
    cr_assert_eq(fread(buf, 1, (size_t)n, f), (size_t)n);
    buf[n] = '\0';
    fclose(f);
    *len = (size_t)n;
    return buf;
}

static void write_all(const char *name, const char *bytes, size_t len)
{
    char path[1200];
    path_of(name, path, sizeof path);
    FILE *f = fopen(path, "wb");
    cr_assert_not_null(f);
    cr_assert_eq(fwrite(bytes, 1, len, f), len);
    fclose(f);
}

static int exists(const char *name)
{
    char path[1200];
    struct stat st;
    path_of(name, path, sizeof path);
    return stat(path, &st) == 0;
}

static void slurp(const char *path, char *buf, size_t cap)
{
    FILE *f = fopen(path, "rb");
    size_t n = f ? fread(buf, 1, cap - 1, f) : 0;
    buf[n] = 0;
    if (f) fclose(f);
}

/* Runs rowseq in dir with env ("" for none) and args; the exit code, with
 * stdout in out and stderr in err. */
static int run_env(const char *env, const char *args)
{
    const char *exe = getenv("ROWSEQ_EXE");
    cr_assert_not_null(exe, "ROWSEQ_EXE is not set");
    char cmd[16384], op[1200], ep[1200];
    snprintf(op, sizeof op, "%s/stdout", dir);
    snprintf(ep, sizeof ep, "%s/stderr", dir);
    snprintf(cmd, sizeof cmd, "cd '%s' && %s '%s' %s > '%s' 2> '%s'", dir, env, exe, args, op,
             ep);
    int st = system(cmd);
    cr_assert(WIFEXITED(st), "did not exit normally: %s", cmd);
    slurp(op, out, sizeof out);
    slurp(ep, err, sizeof err);
    return WEXITSTATUS(st);
}

static int run(const char *args) { return run_env("", args); }

static int runf(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static int runf(const char *fmt, ...)
{
    char args[4096];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(args, sizeof args, fmt, ap);
    va_end(ap);
    return run(args);
}

/* stderr is one line that contains want. */
static void expect_one_line(const char *want)
{
    cr_assert(strstr(err, want), "stderr lacks '%s':\n%s", want, err);
    cr_assert_eq(strchr(err, '\n'), err + strlen(err) - 1, "not one line:\n%s", err);
}

static const char *result_line(void)
{
    const char *r = strstr(out, "result: ");
    cr_assert_not_null(r, "no result line:\n%s\n%s", out, err);
    return r;
}

/* Text of "key=value" in the result line, into buf. */
static void result_value(const char *key, char *buf, size_t cap)
{
    char pat[64];
    snprintf(pat, sizeof pat, " %s=", key);
    const char *p = strstr(result_line(), pat);
    cr_assert_not_null(p, "result lacks %s: %s", key, result_line());
    p += strlen(pat);
    size_t n = strcspn(p, " \n");
    cr_assert_lt(n, cap);
    memcpy(buf, p, n);
    buf[n] = '\0';
}

/* A safetensors file split into its JSON header and its data section. */
typedef struct st_file {
    char *bytes;
    size_t len;
    char *header; /* NUL-terminated copy */
    const char *data;
    size_t data_len;
} st_file;

static st_file st_read(const char *name)
{
    st_file f = {0};
    f.bytes = read_all(name, &f.len);
    cr_assert_not_null(f.bytes, "%s was not written", name);
    cr_assert_gt(f.len, 8);
    uint64_t n = 0;
    for (int i = 7; i >= 0; i--) n = n << 8 | (unsigned char)f.bytes[i];
    cr_assert_leq(n, f.len - 8, "%s: bad header length", name);
    f.header = malloc(n + 1);
    memcpy(f.header, f.bytes + 8, n);
    f.header[n] = '\0';
    f.data = f.bytes + 8 + n;
    f.data_len = f.len - 8 - n;
    return f;
}

static void st_free(st_file *f)
{
    free(f->bytes);
    free(f->header);
}

/* A metadata string of the header, into buf (compact JSON: "key":"value"). */
static void st_meta(const st_file *f, const char *key, char *buf, size_t cap)
{
    char pat[128];
    snprintf(pat, sizeof pat, "\"%s\":\"", key);
    const char *p = strstr(f->header, pat);
    cr_assert_not_null(p, "metadata '%s' missing", key);
    p += strlen(pat);
    size_t n = strcspn(p, "\"");
    cr_assert_lt(n, cap);
    memcpy(buf, p, n);
    buf[n] = '\0';
}

static void expect_meta(const char *file, const char *key, const char *want)
{
    char v[256];
    st_file f = st_read(file);
    st_meta(&f, key, v, sizeof v);
    cr_assert_str_eq(v, want, "%s: metadata '%s'", file, key);
    st_free(&f);
}

/* Every metadata entry of the loop's state that must be equal after an
 * exact resume (train_seconds is wall-clock time, so it is not). */
static const char *const STATE_KEYS[] = {
    "optim.kind",      "optim.steps",     "u64.step",        "u64.epoch",
    "u64.epoch_pos",   "u64.epoch_images", "u64.skipped",    "u64.skip_streak",
    "rng.shuffle",     "rng.dropout.0",   "rng.dropout.1",   "f64.epoch_loss",
    "config.train-data",
};

static void expect_same_state(const char *a_name, const char *b_name)
{
    st_file a = st_read(a_name), b = st_read(b_name);
    cr_assert_eq(a.data_len, b.data_len, "%s and %s differ in size", a_name, b_name);
    cr_assert(memcmp(a.data, b.data, a.data_len) == 0,
              "tensors of %s and %s differ (parameters or optimizer moments)", a_name, b_name);
    for (size_t i = 0; i < sizeof STATE_KEYS / sizeof STATE_KEYS[0]; i++) {
        static char va[4096], vb[4096];
        st_meta(&a, STATE_KEYS[i], va, sizeof va);
        st_meta(&b, STATE_KEYS[i], vb, sizeof vb);
        cr_assert_str_eq(va, vb, "metadata '%s' differs", STATE_KEYS[i]);
    }
    st_free(&a);
    st_free(&b);
}

static void expect_same_bytes(const char *a_name, const char *b_name)
{
    size_t na, nb;
    char *a = read_all(a_name, &na), *b = read_all(b_name, &nb);
    cr_assert(a && b, "%s or %s missing", a_name, b_name);
    cr_assert(na == nb && memcmp(a, b, na) == 0, "%s and %s differ", a_name, b_name);
    free(a);
    free(b);
}

/* The last row of a --log CSV without its wall-clock columns (seconds,
 * tokens_per_s): epoch,step,lr,train_loss,test_loss,test_acc. */
static void last_row(const char *name, char *row, size_t cap)
{
    size_t n;
    char *s = read_all(name, &n);
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
    cr_assert_eq(runf("%s %s --threads 2 --checkpoint full.ck --every 0 --save full.st --log "
                      "full.csv", MODEL, optim), 0, "%s", err);
    cr_assert(strstr(result_line(), " steps=30 "), "%s", result_line());
    result_value("test_acc", a, sizeof a);
    char args[1024];
    if (crash) {
        snprintf(args, sizeof args, "%s %s --threads 1 --checkpoint part.ck --every 1 --log "
                 "part.csv", MODEL, optim);
        cr_assert_eq(run_env("ROWSEQ_FAULT_STEP=14", args), 1, "%s", err);
        cr_assert(strstr(err, "step 14: gradient of "), "%s", err);
        cr_assert_eq(run("--data . --threads 1 --resume part.ck --checkpoint part.ck --save "
                         "split.st --log part.csv"), 0, "%s", err);
    } else {
        snprintf(args, sizeof args, "%s %s --threads 1 --steps 13 --checkpoint part.ck --every 4 "
                 "--log part.csv", MODEL, optim);
        cr_assert_eq(run(args), 0, "%s", err);
        cr_assert(strstr(result_line(), " steps=13 "), "%s", result_line());
        cr_assert(strstr(out, "epoch   2 (partial, --steps)"), "%s", out);
        cr_assert_eq(run("--data . --threads 1 --resume part.ck --checkpoint part.ck --steps 0 "
                         "--save split.st --log part.csv"), 0, "%s", err);
    }
    cr_assert(strstr(err, "resumed part.ck at step 13 (epoch 2, image 96 of 320)"), "%s", err);
    cr_assert(strstr(result_line(), " epochs=3 ") && strstr(result_line(), " steps=30 "), "%s",
              result_line());
    result_value("test_acc", b, sizeof b);
    cr_assert_str_eq(a, b, "test accuracy differs");
    expect_same_bytes("full.st", "split.st");
    expect_same_state("full.ck", "part.ck");
    last_row("full.csv", row_a, sizeof row_a);
    last_row("part.csv", row_b, sizeof row_b);
    cr_assert_str_eq(row_a, row_b, "the last epoch's log row differs");
}

Test(rowseq_resume, exact_with_sgd) { expect_exact_resume("--optim sgd --lr 0.5 --schedule step", 0); }
Test(rowseq_resume, exact_with_momentum) { expect_exact_resume("--optim momentum --lr 0.05", 0); }
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
    cr_assert_eq(runf("%s --epochs 1 --checkpoint c.ck", MODEL), 0, "%s", err);
    size_t n0, n1;
    char *before = read_all("c.ck", &n0);
    cr_assert_eq(run("--data . --resume c.ck --epochs 1"), 0, "%s", err);
    cr_assert(strstr(err, "already at epoch 1 of --epochs 1: nothing to train"), "%s", err);
    cr_assert(strstr(out, "evaluation  test_loss"), "%s", out);
    cr_assert(strstr(result_line(), " steps=10 "), "%s", result_line());
    char *after = read_all("c.ck", &n1); /* no --checkpoint: only read */
    cr_assert(n0 == n1 && memcmp(before, after, n0) == 0);
    free(before);
    free(after);
    /* without --epochs the run's own total (1) is inherited */
    cr_assert_eq(run("--data . --resume c.ck"), 0, "%s", err);
    cr_assert(strstr(result_line(), " steps=10 "), "%s", result_line());
    /* --epochs 2 trains the one epoch that is missing */
    cr_assert_eq(run("--data . --resume c.ck --checkpoint c.ck --epochs 2"), 0, "%s", err);
    cr_assert(strstr(result_line(), " epochs=2 ") && strstr(result_line(), " steps=20 "), "%s",
              result_line());
    expect_meta("c.ck", "u64.epoch", "2");
    expect_meta("c.ck", "info.epochs", "2");
}

/* ------------------------------------------------------------------ refusals */

/* Runs args, expects exit 1 with one line holding want, and c.ck unchanged. */
static void expect_refused(const char *args, const char *want)
{
    size_t n0, n1;
    char *before = read_all("c.ck", &n0);
    cr_assert_eq(run(args), 1, "%s\n%s", args, err);
    expect_one_line(want);
    cr_assert_null(strstr(out, "result:"), "trained anyway: %s", out);
    char *after = read_all("c.ck", &n1);
    cr_assert(after && n0 == n1 && memcmp(before, after, n0) == 0, "c.ck was modified");
    free(before);
    free(after);
}

Test(rowseq_resume, a_mismatch_exits_1_naming_the_field)
{
    cr_assert_eq(runf("%s --steps 3 --checkpoint c.ck", MODEL), 0, "%s", err);
    const char *common = "--resume c.ck --checkpoint c.ck --steps 5";
    char args[512];
    snprintf(args, sizeof args, "--data . %s --hidden 9", common);
    expect_refused(args, "c.ck: config 'hidden' is '8' in the checkpoint, '9' in this run");
    snprintf(args, sizeof args, "--data . %s --cell gru", common);
    expect_refused(args, "c.ck: config 'cell' is 'lstm' in the checkpoint, 'gru' in this run");
    snprintf(args, sizeof args, "--data . %s --layers 1", common);
    expect_refused(args, "c.ck: config 'layers' is '2' in the checkpoint, '1' in this run");
    snprintf(args, sizeof args, "--data . %s --dropout 0", common);
    expect_refused(args, "c.ck: config 'dropout' is '0.29999999999999999' in the checkpoint, '0' "
                   "in this run");
    snprintf(args, sizeof args, "--data . %s --optim sgd", common);
    expect_refused(args, "c.ck: config 'optim' is 'adam' in the checkpoint, 'sgd' in this run");
    snprintf(args, sizeof args, "--data . %s --batch 16", common);
    expect_refused(args, "c.ck: config 'batch' is '32' in the checkpoint, '16' in this run");
    snprintf(args, sizeof args, "--data . %s --shards 1", common);
    expect_refused(args, "c.ck: config 'shards' is '2' in the checkpoint, '1' in this run");
    /* the same count of images, other pixels and labels */
    snprintf(args, sizeof args, "--data other %s", common);
    expect_refused(args, "c.ck: config 'train-data' is '320x28x28 fnv1a ");
    /* the first 300 images of the same files */
    snprintf(args, sizeof args, "--data . %s --limit-train 300", common);
    expect_refused(args, "in the checkpoint, '300x28x28 fnv1a ");
    /* settings may change: another --lr or test set is used, not refused */
    cr_assert_eq(runf("--data . %s --lr 0.001 --limit-test 50", common), 0, "%s", err);
    cr_assert(strstr(result_line(), " steps=5 "), "%s", result_line());
}

Test(rowseq_resume, a_truncated_checkpoint_exits_1_and_stays_as_it_was)
{
    cr_assert_eq(runf("%s --steps 3 --checkpoint good.ck", MODEL), 0, "%s", err);
    size_t n;
    char *good = read_all("good.ck", &n);
    const size_t cuts[] = {0, 7, 8, 100, n / 2, n - 1};
    for (size_t i = 0; i < sizeof cuts / sizeof cuts[0]; i++) {
        write_all("c.ck", good, cuts[i]);
        expect_refused("--data . --resume c.ck --checkpoint c.ck --steps 5", "c.ck");
    }
    free(good);
}

Test(rowseq_resume, not_a_training_checkpoint)
{
    cr_assert_eq(runf("%s --epochs 1 --save model.st", MODEL), 0, "%s", err);
    cr_assert_eq(run("--data . --resume model.st --steps 3"), 1);
    expect_one_line("model.st: not a training checkpoint");
    cr_assert_eq(run("--data . --resume missing.ck"), 1);
    expect_one_line("missing.ck");
}

Test(rowseq_resume, the_checkpoint_path_is_checked_before_training)
{
    cr_assert_eq(runf("%s --steps 2 --checkpoint no/such/dir/c.ck", MODEL), 1);
    expect_one_line("--checkpoint no/such/dir/c.ck: directory 'no/such/dir': No such file or "
                    "directory");
    cr_assert_eq(out[0], 0, "trained before failing: %s", out);
    cr_assert_eq(runf("%s --steps 2 --checkpoint other", MODEL), 1);
    expect_one_line("--checkpoint other: is a directory");
    /* a fresh run never overwrites an earlier run's checkpoint */
    cr_assert_eq(runf("%s --steps 2 --checkpoint c.ck", MODEL), 0, "%s", err);
    char args[512];
    snprintf(args, sizeof args, "%s --steps 2 --checkpoint c.ck", MODEL);
    expect_refused(args, "--checkpoint c.ck already exists: continue that run with --resume c.ck");
    size_t n;
    char *copy = read_all("c.ck", &n); /* another file, though equal */
    write_all("other.ck", copy, n);
    free(copy);
    expect_refused("--data . --steps 3 --checkpoint c.ck --resume other.ck",
                   "--checkpoint c.ck already exists");
}

Test(rowseq_resume, usage_errors_exit_2)
{
    cr_assert_eq(run("--every 5"), 2);
    expect_one_line("--every needs --checkpoint FILE");
    cr_assert_eq(run("--resume a.ck --load b.st"), 2);
    expect_one_line("--resume and --load exclude each other");
    cr_assert_eq(run("--checkpoint x.st --save x.st"), 2);
    expect_one_line("--checkpoint and --save name the same file x.st");
    cr_assert_eq(run("--every -1"), 2);
    cr_assert_eq(run("--steps x"), 2);
    cr_assert_eq(run_env("ROWSEQ_FAULT_STEP=x", "--data . --epochs 1"), 2);
    expect_one_line("ROWSEQ_FAULT_STEP: expected a step number");
}

Test(rowseq_resume, load_takes_a_training_checkpoint)
{
    cr_assert_eq(runf("%s --epochs 1 --checkpoint c.ck --save m.st", MODEL), 0, "%s", err);
    char a[64], b[64];
    cr_assert_eq(run("--data . --load m.st --epochs 0"), 0, "%s", err);
    result_value("test_acc", a, sizeof a);
    static char report[sizeof out];
    memcpy(report, out, (size_t)(result_line() - out));
    cr_assert_eq(run("--data . --load c.ck --epochs 0 --cell gru"), 0, "%s", err);
    result_value("test_acc", b, sizeof b);
    cr_assert_str_eq(a, b, "the same model evaluates the same");
    out[result_line() - out] = '\0';
    cr_assert_str_eq(report, out, "the same confusion matrix");
    cr_assert(strstr(err, "lstm 2x8"), "architecture not taken from c.ck: %s", err);
}

/* ------------------------------------------------------------------ non-finite steps */

Test(rowseq_resume, a_nonfinite_gradient_stops_and_keeps_the_last_checkpoint)
{
    cr_assert_eq(run_env("ROWSEQ_FAULT_STEP=4", MODEL " --threads 1 --checkpoint c.ck --every 1 "
                         "--save bad.st"), 1);
    cr_assert(strstr(err, "\nrowseq: step 4: gradient of 'rnn.l0.weight_ih'[0] is not finite; "
                     "stopping, last checkpoint kept (try a smaller --lr or --clip, or "
                     "--skip-nonfinite)\n"), "%s", err);
    cr_assert_not(exists("bad.st"), "--save written after a non-finite step");
    expect_meta("c.ck", "u64.step", "3");
    /* the kept checkpoint is the good state of step 3: resuming it without
     * the fault gives exactly the clean run */
    cr_assert_eq(run("--data . --resume c.ck --checkpoint c.ck --save resumed.st"), 0, "%s", err);
    cr_assert(strstr(result_line(), " steps=30 "), "%s", result_line());
    cr_assert_eq(runf("%s --save clean.st", MODEL), 0, "%s", err);
    expect_same_bytes("clean.st", "resumed.st");
}

Test(rowseq_resume, skip_nonfinite_skips_the_update)
{
    cr_assert_eq(run_env("ROWSEQ_FAULT_STEP=2", MODEL " --steps 4 --skip-nonfinite "
                         "--checkpoint c.ck"), 0, "%s", err);
    cr_assert(strstr(err, "\nrowseq: step 2: gradient of 'rnn.l0.weight_ih'[0] is not finite; "
                     "step skipped (--skip-nonfinite)\n"), "%s", err);
    cr_assert(strstr(result_line(), " steps=4 ") && strstr(result_line(), " skipped=1"), "%s",
              result_line());
    expect_meta("c.ck", "optim.steps", "3"); /* 3 updates in 4 steps */
    expect_meta("c.ck", "u64.skipped", "1");
    expect_meta("c.ck", "u64.epoch_pos", "128"); /* the skipped batch is consumed */
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
             "--checkpoint c.ck --every 1 > stdout 2> stderr", dir, exe, MODEL);
    pid_t pid = fork();
    cr_assert_neq(pid, -1);
    if (pid == 0) {
        execl("/bin/sh", "sh", "-c", cmd, (char *)NULL);
        _exit(127);
    }
    /* the first checkpoint exists only once the handlers are in place */
    struct timespec tick = {0, 10 * 1000 * 1000};
    for (int i = 0; i < 6000 && !exists("c.ck"); i++) nanosleep(&tick, NULL);
    cr_assert(exists("c.ck"), "no checkpoint after 60 s");
    cr_assert_eq(kill(pid, SIGTERM), 0);
    int st;
    cr_assert_eq(waitpid(pid, &st, 0), pid);
    char op[1200], ep[1200];
    path_of("stdout", op, sizeof op);
    path_of("stderr", ep, sizeof ep);
    slurp(op, out, sizeof out);
    slurp(ep, err, sizeof err);
    cr_assert(WIFEXITED(st) && WEXITSTATUS(st) == 0, "status %d: %s", st, err);
    char steps[32], line[128];
    result_value("steps", steps, sizeof steps);
    snprintf(line, sizeof line, "rowseq: interrupted at step %s\n", steps);
    cr_assert(strstr(err, line), "%s", err);
    expect_meta("c.ck", "u64.step", steps);
    int n = atoi(steps);
    cr_assert_eq(runf("--data . --resume c.ck --checkpoint c.ck --steps %d", n + 3), 0, "%s", err);
    snprintf(line, sizeof line, " steps=%d ", n + 3);
    cr_assert(strstr(result_line(), line), "%s", result_line());
}
