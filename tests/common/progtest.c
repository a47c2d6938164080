/* Running an example program end to end from a Criterion suite (see
 * progtest.h). */
#include "progtest.h"
#include "st_header.h"

#include <criterion/criterion.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

char pt_dir[1024];
char pt_out[1 << 16], pt_err[1 << 16];

static const char *program_var; /* the environment variable naming the program */

void pt_setup(const char *exe_var, const char *tag)
{
    const char *base = getenv("TMPDIR");
    program_var = exe_var;
    snprintf(pt_dir, sizeof pt_dir, "%s/tg_%s_XXXXXX", base && *base ? base : "/tmp", tag);
    cr_assert_not_null(mkdtemp(pt_dir), "mkdtemp %s", pt_dir);
}

void pt_teardown(void)
{
    char cmd[sizeof pt_dir + 32];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", pt_dir);
    if (system(cmd) != 0) fprintf(stderr, "could not remove %s\n", pt_dir);
}

/* ------------------------------------------------------------------ files */

void pt_path(const char *name, char *path, size_t cap)
{
    snprintf(path, cap, "%s/%s", pt_dir, name);
}

char *pt_read(const char *name, size_t *len)
{
    char path[sizeof pt_dir + 256];
    pt_path(name, path, sizeof path);
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

void pt_write(const char *name, const void *bytes, size_t len)
{
    char path[sizeof pt_dir + 256];
    pt_path(name, path, sizeof path);
    FILE *f = fopen(path, "wb");
    cr_assert_not_null(f, "cannot write %s", path);
    cr_assert_eq(fwrite(bytes, 1, len, f), len);
    fclose(f);
}

void pt_copy(const char *from, const char *to)
{
    size_t n;
    char *bytes = pt_read(from, &n);
    cr_assert_not_null(bytes, "no %s to copy", from);
    pt_write(to, bytes, n);
    free(bytes);
}

int pt_exists(const char *name)
{
    char path[sizeof pt_dir + 256];
    struct stat st;
    pt_path(name, path, sizeof path);
    return stat(path, &st) == 0;
}

void pt_slurp(const char *path, char *buf, size_t cap)
{
    FILE *f = fopen(path, "rb");
    size_t n = f ? fread(buf, 1, cap - 1, f) : 0;
    buf[n] = 0;
    if (f) fclose(f);
}

int pt_count_lines(const char *name)
{
    size_t n;
    char *s = pt_read(name, &n);
    cr_assert_not_null(s, "%s missing", name);
    int lines = 0;
    for (size_t i = 0; i < n; i++) lines += s[i] == '\n';
    free(s);
    return lines;
}

/* ------------------------------------------------------------------ runs */

int pt_run_prog(const char *exe_var, const char *env, const char *args)
{
    const char *exe = getenv(exe_var);
    cr_assert_not_null(exe, "%s is not set", exe_var);
    char cmd[16384], op[sizeof pt_dir + 16], ep[sizeof pt_dir + 16];
    snprintf(op, sizeof op, "%s/stdout", pt_dir);
    snprintf(ep, sizeof ep, "%s/stderr", pt_dir);
    snprintf(cmd, sizeof cmd, "cd '%s' && %s '%s' %s > '%s' 2> '%s'", pt_dir, env, exe, args, op,
             ep);
    int st = system(cmd);
    cr_assert(WIFEXITED(st), "did not exit normally: %s", cmd);
    pt_slurp(op, pt_out, sizeof pt_out);
    pt_slurp(ep, pt_err, sizeof pt_err);
    return WEXITSTATUS(st);
}

int pt_run_env(const char *env, const char *args)
{
    cr_assert_not_null(program_var, "pt_setup was not called");
    return pt_run_prog(program_var, env, args);
}

int pt_run(const char *args) { return pt_run_env("", args); }

int pt_runf(const char *fmt, ...)
{
    char args[4096];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(args, sizeof args, fmt, ap);
    va_end(ap);
    return pt_run(args);
}

void pt_expect_one_line(const char *want)
{
    cr_assert(strstr(pt_err, want), "stderr lacks '%s':\n%s", want, pt_err);
    cr_assert_eq(strchr(pt_err, '\n'), pt_err + strlen(pt_err) - 1, "not one line:\n%s", pt_err);
}

void pt_expect_outputs_checked(const char *prog, const char *args, const char *dir)
{
    static const char *const flags[] = {"--save", "--log", "--checkpoint"};
    char want[256];
    for (size_t i = 0; i < sizeof flags / sizeof flags[0]; i++) {
        cr_assert_eq(pt_runf("%s %s no/such/out", args, flags[i]), 1, "%s", flags[i]);
        snprintf(want, sizeof want, "%s: %s no/such/out: directory 'no/such': No such file or "
                 "directory\n", prog, flags[i]);
        cr_assert_str_eq(pt_err, want);
        cr_assert_eq(pt_out[0], 0, "trained before failing: %s", pt_out);
    }
    cr_assert_eq(pt_runf("%s --save %s", args, dir), 1);
    snprintf(want, sizeof want, "%s: --save %s: is a directory", prog, dir);
    pt_expect_one_line(want);
}

const char *pt_result_line(void)
{
    const char *r = strstr(pt_out, "result: ");
    cr_assert_not_null(r, "no result line:\n%s\n%s", pt_out, pt_err);
    return r;
}

void pt_result_value(const char *key, char *buf, size_t cap)
{
    char pat[64];
    snprintf(pat, sizeof pat, " %s=", key);
    const char *p = strstr(pt_result_line(), pat);
    cr_assert_not_null(p, "result lacks %s: %s", key, pt_result_line());
    p += strlen(pat);
    size_t n = strcspn(p, " \n");
    cr_assert_lt(n, cap);
    memcpy(buf, p, n);
    buf[n] = '\0';
}

void pt_expect_refused(const char *args, const char *want)
{
    size_t n0, n1;
    char *before = pt_read("c.ck", &n0);
    cr_assert_eq(pt_run(args), 1, "%s\n%s", args, pt_err);
    pt_expect_one_line(want);
    cr_assert_null(strstr(pt_out, "result:"), "trained anyway: %s", pt_out);
    char *after = pt_read("c.ck", &n1);
    cr_assert(after && n0 == n1 && memcmp(before, after, n0) == 0, "c.ck was modified");
    free(before);
    free(after);
}

/* ------------------------------------------------------------------ checkpoints */

pt_st_file pt_st_read(const char *name)
{
    pt_st_file f = {0};
    f.bytes = pt_read(name, &f.len);
    cr_assert_not_null(f.bytes, "%s was not written", name);
    cr_assert_gt(f.len, 8);
    uint64_t n = pt_header_len(f.bytes);
    cr_assert_leq(n, f.len - 8, "%s: bad header length", name);
    f.header = malloc(n + 1);
    cr_assert_not_null(f.header);
    memcpy(f.header, f.bytes + 8, n);
    f.header[n] = '\0';
    f.data = f.bytes + 8 + n;
    f.data_len = f.len - 8 - n;
    return f;
}

void pt_st_free(pt_st_file *f)
{
    free(f->bytes);
    free(f->header);
}

void pt_st_meta(const pt_st_file *f, const char *key, char *buf, size_t cap)
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

void pt_meta_of(const char *name, const char *key, char *buf, size_t cap)
{
    pt_st_file f = pt_st_read(name);
    pt_st_meta(&f, key, buf, cap);
    pt_st_free(&f);
}

void pt_expect_meta(const char *name, const char *key, const char *want)
{
    char v[256];
    pt_meta_of(name, key, v, sizeof v);
    cr_assert_str_eq(v, want, "%s: metadata '%s'", name, key);
}

void pt_expect_same_state(const char *a_name, const char *b_name, const char *const *keys)
{
    pt_st_file a = pt_st_read(a_name), b = pt_st_read(b_name);
    cr_assert_eq(a.data_len, b.data_len, "%s and %s differ in size", a_name, b_name);
    cr_assert(memcmp(a.data, b.data, a.data_len) == 0,
              "tensors of %s and %s differ (parameters, optimizer moments or carried state)",
              a_name, b_name);
    for (size_t i = 0; keys[i]; i++) {
        static char va[4096], vb[4096];
        pt_st_meta(&a, keys[i], va, sizeof va);
        pt_st_meta(&b, keys[i], vb, sizeof vb);
        cr_assert_str_eq(va, vb, "metadata '%s' differs", keys[i]);
    }
    pt_st_free(&a);
    pt_st_free(&b);
}

void pt_expect_same_bytes(const char *a_name, const char *b_name)
{
    size_t na, nb;
    char *a = pt_read(a_name, &na), *b = pt_read(b_name, &nb);
    cr_assert(a && b, "%s or %s missing", a_name, b_name);
    cr_assert(na == nb && memcmp(a, b, na) == 0, "%s and %s differ", a_name, b_name);
    free(a);
    free(b);
}
