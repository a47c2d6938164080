/* gradref_check on good, corrupted and malformed copies of a reference file:
 * a wrong number fails the check, a malformed file exits 1 with a message
 * naming file and line, and nothing crashes. */
#include <criterion/criterion.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#define MAX_LINES 4096

static char *lines[MAX_LINES];
static int n_lines;
static char dir[] = "/tmp/tg_gradref_XXXXXX";

static void load_reference(void)
{
    const char *shared = getenv("TG_SHARED_DIR");
    char path[4096];
    if (!shared) cr_skip_test("TG_SHARED_DIR not set");
    snprintf(path, sizeof path, "%s/gradref/lstm.txt", shared);
    FILE *f = fopen(path, "r");
    cr_assert_not_null(f, "cannot open %s", path);
    char *line = NULL;
    size_t cap = 0;
    while (n_lines < MAX_LINES && getline(&line, &cap, f) >= 0) lines[n_lines++] = strdup(line);
    free(line);
    fclose(f);
    cr_assert_gt(n_lines, 100);
    cr_assert_not_null(mkdtemp(dir));
}

static void cleanup(void)
{
    char cmd[256];
    for (int i = 0; i < n_lines; i++) free(lines[i]);
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
    if (strncmp(dir, "/tmp/tg_gradref_", 16) == 0 && system(cmd)) {}
}

TestSuite(gradref_files, .init = load_reference, .fini = cleanup);

static int header_line(const char *name)
{
    size_t n = strlen(name);
    for (int i = 0; i < n_lines; i++)
        if (strncmp(lines[i], name, n) == 0 && lines[i][n] == ' ') return i;
    cr_assert_fail("no tensor %s in the reference", name);
    return -1;
}

/* Writes the reference to dir/name with line `at` replaced by `repl`
 * (NULL: dropped; at < 0: untouched) and only the first `keep` lines. */
static const char *write_variant(const char *name, int at, const char *repl, int keep)
{
    static char path[512];
    snprintf(path, sizeof path, "%s/%s", dir, name);
    FILE *f = fopen(path, "w");
    cr_assert_not_null(f);
    for (int i = 0; i < n_lines && i < keep; i++) {
        if (i != at) fputs(lines[i], f);
        else if (repl) fputs(repl, f);
    }
    fclose(f);
    return path;
}

/* Runs gradref_check on path; returns its exit status (-1: killed by a
 * signal) and its stdout and stderr. */
static int run_check(const char *path, char *out, char *err, size_t cap)
{
    const char *exe = getenv("GRADREF_CHECK");
    cr_assert_not_null(exe, "GRADREF_CHECK not set");
    char fo[600], fe[600];
    snprintf(fo, sizeof fo, "%s/stdout", dir);
    snprintf(fe, sizeof fe, "%s/stderr", dir);
    pid_t pid = fork();
    cr_assert_neq(pid, -1);
    if (pid == 0) {
        int o = open(fo, O_WRONLY | O_CREAT | O_TRUNC, 0600), e = open(fe, O_WRONLY | O_CREAT | O_TRUNC, 0600);
        dup2(o, 1);
        dup2(e, 2);
        execl(exe, exe, path, (char *)NULL);
        _exit(127);
    }
    int st;
    waitpid(pid, &st, 0);
    char *bufs[2] = {out, err};
    const char *files[2] = {fo, fe};
    for (int k = 0; k < 2; k++) {
        FILE *f = fopen(files[k], "r");
        size_t n = f ? fread(bufs[k], 1, cap - 1, f) : 0;
        bufs[k][n] = '\0';
        if (f) fclose(f);
    }
    return WIFEXITED(st) ? WEXITSTATUS(st) : -1;
}

/* A malformed file: exit 1, and a message naming the file and `want`. */
static void expect_data_error(const char *path, const char *want)
{
    char out[4096], err[4096];
    int rc = run_check(path, out, err, sizeof out);
    cr_expect_eq(rc, 1, "%s: exit %d, stderr: %s", path, rc, err);
    cr_expect(strstr(err, path) != NULL, "message does not name the file: %s", err);
    cr_expect(strstr(err, want) != NULL, "message lacks '%s': %s", want, err);
}

Test(gradref_files, the_reference_itself_passes)
{
    char out[4096], err[4096];
    const char *p = write_variant("copy_lstm.txt", -1, NULL, n_lines);
    cr_expect_eq(run_check(p, out, err, sizeof out), 0, "%s%s", out, err);
    cr_expect(strstr(out, "loss_rel_err=") && strstr(out, "max_grad_rel_err=") &&
              strstr(out, " ok\n"), "%s", out);
}

