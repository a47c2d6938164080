/* The rowseq program end to end on a toy data folder written here: trains,
 * logs, saves, reloads to the same accuracy; bad data exits 1 naming the
 * file; bad flags exit 2. ROWSEQ_EXE is the program (set by meson). */
#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>

#include "idx_files.h"

static char dir[1024];
static char out[1 << 16], err[1 << 16];

static void setup(void)
{
    tmpdir_make(dir, sizeof dir);
    write_toy_split(dir, "train", 320, 1);
    write_toy_split(dir, "t10k", 100, 2);
}
static void teardown(void) { tmpdir_remove(dir); }

TestSuite(rowseq_cli, .init = setup, .fini = teardown, .timeout = 60);

static void slurp(const char *path, char *buf, size_t cap)
{
    FILE *f = fopen(path, "rb");
    size_t n = f ? fread(buf, 1, cap - 1, f) : 0;
    buf[n] = 0;
    if (f) fclose(f);
}

/* Runs rowseq with args; returns its exit code, stdout in out, stderr in err. */
static int run(const char *args)
{
    const char *exe = getenv("ROWSEQ_EXE");
    cr_assert_not_null(exe, "ROWSEQ_EXE is not set");
    char cmd[16384], op[1200], ep[1200];
    snprintf(op, sizeof op, "%s/stdout", dir);
    snprintf(ep, sizeof ep, "%s/stderr", dir);
    snprintf(cmd, sizeof cmd, "'%s' --threads 1 %s > '%s' 2> '%s'", exe, args, op, ep);
    int st = system(cmd);
    cr_assert(WIFEXITED(st), "rowseq did not exit normally: %s", cmd);
    slurp(op, out, sizeof out);
    slurp(ep, err, sizeof err);
    return WEXITSTATUS(st);
}

/* The value of key= in the last line of out, which must be the result line. */
static double result_value(const char *key)
{
    size_t n = strlen(out);
    cr_assert(n > 0 && out[n - 1] == '\n', "stdout does not end with a line: %s", out);
    const char *last = out + n - 1;
    while (last > out && last[-1] != '\n') last--;
    cr_assert_eq(strncmp(last, "result: ", 8), 0, "last line is not the result: %s", last);
    char pat[64];
    snprintf(pat, sizeof pat, " %s=", key);
    const char *p = strstr(last, pat);
    cr_assert_not_null(p, "no %s in %s", key, last);
    return atof(p + strlen(pat));
}

Test(rowseq_cli, trains_logs_saves_and_reloads)
{
    char args[8192];
    snprintf(args, sizeof args,
             "--data '%s' --cell gru --hidden 24 --epochs 3 --batch 32 --lr 0.01 "
             "--save '%s/m.safetensors' --log '%s/log.csv'",
             dir, dir, dir);
    cr_assert_eq(run(args), 0, "stderr: %s", err);
    double acc = result_value("test_acc");
    cr_expect(acc > 0.3 && acc <= 1, "test_acc %g on the toy set", acc);
    cr_expect_eq(result_value("epochs"), 3);
    cr_expect_gt(result_value("tokens_per_s"), 0);
    cr_expect(strstr(out, "epoch   3") != NULL, "no per-epoch line: %s", out);
    cr_expect(strstr(out, "test_acc") && strstr(out, "test_loss"), "%s", out);
    cr_expect(strstr(out, "T-shirt/top") && strstr(out, "Ankle boot"), "no confusion matrix");

    char log[8192], path[4300];
    snprintf(path, sizeof path, "%s/log.csv", dir);
    slurp(path, log, sizeof log);
    const char *header = "epoch,step,seconds,lr,train_loss,test_loss,test_acc,tokens_per_s\n";
    cr_expect_eq(strncmp(log, header, strlen(header)), 0, "%s", log);
    int lines = 0;
    for (const char *p = log; *p; p++) lines += *p == '\n';
    cr_expect_eq(lines, 4, "log: %s", log);

    /* evaluation only, from the checkpoint: same accuracy, architecture from
     * the file (the default --cell lstm is not the file's gru) */
    snprintf(args, sizeof args, "--data '%s' --load '%s/m.safetensors' --epochs 0", dir, dir);
    cr_assert_eq(run(args), 0, "stderr: %s", err);
    cr_expect_eq(result_value("test_acc"), acc);
    cr_expect_eq(result_value("epochs"), 0);
    /* a model flag that says otherwise is refused, as charlm and seq2seq do */
    snprintf(args, sizeof args, "--data '%s' --load '%s/m.safetensors' --epochs 0 --cell rnn", dir,
             dir);
    cr_assert_eq(run(args), 2, "stderr: %s", err);
    cr_expect(strstr(err, "--cell rnn does not match the model") && strstr(err, "(cell=gru)"),
              "%s", err);

    /* no training flag at all: a loaded model is evaluated, not trained (issue 16),
     * and written to --save (it was not written) */
    snprintf(args, sizeof args, "--data '%s' --load '%s/m.safetensors' --save '%s/copy.st'", dir,
             dir, dir);
    cr_assert_eq(run(args), 0, "stderr: %s", err);
    cr_expect_eq(result_value("test_acc"), acc);
    cr_expect_eq(result_value("steps"), 0);
    snprintf(args, sizeof args, "--data '%s' --load '%s/copy.st'", dir, dir);
    cr_assert_eq(run(args), 0, "--save wrote no model: %s", err);
    cr_expect_eq(result_value("test_acc"), acc);
}

