/* charlm's training checkpoints end to end (--checkpoint, --every,
 * --resume, --skip-nonfinite): N steps, resume, M more gives bitwise the
 * parameters, optimizer moments, generators, data position and carried
 * state of N+M steps in one run, for every optimizer, with two shards and
 * dropout; a resume that does not match names the field and exits 1; a
 * truncated checkpoint exits 1 and stays as it was; a bad checkpoint path
 * fails before training; a non-finite gradient stops the run keeping the
 * last good checkpoint, or is skipped. CHARLM_EXE is the program. */
#include <criterion/criterion.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

static char dir[256];
static char out[1 << 16], err[1 << 16];

static void setup(void)
{
    snprintf(dir, sizeof dir, "/tmp/tg_charlm_resume_XXXXXX");
    cr_assert_not_null(mkdtemp(dir));
}

static void teardown(void)
{
    char cmd[512];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
    if (system(cmd) != 0) fprintf(stderr, "could not remove %s\n", dir);
}

TestSuite(charlm_resume, .init = setup, .fini = teardown, .timeout = 120);

/* ------------------------------------------------------------------ helpers */

static void path_of(const char *name, char *path, size_t cap)
{
    snprintf(path, cap, "%s/%s", dir, name);
}

/* The whole file (malloc'ed, NUL-terminated), its size in *len; NULL if absent. */
static char *read_file(const char *name, size_t *len)
{
    char path[512];
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

static void write_file(const char *name, const char *text, size_t len)
{
    char path[512];
    path_of(name, path, sizeof path);
    FILE *f = fopen(path, "wb");
    cr_assert_not_null(f);
    cr_assert_eq(fwrite(text, 1, len, f), len);
    fclose(f);
}

static int exists(const char *name)
{
    char path[512];
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

/* Runs charlm in dir with env ("" for none) and args; the exit code, with
 * stdout in out and stderr in err. */
static int run_env(const char *env, const char *args)
{
    const char *exe = getenv("CHARLM_EXE");
    cr_assert_not_null(exe, "CHARLM_EXE is not set");
    char cmd[8192], op[512], ep[512];
    snprintf(op, sizeof op, "%s/stdout", dir);
    snprintf(ep, sizeof ep, "%s/stderr", dir);
    snprintf(cmd, sizeof cmd, "cd '%s' && %s '%s' %s > '%s' 2> '%s'", dir, env, exe, args, op, ep);
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
    f.bytes = read_file(name, &f.len);
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

/* Every metadata entry of the loop's state that must be equal after an
 * exact resume (train_seconds is wall-clock time, so it is not). */
static const char *const STATE_KEYS[] = {
    "optim.kind", "optim.steps", "u64.step", "u64.data_pos", "u64.skipped", "u64.skip_streak",
    "rng.dropout.0", "rng.dropout.1", "f64.last_loss", "f64.recent_loss", "config.vocab",
};

static void expect_same_state(const char *a_name, const char *b_name)
{
    st_file a = st_read(a_name), b = st_read(b_name);
    cr_assert_eq(a.data_len, b.data_len, "%s and %s differ in size", a_name, b_name);
    cr_assert(memcmp(a.data, b.data, a.data_len) == 0,
              "tensors of %s and %s differ (parameters, moments or carried state)", a_name, b_name);
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
    char *a = read_file(a_name, &na), *b = read_file(b_name, &nb);
    cr_assert(a && b, "%s or %s missing", a_name, b_name);
    cr_assert(na == nb && memcmp(a, b, na) == 0, "%s and %s differ", a_name, b_name);
    free(a);
    free(b);
}

static int count_lines(const char *name)
{
    size_t n;
    char *s = read_file(name, &n);
    cr_assert_not_null(s, "%s missing", name);
    int lines = 0;
    for (size_t i = 0; i < n; i++) lines += s[i] == '\n';
    free(s);
    return lines;
}

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
    write_file(name, text, strlen(text));
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
    cr_assert_eq(runf("%s %s --steps 12 --eval-every 4 --checkpoint full.ck --every 0 "
                      "--save full.st --log full.csv", MODEL, optim), 0, "%s", err);
    result_value("train_bpc", a, sizeof a);
    char args[1024];
    if (crash) {
        snprintf(args, sizeof args, "%s %s --steps 12 --checkpoint part.ck --every 1 --log "
                 "part.csv", MODEL, optim);
        cr_assert_eq(run_env("CHARLM_FAULT_STEP=8", args), 1, "%s", err);
    } else {
        snprintf(args, sizeof args, "%s %s --steps 7 --checkpoint part.ck --every 2 --log "
                 "part.csv", MODEL, optim);
        cr_assert_eq(run(args), 0, "%s", err);
        cr_assert(strstr(result_line(), " steps=7 "), "%s", result_line());
    }
    cr_assert_eq(run("--text ko.txt --threads 1 --resume part.ck --checkpoint part.ck --steps 12 "
                     "--save split.st --log part.csv"), 0, "%s", err);
    cr_assert(strstr(err, "resumed part.ck at step 7"), "%s", err);
    cr_assert(strstr(result_line(), " steps=12 "), "%s", result_line());
    result_value("train_bpc", b, sizeof b);
    cr_assert_str_eq(a, b, "running average of the loss differs");
    expect_same_bytes("full.st", "split.st");
    expect_same_state("full.ck", "part.ck");
    cr_assert_eq(count_lines("part.csv"), count_lines("full.csv"), "the resumed log appends");
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
    cr_assert_eq(runf("%s --steps 4 --checkpoint c.ck", MODEL), 0, "%s", err);
    size_t n0, n1;
    char *before = read_file("c.ck", &n0);
    cr_assert_eq(run("--text ko.txt --resume c.ck --steps 3"), 0, "%s", err);
    cr_assert(strstr(err, "already at step 4 of --steps 3: nothing to train"), "%s", err);
    cr_assert(strstr(result_line(), " steps=4 "), "%s", result_line());
    char *after = read_file("c.ck", &n1); /* no --checkpoint: only read */
    cr_assert(n0 == n1 && memcmp(before, after, n0) == 0);
    free(before);
    free(after);
    /* without --steps the run's own total (4) is inherited */
    cr_assert_eq(run("--text ko.txt --resume c.ck"), 0, "%s", err);
    cr_assert(strstr(result_line(), " steps=4 "), "%s", result_line());
}

/* ------------------------------------------------------------------ refusals */

/* Runs args, expects exit 1 with one line holding want, and c.ck unchanged. */
static void expect_refused(const char *args, const char *want)
{
    size_t n0, n1;
    char *before = read_file("c.ck", &n0);
    cr_assert_eq(run(args), 1, "%s\n%s", args, err);
    expect_one_line(want);
    cr_assert_null(strstr(out, "result:"), "trained anyway: %s", out);
    char *after = read_file("c.ck", &n1);
    cr_assert(after && n0 == n1 && memcmp(before, after, n0) == 0, "c.ck was modified");
    free(before);
    free(after);
}

Test(charlm_resume, a_mismatch_exits_1_naming_the_field)
{
    write_korean("ko.txt", 0);
    write_korean("swapped.txt", 1);
    char latin[4096] = "";
    for (int i = 0; i < 30; i++) strcat(latin, "the quick brown fox.\n");
    write_file("latin.txt", latin, strlen(latin));
    cr_assert_eq(runf("%s --steps 3 --checkpoint c.ck", MODEL), 0, "%s", err);
    const char *common = "--resume c.ck --checkpoint c.ck --steps 5";
    char args[512];
    snprintf(args, sizeof args, "--text ko.txt %s --hidden 17", common);
    expect_refused(args, "c.ck: config 'hidden' is '16' in the checkpoint, '17' in this run");
    snprintf(args, sizeof args, "--text ko.txt %s --cell gru", common);
    expect_refused(args, "c.ck: config 'cell' is 'lstm' in the checkpoint, 'gru' in this run");
    snprintf(args, sizeof args, "--text latin.txt %s", common);
    expect_refused(args, "c.ck: config 'vocab' differs from this run's");
    snprintf(args, sizeof args, "--text swapped.txt %s", common);
    expect_refused(args, "c.ck: config 'text' is '340 characters, fnv1a ");
    snprintf(args, sizeof args, "--text ko.txt %s --shards 1", common);
    expect_refused(args, "c.ck: config 'shards' is '2' in the checkpoint, '1' in this run");
    snprintf(args, sizeof args, "--text ko.txt %s --optim sgd", common);
    expect_refused(args, "c.ck: config 'optim' is 'adam' in the checkpoint, 'sgd' in this run");
    snprintf(args, sizeof args, "--text ko.txt %s --seq-len 8", common);
    expect_refused(args, "c.ck: config 'seq-len' is '16' in the checkpoint, '8' in this run");
    /* settings may change: a different --lr is used, not refused */
    cr_assert_eq(runf("--text ko.txt %s --lr 0.001", common), 0, "%s", err);
}

Test(charlm_resume, a_truncated_checkpoint_exits_1_and_stays_as_it_was)
{
    write_korean("ko.txt", 0);
    cr_assert_eq(runf("%s --steps 3 --checkpoint good.ck", MODEL), 0, "%s", err);
    size_t n;
    char *good = read_file("good.ck", &n);
    const size_t cuts[] = {0, 7, 8, 100, n / 2, n - 1};
    for (size_t i = 0; i < sizeof cuts / sizeof cuts[0]; i++) {
        write_file("c.ck", good, cuts[i]);
        expect_refused("--text ko.txt --resume c.ck --checkpoint c.ck --steps 5", "c.ck");
    }
    free(good);
}

Test(charlm_resume, not_a_training_checkpoint)
{
    write_korean("ko.txt", 0);
    cr_assert_eq(runf("%s --steps 2 --save model.st", MODEL), 0, "%s", err);
    cr_assert_eq(run("--text ko.txt --resume model.st --steps 3"), 1);
    expect_one_line("model.st: not a training checkpoint");
    cr_assert_eq(run("--text ko.txt --resume missing.ck"), 1);
    expect_one_line("missing.ck");
}

Test(charlm_resume, the_checkpoint_path_is_checked_before_training)
{
    write_korean("ko.txt", 0);
    cr_assert_eq(runf("%s --steps 2 --checkpoint no/such/dir/c.ck", MODEL), 1);
    expect_one_line("--checkpoint no/such/dir/c.ck: directory 'no/such/dir': No such file or "
                    "directory");
    cr_assert_eq(runf("%s --steps 2 --checkpoint .", MODEL), 1);
    expect_one_line("--checkpoint .: is a directory");
    /* a fresh run never overwrites an earlier run's checkpoint */
    cr_assert_eq(runf("%s --steps 2 --checkpoint c.ck", MODEL), 0, "%s", err);
    char args[512];
    snprintf(args, sizeof args, "%s --steps 2 --checkpoint c.ck", MODEL);
    expect_refused(args, "--checkpoint c.ck already exists: continue that run with --resume c.ck");
    size_t n;
    char *copy = read_file("c.ck", &n); /* another file, though equal */
    write_file("other.ck", copy, n);
    free(copy);
    snprintf(args, sizeof args, "--text ko.txt --steps 3 --checkpoint c.ck --resume other.ck");
    expect_refused(args, "--checkpoint c.ck already exists");
}

Test(charlm_resume, usage_errors_exit_2)
{
    cr_assert_eq(run("--every 5"), 2);
    expect_one_line("--every needs --checkpoint FILE");
    cr_assert_eq(run("--resume a.ck --load b.st"), 2);
    expect_one_line("--resume and --load exclude each other");
    cr_assert_eq(run("--checkpoint x.st --save x.st"), 2);
    expect_one_line("--checkpoint and --save name the same file x.st");
    cr_assert_eq(run("--optim adam --momentum 0.9"), 2);
    expect_one_line("--momentum is for --optim sgd or momentum");
    cr_assert_eq(run("--every -1"), 2);
    cr_assert_eq(run_env("CHARLM_FAULT_STEP=x", "--steps 1"), 2);
    expect_one_line("CHARLM_FAULT_STEP: expected a step number");
}

Test(charlm_resume, load_takes_a_training_checkpoint)
{
    write_korean("ko.txt", 0);
    cr_assert_eq(runf("%s --steps 3 --checkpoint c.ck --save m.st", MODEL), 0, "%s", err);
    char a[64], b[64];
    cr_assert_eq(run("--text ko.txt --batch 4 --seq-len 16 --load m.st --steps 0 --sample 30"), 0,
                 "%s", err);
    result_value("valid_bpc", a, sizeof a);
    static char sample[sizeof out];
    memcpy(sample, out, (size_t)(result_line() - out));
    cr_assert_eq(run("--text ko.txt --batch 4 --seq-len 16 --load c.ck --steps 0 --sample 30"), 0,
                 "%s", err);
    result_value("valid_bpc", b, sizeof b);
    cr_assert_str_eq(a, b, "the same model evaluates the same");
    out[result_line() - out] = '\0';
    cr_assert_str_eq(sample, out, "the same model samples the same");
}

/* ------------------------------------------------------------------ non-finite steps */

Test(charlm_resume, a_nonfinite_gradient_stops_and_keeps_the_last_checkpoint)
{
    write_korean("ko.txt", 0);
    cr_assert_eq(run_env("CHARLM_FAULT_STEP=4", MODEL " --steps 6 --checkpoint c.ck --every 1 "
                         "--save bad.st"), 1);
    cr_assert(strstr(err, "step 4: gradient of 'embed.weight'[0] is not finite; stopping, last "
                     "checkpoint kept"), "%s", err);
    cr_assert_not(exists("bad.st"), "--save written after a non-finite step");
    st_file f = st_read("c.ck");
    char step[32];
    st_meta(&f, "u64.step", step, sizeof step);
    cr_assert_str_eq(step, "3");
    st_free(&f);
    /* the kept checkpoint is the good state of step 3: resuming it without
     * the fault gives exactly the clean run */
    cr_assert_eq(run("--text ko.txt --resume c.ck --checkpoint c.ck --save resumed.st"), 0, "%s",
                 err);
    cr_assert(strstr(result_line(), " steps=6 "), "%s", result_line());
    cr_assert_eq(runf("%s --steps 6 --save clean.st", MODEL), 0, "%s", err);
    expect_same_bytes("clean.st", "resumed.st");
}

Test(charlm_resume, skip_nonfinite_skips_the_update)
{
    write_korean("ko.txt", 0);
    cr_assert_eq(run_env("CHARLM_FAULT_STEP=2", MODEL " --steps 4 --skip-nonfinite "
                         "--checkpoint c.ck"), 0, "%s", err);
    cr_assert(strstr(err, "charlm: step 2: gradient of 'embed.weight'[0] is not finite; step "
                     "skipped (--skip-nonfinite)\n"), "%s", err);
    cr_assert(strstr(result_line(), " steps=4 ") && strstr(result_line(), " skipped=1"), "%s",
              result_line());
    st_file f = st_read("c.ck");
    char v[32];
    st_meta(&f, "optim.steps", v, sizeof v);
    cr_assert_str_eq(v, "3", "3 updates in 4 steps");
    st_meta(&f, "u64.skipped", v, sizeof v);
    cr_assert_str_eq(v, "1");
    st_free(&f);
}
