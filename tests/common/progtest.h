/* Running an example program end to end from a Criterion suite: a scratch
 * folder per test, the program run in it with its stdout and stderr
 * captured, files read and written there, and the checks the programs'
 * suites share (one line on stderr, the result line, safetensors
 * checkpoints compared tensor for tensor and key for key).
 *
 *   static void setup(void) { pt_setup("CHARLM_EXE", "charlm_resume"); }
 *   TestSuite(charlm_resume, .init = setup, .fini = pt_teardown);
 *   Test(charlm_resume, x) {
 *       cr_assert_eq(pt_run("--text ko.txt --steps 3"), 0, "%s", pt_err);
 *       pt_expect_one_line(...);
 *   }
 *
 * Every name is relative to pt_dir. Failures are Criterion assertions of
 * the calling test. Compiled into each suite that uses it (see
 * tests/common/meson.build: progtest_src). */
#ifndef TG_TESTS_PROGTEST_H
#define TG_TESTS_PROGTEST_H

#include <stddef.h>

/* The test's scratch folder, and the last run's stdout and stderr. */
extern char pt_dir[1024];
extern char pt_out[1 << 16], pt_err[1 << 16];

/* Makes pt_dir ($TMPDIR or /tmp, "tg_<tag>_XXXXXX") and remembers the
 * environment variable that names the program (exe_var, set by meson). */
void pt_setup(const char *exe_var, const char *tag);
/* Removes pt_dir and everything in it. */
void pt_teardown(void);

/* ------------------------------------------------------------------ files */

/* pt_dir/name into path. */
void pt_path(const char *name, char *path, size_t cap);
/* The whole file (malloc'ed, NUL-terminated), its size in *len; NULL if absent. */
char *pt_read(const char *name, size_t *len);
void pt_write(const char *name, const void *bytes, size_t len);
/* A copy of file from as file to (both in pt_dir); fails when from is absent. */
void pt_copy(const char *from, const char *to);
int pt_exists(const char *name);
/* At most cap-1 bytes of the file at path (any path) into buf; "" if absent. */
void pt_slurp(const char *path, char *buf, size_t cap);
/* Lines (newlines) in the file; fails when it is absent. */
int pt_count_lines(const char *name);

/* ------------------------------------------------------------------ runs */

/* Runs program exe_var (from the environment) with args in pt_dir under
 * the environment assignments env ("" for none); the exit code, with
 * stdout in pt_out and stderr in pt_err. A signal fails the test. */
int pt_run_prog(const char *exe_var, const char *env, const char *args);
/* The same for the program of pt_setup. */
int pt_run_env(const char *env, const char *args);
int pt_run(const char *args);
int pt_runf(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

/* stderr is one line that contains want. */
void pt_expect_one_line(const char *want);
/* The "result: " line of stdout (fails without one). */
const char *pt_result_line(void);
/* Text of "key=value" in the result line, into buf. */
void pt_result_value(const char *key, char *buf, size_t cap);

/* Runs args, expects exit 1 with one line on stderr holding want, no
 * result line, and checkpoint c.ck byte for byte as it was. */
void pt_expect_refused(const char *args, const char *want);

/* --save, --log and --checkpoint into a missing folder, and --save onto the
 * folder dir, each added to args: exit 1 at start-up with the program's
 * (prog) one-line message, nothing on stdout. */
void pt_expect_outputs_checked(const char *prog, const char *args, const char *dir);

/* ------------------------------------------------------------------ checkpoints */

/* A safetensors file split into its JSON header and its data section. */
typedef struct pt_st_file {
    char *bytes;
    size_t len;
    char *header; /* NUL-terminated copy */
    const char *data;
    size_t data_len;
} pt_st_file;

pt_st_file pt_st_read(const char *name);
void pt_st_free(pt_st_file *f);
/* A metadata string of the header, into buf (compact JSON: "key":"value"). */
void pt_st_meta(const pt_st_file *f, const char *key, char *buf, size_t cap);
/* The same, reading the file name. */
void pt_meta_of(const char *name, const char *key, char *buf, size_t cap);
void pt_expect_meta(const char *name, const char *key, const char *want);

/* The same tensors (parameters, optimizer moments, carried state) and the
 * same values of the metadata keys (a NULL-terminated list: the loop's
 * state that an exact resume must restore). */
void pt_expect_same_state(const char *a_name, const char *b_name, const char *const *keys);
/* The two files are equal byte for byte. */
void pt_expect_same_bytes(const char *a_name, const char *b_name);

#endif