Test(rowseq_cli, seed_preset_and_time_budget)
{
    char args[8192];
    snprintf(args, sizeof args, "--data '%s' --preset seed --epochs 2 --batch 16", dir);
    cr_assert_eq(run(args), 0, "stderr: %s", err);
    cr_expect(strstr(err, "rnn 1x100") && strstr(err, "sgd lr 0.1"), "preset not applied: %s", err);
    cr_expect_eq(result_value("epochs"), 2);
    /* a budget shorter than one epoch stops part way and still evaluates */
    snprintf(args, sizeof args, "--data '%s' --seconds 0.000001 --epochs 5", dir);
    cr_assert_eq(run(args), 0, "stderr: %s", err);
    double e = result_value("epochs");
    cr_expect(e > 0 && e < 1, "epochs=%g with a tiny time budget", e);
    cr_expect(strstr(out, "partial") != NULL, "%s", out);
}

Test(rowseq_cli, bad_data_exits_1_naming_the_file)
{
    /* labels out of range in the test split */
    uint8_t lab[100];
    memset(lab, 3, sizeof lab);
    lab[42] = 11;
    size_t n;
    uint8_t *b = idx_labels_bytes(0x801, 100, lab, 100, &n);
    char path[1200], args[8192];
    write_file(dir, "t10k-labels-idx1-ubyte.gz", b, n, 1, path, sizeof path);
    free(b);
    snprintf(args, sizeof args, "--data '%s' --epochs 1", dir);
    cr_expect_eq(run(args), 1);
    cr_expect(strstr(err, "t10k-labels-idx1-ubyte.gz") && strstr(err, "label 11 at index 42"),
              "stderr: %s", err);
    /* count mismatch: 99 labels for 100 images */
    b = idx_labels_bytes(0x801, 99, lab, 99, &n);
    memset(b + 8, 1, 99);
    write_file(dir, "t10k-labels-idx1-ubyte.gz", b, n, 1, path, sizeof path);
    free(b);
    cr_expect_eq(run(args), 1);
    cr_expect(strstr(err, "99 labels") && strstr(err, "100 images"), "stderr: %s", err);
    /* an unwritable --save is refused before any training */
    snprintf(args, sizeof args, "--data '%s' --save '%s/no-folder/m.safetensors'", dir, dir);
    cr_expect_eq(run(args), 1);
    cr_expect(strstr(err, "--save ") && strstr(err, "no-folder': No such file or directory"),
              "stderr: %s", err);
    cr_expect_eq(out[0], 0, "trained before failing: %s", out);
    /* a folder without the files */
    snprintf(args, sizeof args, "--data '%s/nowhere'", dir);
    cr_expect_eq(run(args), 1);
    cr_expect(strstr(err, "train-images-idx3-ubyte") != NULL, "stderr: %s", err);
}

Test(rowseq_cli, bad_flags_exit_2)
{
    cr_expect_eq(run("--hidden 12x"), 2);
    cr_expect(strstr(err, "--hidden") != NULL, "%s", err);
    cr_expect_eq(run("--cell lstmm"), 2);
    cr_expect_eq(run("--optim rmsprop"), 2);
    cr_expect_eq(run("--no-such-flag"), 2);
    cr_expect_eq(run("--help"), 0);
    cr_expect(strstr(out, "--limit-train") && strstr(out, "--preset"), "%s", out);
}

Test(rowseq_cli, corrupt_checkpoint_exits_1)
{
    char path[1200], args[8192];
    write_file(dir, "bad.safetensors", "not a checkpoint", 16, 0, path, sizeof path);
    snprintf(args, sizeof args, "--data '%s' --load '%s' --epochs 0", dir, path);
    cr_expect_eq(run(args), 1);
    cr_expect(strstr(err, "bad.safetensors") != NULL, "stderr: %s", err);
}

/* The arena probe measures the largest step the data allows: a test set
 * of 5 images is evaluated 5 at a time, whatever --eval-batch, and a
 * --batch above the training images takes steps of all of them. Probing
 * the flags' 1000 (or 1024) rows refused a model that fits. */
Test(rowseq_cli, arena_probe_capped_by_the_data)
{
    char args[8192];
    setenv("TG_MAX_MEMORY", "16M", 1);
    snprintf(args, sizeof args, "--data '%s' --limit-train 16 --limit-test 5 --hidden 64 "
             "--shards 1 --epochs 1 --eval-batch 1000 --batch 8", dir);
    cr_expect_eq(run(args), 0, "stderr: %s", err);
    snprintf(args, sizeof args, "--data '%s' --limit-train 16 --limit-test 5 --hidden 64 "
             "--shards 1 --epochs 1 --eval-batch 5 --batch 1024", dir);
    cr_expect_eq(run(args), 0, "stderr: %s", err);
    unsetenv("TG_MAX_MEMORY");
}