Test(gradref_files, a_wrong_gradient_fails)
{
    char out[4096], err[4096], line[256];
    int at = header_line("grad.weight_hh") + 1; /* first row, first entry off by 0.01 */
    double v = strtod(lines[at], NULL);
    const char *rest = strchr(lines[at], ' ');
    snprintf(line, sizeof line, "%.17g%s", v + 0.01, rest);
    const char *p = write_variant("badgrad_lstm.txt", at, line, n_lines);
    cr_expect_eq(run_check(p, out, err, sizeof out), 1);
    cr_expect(strstr(out, " FAIL\n") != NULL, "%s", out);
}

Test(gradref_files, a_wrong_state_fails)
{
    char out[4096], err[4096];
    int at = header_line("c_3") + 2;
    const char *p = write_variant("badstate_lstm.txt", at, "0.5 0.5 0.5 0.5\n", n_lines);
    cr_expect_eq(run_check(p, out, err, sizeof out), 1);
    cr_expect(strstr(out, " FAIL\n") != NULL, "%s", out);
}

Test(gradref_files, truncated_inside_a_tensor)
{
    int at = header_line("weight_hh") + 3;
    char want[32];
    snprintf(want, sizeof want, ":%d: end of file", at);
    expect_data_error(write_variant("trunc_lstm.txt", -1, NULL, at), want);
}

Test(gradref_files, not_a_number)
{
    int at = header_line("x_2") + 2;
    char want[32];
    snprintf(want, sizeof want, ":%d:", at + 1);
    expect_data_error(write_variant("nan_lstm.txt", at, "0.1 0.2 x3 0.4 0.5\n", n_lines), want);
    expect_data_error(write_variant("inf_lstm.txt", at, "0.1 0.2 inf 0.4 0.5\n", n_lines), want);
}

Test(gradref_files, short_and_long_rows)
{
    int at = header_line("weight_ih") + 1;
    char want[32];
    snprintf(want, sizeof want, ":%d:", at + 1);
    expect_data_error(write_variant("short_lstm.txt", at, "0.1 0.2\n", n_lines), want);
    expect_data_error(write_variant("long_lstm.txt", at, "1 2 3 4 5 6\n", n_lines), want);
}

Test(gradref_files, bad_headers)
{
    int at = header_line("weight_hh");
    char want[32];
    snprintf(want, sizeof want, ":%d:", at + 1);
    expect_data_error(write_variant("neg_lstm.txt", at, "weight_hh -16 4\n", n_lines), want);
    expect_data_error(write_variant("huge_lstm.txt", at, "weight_hh 99999999999 4\n", n_lines), want);
    expect_data_error(write_variant("dup_lstm.txt", at, "weight_ih 16 4\n", n_lines), "twice");
    /* a row count one too small: the leftover row is read as a header */
    expect_data_error(write_variant("rows_lstm.txt", at, "weight_hh 15 4\n", n_lines), "row count");
}

Test(gradref_files, inconsistent_shapes_and_values)
{
    int at = header_line("loss");
    expect_data_error(write_variant("noloss_lstm.txt", at, "lossy 1 1\n", n_lines), "'loss'");
    at = header_line("targets") + 1;
    expect_data_error(write_variant("target_lstm.txt", at, "0 7 1\n", n_lines), "targets");
    expect_data_error(write_variant("frac_lstm.txt", at, "0 1.5 1\n", n_lines), "targets");
    /* LSTM weights in a file named gru: 16 rows are not 3 gates */
    expect_data_error(write_variant("wrong_gru.txt", -1, NULL, n_lines), "gates");
    expect_data_error(write_variant("empty_rnn.txt", -1, NULL, 0), "no tensors");
}

Test(gradref_files, garbage_never_crashes)
{
    char out[4096], err[4096], path[600];
    snprintf(path, sizeof path, "%s/garbage_lstm.txt", dir);
    FILE *f = fopen(path, "wb");
    unsigned s = 12345;
    for (int i = 0; i < 20000; i++) {
        s = s * 1103515245u + 12345u;
        fputc((int)(s >> 16) & 0xff, f);
    }
    fclose(f);
    cr_expect_eq(run_check(path, out, err, sizeof out), 1, "stderr: %s", err);
    cr_expect_eq(run_check("/nonexistent/x_lstm.txt", out, err, sizeof out), 1);
    cr_expect(strstr(err, "/nonexistent/x_lstm.txt") != NULL, "%s", err);
}
