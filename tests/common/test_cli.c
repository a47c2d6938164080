/* examples/common/cli: the flag parser (every accepted and rejected form,
 * all-or-nothing stores, exit codes of the exiting wrapper), usage text, CSV
 * log, progress line and duration formatting. */
#include <criterion/criterion.h>
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <unistd.h>

#include "cli.h"

typedef struct vals {
    int hidden, verbose;
    double lr;
    const char *cell, *text;
    uint64_t seed;
} vals;

static vals v;
static tg_flag flags[6];

static void setup(void)
{
    v = (vals){.hidden = 256, .verbose = 0, .lr = 0.002, .cell = "lstm", .text = NULL, .seed = 7};
    tg_flag f[6] = {
        {"hidden", TG_INT, &v.hidden, "hidden units", 1, 65536, NULL},
        {"lr", TG_DOUBLE, &v.lr, "learning rate", 0, 10, NULL},
        {"cell", TG_STR, &v.cell, "cell kind", 0, 0, "rnn,lstm,gru"},
        {"text", TG_STR, &v.text, "training text", 0, 0, NULL},
        {"verbose", TG_BOOL, &v.verbose, "chatty output", 0, 0, NULL},
        {"seed", TG_U64, &v.seed, "random seed", 0, 0, NULL},
    };
    memcpy(flags, f, sizeof f);
}

TestSuite(cli, .init = setup, .timeout = 30);

/* Parses a space-separated command line (no quoting) with the test's flags. */
static int parse(const char *line, char *err, size_t errlen, int *first_pos)
{
    static char buf[1024];
    static char *argv[64];
    int argc = 0;
    snprintf(buf, sizeof buf, "%s", line);
    argv[argc++] = "prog";
    for (char *tok = strtok(buf, " "); tok && argc < 63; tok = strtok(NULL, " ")) argv[argc++] = tok;
    argv[argc] = NULL;
    return tg_cli_parse_args(argc, argv, flags, 6, first_pos, err, errlen);
}

static void expect_error(const char *line, const char *message)
{
    char err[512];
    vals before = v;
    int rc = parse(line, err, sizeof err, NULL);
    cr_assert_eq(rc, TG_CLI_USAGE, "'%s' was accepted", line);
    cr_assert_str_eq(err, message, "'%s'", line);
    cr_assert(memcmp(&before, &v, sizeof v) == 0, "'%s' changed a value", line);
}

Test(cli, both_value_forms_and_every_type)
{
    char err[512];
    cr_assert_eq(parse("--hidden 128 --lr=0.5 --cell gru --text=a=b.txt --verbose --seed 18446744073709551615",
                       err, sizeof err, NULL), TG_CLI_OK, "%s", err);
    cr_assert_eq(v.hidden, 128);
    cr_assert_eq(v.lr, 0.5);
    cr_assert_str_eq(v.cell, "gru");
    cr_assert_str_eq(v.text, "a=b.txt", "only the first '=' splits");
    cr_assert_eq(v.verbose, 1);
    cr_assert_eq(v.seed, UINT64_MAX);
}

Test(cli, negative_number_is_a_value_and_last_flag_wins)
{
    char err[512];
    flags[1].min = -5;
    cr_assert_eq(parse("--lr -1.5e-1 --hidden 3 --hidden 4", err, sizeof err, NULL), TG_CLI_OK, "%s", err);
    cr_assert_eq(v.lr, -0.15);
    cr_assert_eq(v.hidden, 4);
}

Test(cli, bool_values)
{
    char err[512];
    cr_assert_eq(parse("--verbose=yes", err, sizeof err, NULL), TG_CLI_OK);
    cr_assert_eq(v.verbose, 1);
    cr_assert_eq(parse("--verbose=off", err, sizeof err, NULL), TG_CLI_OK);
    cr_assert_eq(v.verbose, 0);
    expect_error("--verbose=maybe", "--verbose: expected true or false, got 'maybe'");
}

Test(cli, malformed_numbers)
{
    expect_error("--hidden 12x", "--hidden: expected an integer, got '12x'");
    expect_error("--hidden=", "--hidden: expected an integer, got ''");
    expect_error("--hidden 1.5", "--hidden: expected an integer, got '1.5'");
    expect_error("--hidden 0x10", "--hidden: expected an integer, got '0x10'");
    expect_error("--lr abc", "--lr: expected a number, got 'abc'");
    expect_error("--lr nan", "--lr: expected a number, got 'nan'");
    expect_error("--lr inf", "--lr: expected a number, got 'inf'");
    /* decimal only, as the integer flags: strtod's hex and spellings of
     * infinity were values (--lr 0x10 was 16) */
    expect_error("--lr 0x10", "--lr: expected a number, got '0x10'");
    expect_error("--lr 0x1p-3", "--lr: expected a number, got '0x1p-3'");
    expect_error("--lr infinity", "--lr: expected a number, got 'infinity'");
    expect_error("--lr .", "--lr: expected a number, got '.'");
    expect_error("--lr 1e", "--lr: expected a number, got '1e'");
    expect_error("--lr 1e+", "--lr: expected a number, got '1e+'");
    expect_error("--lr e3", "--lr: expected a number, got 'e3'");
    expect_error("--lr 1.2.3", "--lr: expected a number, got '1.2.3'");
    expect_error("--seed -1", "--seed: expected a non-negative integer, got '-1'");
    expect_error("--seed 18446744073709551616",
                 "--seed: '18446744073709551616' is out of range for a non-negative integer");
}

Test(cli, out_of_range)
{
    expect_error("--hidden 0", "--hidden: '0' is out of range (expected an integer in [1, 65536])");
    expect_error("--hidden 99999999999",
                 "--hidden: '99999999999' is out of range (expected an integer in [1, 65536])");
    expect_error("--lr 10.5", "--lr: '10.5' is out of range (expected a number in [0, 10])");
    /* beyond a double: was "expected a number" */
    expect_error("--lr 1e999", "--lr: '1e999' is out of range (expected a number in [0, 10])");
    /* below a double's smallest normal value: 1e-400 was taken as 0 */
    expect_error("--lr 1e-400", "--lr: '1e-400' is out of range (expected a number in [0, 10]: "
                 "0, or at least 2.22507e-308 away from 0)");
    expect_error("--lr 1e-310", "--lr: '1e-310' is out of range (expected a number in [0, 10]: "
                 "0, or at least 2.22507e-308 away from 0)");
}

/* The decimal forms the programs' docs, scripts and tests give (Python's
 * str(float) among them), and 0 however small its exponent. */
Test(cli, decimal_forms_accepted)
{
    const char *forms[] = {"1e-3", ".5", "5.", "+0.5", "2E-3", "1.5e+0", "007", "0e-999", "0.0"};
    const double want[] = {1e-3, 0.5, 5.0, 0.5, 2e-3, 1.5, 7.0, 0.0, 0.0};
    for (size_t i = 0; i < sizeof forms / sizeof *forms; i++) {
        char line[64], err[512];
        snprintf(line, sizeof line, "--lr %s", forms[i]);
        cr_assert_eq(parse(line, err, sizeof err, NULL), TG_CLI_OK, "'%s': %s", forms[i], err);
        cr_assert_eq(v.lr, want[i], "'%s' read as %g", forms[i], v.lr);
    }
}

Test(cli, unknown_missing_positional_choices)
{
    expect_error("--bogus 3", "--bogus: unknown flag (try --help)");
    expect_error("--hid 3", "--hid: unknown flag (try --help)");
    expect_error("-x", "-x: unknown flag (flags start with --; try --help)");
    expect_error("--hidden", "--hidden: missing value (expected an integer)");
    expect_error("stray", "unexpected argument 'stray' (this program takes only flags)");
    expect_error("--cell foo", "--cell: expected one of rnn,lstm,gru, got 'foo'");
    expect_error("--cell ls", "--cell: expected one of rnn,lstm,gru, got 'ls'");
}

Test(cli, all_or_nothing)
{
    /* a good flag before a bad one is not stored */
    expect_error("--hidden 64 --lr oops", "--lr: expected a number, got 'oops'");
    cr_assert_eq(v.hidden, 256);
}

Test(cli, help_stores_nothing)
{
    char err[512];
    cr_assert_eq(parse("--hidden 64 --help", err, sizeof err, NULL), TG_CLI_HELP);
    cr_assert_eq(v.hidden, 256);
    cr_assert_eq(parse("-h --bogus", err, sizeof err, NULL), TG_CLI_HELP);
    /* a value that looks like -h is still the value of --text */
    cr_assert_eq(parse("--text -h", err, sizeof err, NULL), TG_CLI_OK);
    cr_assert_str_eq(v.text, "-h");
}

/* An empty string is no file name and no choice: "--text=" opened a file
 * named "" and said ": No such file or directory", naming no flag. */
Test(cli, an_empty_string_value_is_refused_naming_the_flag)
{
    expect_error("--text=", "--text: empty value (expected a value; leave the flag out for its "
                            "default)");
    expect_error("--cell=", "--cell: empty value (expected one of rnn,lstm,gru)");
    cr_assert_null(v.text);
}

Test(cli, positionals)
{
    char err[512];
    int first = -1;
    cr_assert_eq(parse("--hidden 8 in.txt -1 x", err, sizeof err, &first), TG_CLI_OK);
    cr_assert_eq(first, 3, "parsing stops at the first positional");
    cr_assert_eq(v.hidden, 8);
    /* a flag after it would be taken for an argument and not applied: refused */
    cr_assert_eq(parse("--hidden 7 in.txt --lr 1", err, sizeof err, &first), TG_CLI_USAGE);
    cr_assert(strstr(err, "--lr after 'in.txt': flags go before the arguments"), "%s", err);
    cr_assert_eq(v.hidden, 8, "a refused command line stores nothing");
    cr_assert_eq(v.lr, 0.002);
    cr_assert_eq(parse("--hidden 9 -- --lr", err, sizeof err, &first), TG_CLI_OK);
    cr_assert_eq(first, 4);
    cr_assert_eq(parse("--hidden 9", err, sizeof err, &first), TG_CLI_OK);
    cr_assert_eq(first, 3, "argc when there is none");
    cr_assert_eq(parse("-", err, sizeof err, &first), TG_CLI_OK);
    cr_assert_eq(first, 1, "'-' is a positional");
}

Test(cli, given)
{
    char *argv[] = {"prog", "--text", "--hidden", "--lr=3", NULL};
    cr_assert(tg_cli_given(4, argv, flags, 6, "lr"));
    cr_assert(tg_cli_given(4, argv, flags, 6, "text"));
    cr_assert(!tg_cli_given(4, argv, flags, 6, "hidden"), "'--hidden' was --text's value");
    cr_assert(!tg_cli_given(4, argv, flags, 6, "seed"));
    cr_assert(!tg_cli_given(4, argv, flags, 6, "nonexistent"));
}

/* tg_cli_usage's text for fl (n flags) into buf. */
static void usage_text(const tg_flag *fl, int n, const char *summary, char *buf, size_t cap)
{
    FILE *f = tmpfile();
    cr_assert_not_null(f);
    tg_cli_usage(f, fl, n, "prog", summary);
    rewind(f);
    size_t got = fread(buf, 1, cap - 1, f);
    buf[got] = 0;
    fclose(f);
}

Test(cli, usage_lists_every_flag_with_its_default)
{
    char buf[4096];
    v.text = NULL;
    usage_text(flags, 6, "Does things.", buf, sizeof buf);
    cr_assert(strstr(buf, "usage: prog [flags]\nDoes things.\n"), "%s", buf);
    const char *lines[] = {"--hidden N", "(default: 256)", "--lr X", "(default: 0.002)",
                           "--cell STR", "(one of rnn,lstm,gru)", "(default: lstm)",
                           "--text STR", "(default: none)", "--verbose ", "(default: off)",
                           "--seed N", "(default: 7)", "-h, --help", "[1..65536]"};
    for (size_t i = 0; i < sizeof lines / sizeof lines[0]; i++)
        cr_assert(strstr(buf, lines[i]), "missing '%s' in:\n%s", lines[i], buf);
}

/* A default outside the flag's range is a sentinel the help text explains
 * ("default 8000 with --train"): no "(default: -1)" beside "[0..100]". */
Test(cli, usage_omits_a_sentinel_default)
{
    char buf[1024];
    int pieces = -1;
    tg_flag fl[1] = {{"pieces", TG_INT, &pieces, "pieces (default: by corpus)", 0, 100, NULL}};
    usage_text(fl, 1, "", buf, sizeof buf);
    cr_assert(strstr(buf, "pieces (default: by corpus) [0..100]\n"), "%s", buf);
    cr_assert(!strstr(buf, "-1"), "the sentinel was printed:\n%s", buf);
}

static void parse_and_exit(const char *arg)
{
    char *argv[] = {"prog", (char *)arg, NULL};
    tg_cli_parse(2, argv, flags, 6, "prog", "", NULL);
    exit(5); /* only reached when parsing succeeded */
}

Test(cli, wrapper_exits_2_on_a_bad_flag, .exit_code = 2) { parse_and_exit("--hidden=12x"); }
Test(cli, wrapper_exits_0_on_help, .exit_code = 0)
{
    freopen("/dev/null", "w", stdout);
    parse_and_exit("--help");
}
Test(cli, wrapper_returns_on_success, .exit_code = 5) { parse_and_exit("--hidden=12"); }
Test(cli, die_usage_exits_2, .exit_code = 2) { tg_cli_die_usage("prog", "bad %s", "combo"); }
Test(cli, die_exits_1, .exit_code = 1) { tg_cli_die("prog", "file %s", "x"); }

/* ------------------------------------------------------------------ csv, progress */

/* A model file's dropout is read as --dropout takes it: up to
 * TG_CLI_DROPOUT_MAX, no leading space, the whole string a number. */
Test(cli, a_model_files_dropout_is_read_as_the_flag_takes_it)
{
    const char *good[] = {"0", "0.95", "9.5e-1", ".5", "5e-1", "0e-999"};
    /* an underflow and hex too, as the flag refuses them */
    const char *bad[] = {"0.96", "0.999", " 0.5", "0.5 ", "nan", "inf", "-0.1", "", "0.1abc",
                         "1e-320", "0x1p-2", "1e999"};
    char err[256];
    double d;
    for (size_t i = 0; i < sizeof good / sizeof *good; i++)
        cr_expect_eq(tg_meta_dropout("m.tg", "k.dropout", good[i], &d, err, sizeof err), 0,
                     "'%s' refused: %s", good[i], err);
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
        err[0] = 0;
        cr_expect_eq(tg_meta_dropout("m.tg", "k.dropout", bad[i], &d, err, sizeof err), -1,
                     "'%s' accepted", bad[i]);
        cr_expect(strstr(err, "m.tg") && strstr(err, "'k.dropout'") && strstr(err, "[0, 0.95]"),
                  "%s", err);
    }
    tg_meta_dropout("m.tg", "k.dropout", " 0.5", &d, err, sizeof err);
    cr_expect(strstr(err, "no space before it"), "%s", err);
}

/* The CSV tests' file: made by csv_temp, removed by their .fini, which
 * Criterion runs after a failed assertion too (removed at each test's end,
 * it was left in /tmp whenever an assertion before that failed). */
static char csv_path[32];

static const char *csv_temp(void)
{
    char path[] = "/tmp/tg_cli_csv_XXXXXX";
    int fd = mkstemp(path);
    cr_assert(fd >= 0, "mkstemp %s", path);
    close(fd);
    memcpy(csv_path, path, sizeof path);
    return csv_path;
}

static void remove_csv_temp(void)
{
    if (csv_path[0]) unlink(csv_path);
    csv_path[0] = '\0';
}

Test(cli, csv_writes_header_and_rows, .fini = remove_csv_temp)
{
    const char *path = csv_temp();
    char err[512], buf[256];
    tg_csv c;
    cr_assert_eq(tg_csv_open(&c, path, "step,loss", err, sizeof err), 0, "%s", err);
    tg_csv_row(&c, "%d,%.2f", 1, 2.5);
    tg_csv_row(&c, "%d,%.2f", 2, 1.25);
    cr_assert_eq(tg_csv_close(&c, err, sizeof err), 0, "%s", err);
    FILE *f = fopen(path, "r");
    size_t n = fread(buf, 1, sizeof buf - 1, f);
    buf[n] = 0;
    fclose(f);
    cr_assert_str_eq(buf, "step,loss\n1,2.50\n2,1.25\n");
}

/* Each row is on disk when tg_csv_row returns (a run killed later keeps it:
 * the log was flushed only at close, and a run killed after hours of
 * training left it empty), and a resumed run's log cuts a torn last row
 * before appending (a killed run's "429,0.412,2745" became the start of an
 * 11-field row). */
static void read_all(const char *path, char *buf, size_t cap)
{
    FILE *f = fopen(path, "r");
    cr_assert_not_null(f);
    size_t n = fread(buf, 1, cap - 1, f);
    buf[n] = 0;
    fclose(f);
}

Test(cli, csv_rows_are_on_disk_at_once_and_a_resume_cuts_a_torn_row, .fini = remove_csv_temp)
{
    const char *path = csv_temp();
    char err[512], buf[256];
    tg_csv c;
    cr_assert_eq(tg_csv_open(&c, path, "step,loss", err, sizeof err), 0, "%s", err);
    tg_csv_row(&c, "%d,%.2f", 1, 2.5);
    read_all(path, buf, sizeof buf); /* before close */
    cr_assert_str_eq(buf, "step,loss\n1,2.50\n");
    cr_assert_eq(tg_csv_close(&c, err, sizeof err), 0, "%s", err);
    FILE *f = fopen(path, "a");
    fputs("2,1.2", f); /* killed while writing row 2 */
    fclose(f);
    cr_assert_eq(tg_csv_open_run(&c, path, "step,loss", 1, err, sizeof err), 0, "%s", err);
    tg_csv_row(&c, "%d,%.2f", 2, 1.25);
    cr_assert_eq(tg_csv_close(&c, err, sizeof err), 0, "%s", err);
    read_all(path, buf, sizeof buf);
    cr_assert_str_eq(buf, "step,loss\n1,2.50\n2,1.25\n");
    f = fopen(path, "w");
    fputs("no newline at all", f); /* not even the header is whole: a new one */
    fclose(f);
    cr_assert_eq(tg_csv_open_run(&c, path, "step,loss", 1, err, sizeof err), 0, "%s", err);
    tg_csv_row(&c, "%d,%.2f", 3, 1.0);
    cr_assert_eq(tg_csv_close(&c, err, sizeof err), 0, "%s", err);
    read_all(path, buf, sizeof buf);
    cr_assert_str_eq(buf, "step,loss\n3,1.00\n");
}

/* The messages name the flag and the file ("/dev/full: cannot write ..." named no flag). */
Test(cli, csv_disabled_and_failures_name_the_flag_and_file)
{
    char err[512] = "";
    tg_csv c;
    cr_assert_eq(tg_csv_open(&c, NULL, "a,b", err, sizeof err), 0);
    tg_csv_row(&c, "%d", 1); /* no-op */
    cr_assert_eq(tg_csv_close(&c, err, sizeof err), 0);
    cr_assert_eq(tg_csv_open(&c, "/nonexistent-dir/x.csv", "a", err, sizeof err), -1);
    cr_assert(strstr(err, "--log /nonexistent-dir/x.csv: cannot open log file: No such file"),
              "%s", err);
    if (fopen("/dev/full", "w")) { /* refused at once: its header cannot be written */
        cr_assert_eq(tg_csv_open(&c, "/dev/full", "a", err, sizeof err), -1);
        cr_assert_str_eq(err, "--log /dev/full: cannot write log file: No space left on device");
        cr_assert_null(c.f);
    }
}

/* A row that cannot be written says so at once (the training run stops at
 * it: tgx_run_stop), and keeps saying so to the close: a full disk after
 * the header, made here by a file size limit. Was: only the close knew. */
Test(cli, csv_a_row_that_cannot_be_written_is_reported_at_once, .fini = remove_csv_temp)
{
    const char *path = csv_temp();
    char err[512] = "";
    tg_csv c;
    cr_assert_eq(tg_csv_open(&c, path, "step,loss", err, sizeof err), 0, "%s", err);
    cr_assert_eq(tg_csv_row(&c, "%d,%.2f", 1, 2.5), 0);
    signal(SIGXFSZ, SIG_IGN); /* the write fails with EFBIG instead (a forked test: its own) */
    struct rlimit lim;
    cr_assert_eq(getrlimit(RLIMIT_FSIZE, &lim), 0);
    lim.rlim_cur = 19; /* the 17 bytes so far and 2 of row 2 (the hard limit kept) */
    cr_assert_eq(setrlimit(RLIMIT_FSIZE, &lim), 0);
    cr_assert_eq(tg_csv_row(&c, "%d,%.2f", 2, 1.25), -1, "a lost row must be reported");
    cr_assert_eq(c.err, EFBIG);
    cr_assert_eq(tg_csv_row(&c, "%d,%.2f", 3, 1.0), -1);
    cr_assert_eq(c.err, EFBIG, "the first failure is the one kept");
    cr_assert_eq(tg_csv_close(&c, err, sizeof err), -1);
    char want[600];
    snprintf(want, sizeof want, "--log %s: write error: File too large", path);
    cr_assert_str_eq(err, want);
}

Test(cli, progress_plain_lines_are_rate_limited)
{
    FILE *f = tmpfile();
    tg_progress p;
    tg_progress_init(&p, f, 3600.0);
    cr_assert_eq(p.tty, 0);
    cr_assert_eq(tg_progress_update(&p, 0, "step %d", 1), 1, "the first line is drawn");
    cr_assert_eq(tg_progress_update(&p, 0, "step %d", 2), 0, "then not before the interval");
    cr_assert_eq(tg_progress_update(&p, 1, "step %d", 3), 1, "unless forced");
    tg_progress_done(&p);
    char buf[256];
    rewind(f);
    size_t n = fread(buf, 1, sizeof buf - 1, f);
    buf[n] = 0;
    fclose(f);
    cr_assert_str_eq(buf, "step 1\nstep 3\n", "plain lines, no carriage returns");
}

Test(cli, durations)
{
    char b[32];
    tg_format_duration(12.34, b, sizeof b);
    cr_assert_str_eq(b, "12.3s");
    tg_format_duration(185, b, sizeof b);
    cr_assert_str_eq(b, "3m05s");
    tg_format_duration(3720, b, sizeof b);
    cr_assert_str_eq(b, "1h02m");
    tg_format_duration(-1, b, sizeof b);
    cr_assert_str_eq(b, "?");
    tg_format_duration(1.0 / 0.0, b, sizeof b);
    cr_assert_str_eq(b, "?");
}

Test(cli, clock_is_monotonic)
{
    double a = tg_clock_seconds(), b = tg_clock_seconds();
    cr_assert(b >= a);
}
