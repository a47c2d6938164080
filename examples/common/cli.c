/* Flag parser, progress line, CSV log, clock and result line (see cli.h). */
#include "cli.h"

#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <float.h>
#include <limits.h>
#include <math.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <sys/auxv.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "tapegrad.h" /* tg_panel_kernel_check */
#include "tg_dist.h"  /* tg_dist_launcher_size, tg_dist_world */

/* ------------------------------------------------------------------ values */

typedef union flag_value {
    int i;
    double d;
    const char *s;
    uint64_t u;
} flag_value;

static const char *type_noun(tg_flag_type type)
{
    switch (type) {
    case TG_INT: return "an integer";
    case TG_U64: return "a non-negative integer";
    case TG_DOUBLE: return "a number";
    case TG_BOOL: return "true or false";
    case TG_STR: return "a string";
    }
    return "a value";
}

/* strtol & co. skip leading blanks; a flag value must not have them. */
static int starts_clean(const char *s) { return s[0] != '\0' && !isspace((unsigned char)s[0]); }

/* Digits from *p on, how many; *p moved past them. */
static size_t skip_digits(const char **p)
{
    size_t n = 0;
    while (isdigit((unsigned char)**p)) (*p)++, n++;
    return n;
}

/* Whether the whole of v is a decimal number: [+-] digits [. digits]
 * [e [+-] digits], with a digit before or after the point ("5.", ".5",
 * "1e-3"). strtod takes more, and the integer flags take none of it: hex
 * ("0x10" was 16, "0x1p-3" 0.125), "inf", "nan", "infinity". */
static int decimal_syntax(const char *v)
{
    const char *p = v + (*v == '+' || *v == '-');
    size_t digits = skip_digits(&p);
    if (*p == '.') p++, digits += skip_digits(&p);
    if (digits == 0) return 0;
    if (*p == 'e' || *p == 'E') {
        p++;
        p += *p == '+' || *p == '-';
        if (skip_digits(&p) == 0) return 0;
    }
    return *p == '\0';
}

/* How v reads as a real number (whole_number). */
typedef enum number_read {
    NUM_OK,
    NUM_BAD,       /* not a decimal number */
    NUM_OVERFLOW,  /* beyond the largest double ("1e400") */
    NUM_UNDERFLOW, /* not 0, and below the smallest normal double ("1e-400" read as 0) */
} number_read;

/* The whole of v, a decimal number with nothing before it, into *x: how a
 * --flag's real value and a model file's dropout are both read. One out of
 * a double's range is no number: strtod's infinity would be refused as
 * "expected a number", and its 0 or denormal for "1e-400" taken silently. */
static number_read whole_number(const char *v, double *x)
{
    char *end;
    if (!starts_clean(v) || !decimal_syntax(v)) return NUM_BAD;
    errno = 0;
    *x = strtod(v, &end);
    if (*end) return NUM_BAD; /* a locale whose point is not '.' (a program's setlocale) */
    if (errno != ERANGE) return NUM_OK;
    return isfinite(*x) ? NUM_UNDERFLOW : NUM_OVERFLOW;
}

static int in_choices(const char *choices, const char *v)
{
    size_t len = strlen(v);
    const char *p = choices;
    while (*p) {
        const char *comma = strchr(p, ',');
        size_t n = comma ? (size_t)(comma - p) : strlen(p);
        if (n == len && strncmp(p, v, n) == 0) return 1;
        p += n;
        if (*p == ',') p++;
    }
    return 0;
}

static int parse_bool(const char *v, int *out)
{
    static const char *const yes[] = {"1", "true", "yes", "on"};
    static const char *const no[] = {"0", "false", "no", "off"};
    for (int k = 0; k < 4; k++) {
        if (strcmp(v, yes[k]) == 0) return *out = 1, 0;
        if (strcmp(v, no[k]) == 0) return *out = 0, 0;
    }
    return -1;
}

static int range_ok(const tg_flag *f, double x) { return !(f->min < f->max) || (x >= f->min && x <= f->max); }

/* Parses text v for flag f into *out. 0 ok, else err filled. */
static int parse_value(const tg_flag *f, const char *v, flag_value *out, char *err, size_t errlen)
{
    char *end = NULL;
    errno = 0;
    switch (f->type) {
    case TG_INT: {
        long x = starts_clean(v) ? strtol(v, &end, 10) : 0;
        if (!starts_clean(v) || *end != '\0') break;
        if (errno == ERANGE || x < INT_MIN || x > INT_MAX || !range_ok(f, (double)x)) goto range;
        out->i = (int)x;
        return 0;
    }
    case TG_U64: {
        unsigned long long x = (starts_clean(v) && v[0] != '-') ? strtoull(v, &end, 10) : 0;
        if (!starts_clean(v) || v[0] == '-' || *end != '\0') break;
        if (errno == ERANGE || !range_ok(f, (double)x)) goto range;
        out->u = (uint64_t)x;
        return 0;
    }
    case TG_DOUBLE: {
        double x;
        number_read r = whole_number(v, &x);
        if (r == NUM_BAD) break;
        if (r == NUM_UNDERFLOW) goto tiny;
        if (r == NUM_OVERFLOW || !range_ok(f, x)) goto range;
        out->d = x;
        return 0;
    }
    case TG_BOOL:
        if (parse_bool(v, &out->i) != 0) break;
        return 0;
    case TG_STR:
        if (!v[0]) { /* a file named "" was opened as one, "--train: No such file" */
            snprintf(err, errlen, "--%s: empty value (expected %s%s)", f->name,
                     f->choices ? "one of " : "a value; leave the flag out for its default",
                     f->choices ? f->choices : "");
            return -1;
        }
        if (f->choices && !in_choices(f->choices, v)) {
            snprintf(err, errlen, "--%s: expected one of %s, got '%s'", f->name, f->choices, v);
            return -1;
        }
        out->s = v;
        return 0;
    }
    snprintf(err, errlen, "--%s: expected %s, got '%s'", f->name, type_noun(f->type), v);
    return -1;
range:
    if (f->min < f->max)
        snprintf(err, errlen, "--%s: '%s' is out of range (expected %s in [%.15g, %.15g])",
                 f->name, v, type_noun(f->type), f->min, f->max);
    else
        snprintf(err, errlen, "--%s: '%s' is out of range for %s", f->name, v, type_noun(f->type));
    return -1;
tiny: /* in [min, max] as written, but strtod made it 0 or dropped its digits */
    if (f->min < f->max)
        snprintf(err, errlen, "--%s: '%s' is out of range (expected a number in [%.15g, %.15g]: "
                 "0, or at least %g away from 0)", f->name, v, f->min, f->max, DBL_MIN);
    else
        snprintf(err, errlen, "--%s: '%s' is out of range for a number (0, or at least %g away "
                 "from 0)", f->name, v, DBL_MIN);
    return -1;
}

static void store_value(const tg_flag *f, flag_value v)
{
    switch (f->type) {
    case TG_INT:
    case TG_BOOL: *(int *)f->dest = v.i; break;
    case TG_U64: *(uint64_t *)f->dest = v.u; break;
    case TG_DOUBLE: *(double *)f->dest = v.d; break;
    case TG_STR: *(const char **)f->dest = v.s; break;
    }
}

static const tg_flag *find_flag(const tg_flag *flags, int n, const char *name, size_t len)
{
    for (int k = 0; k < n; k++)
        if (strlen(flags[k].name) == len && strncmp(flags[k].name, name, len) == 0) return &flags[k];
    return NULL;
}

/* ------------------------------------------------------------------ parse */

/* A flag among the positional arguments from argv[i] on (not after a lone
 * "--"): "--beam 5" after a sentence was translated as text, the flag
 * silently not applied. TG_CLI_USAGE naming it, else TG_CLI_OK. */
static int flag_after_positional(int argc, char **argv, int i, char *err, size_t errlen)
{
    for (; i < argc; i++)
        if (argv[i][0] == '-' && argv[i][1] == '-' && argv[i][2]) {
            snprintf(err, errlen, "%.60s after '%.60s': flags go before the arguments (and an "
                     "argument that starts with -- after a lone -- before them all)", argv[i],
                     argv[i - 1]);
            return TG_CLI_USAGE;
        }
    return TG_CLI_OK;
}

/* One pass over argv. store == 0 only validates (and finds --help), so a bad
 * or help command line leaves every dest untouched. */
static int parse_pass(int argc, char **argv, const tg_flag *flags, int n, int *first_positional,
                      int store, const tg_flag *watch, int *seen, char *err, size_t errlen)
{
    int i = 1;
    for (; i < argc; i++) {
        const char *a = argv[i];
        if (strcmp(a, "--") == 0) {
            i++;
            break;
        }
        if (strcmp(a, "-h") == 0 || strcmp(a, "--help") == 0) return TG_CLI_HELP;
        if (a[0] != '-' || a[1] == '\0') { /* positional ("-" is one too) */
            if (first_positional && flag_after_positional(argc, argv, i, err, errlen))
                return TG_CLI_USAGE;
            break;
        }
        if (a[1] != '-') {
            snprintf(err, errlen, "%s: unknown flag (flags start with --; try --help)", a);
            return TG_CLI_USAGE;
        }
        const char *name = a + 2;
        const char *eq = strchr(name, '=');
        size_t len = eq ? (size_t)(eq - name) : strlen(name);
        const tg_flag *f = find_flag(flags, n, name, len);
        if (!f) {
            snprintf(err, errlen, "--%.*s: unknown flag (try --help)", (int)len, name);
            return TG_CLI_USAGE;
        }
        const char *value = NULL;
        if (eq)
            value = eq + 1;
        else if (f->type == TG_BOOL)
            value = "1";
        else if (i + 1 < argc)
            value = argv[++i];
        else {
            snprintf(err, errlen, "--%s: missing value (expected %s)", f->name, type_noun(f->type));
            return TG_CLI_USAGE;
        }
        flag_value v;
        if (parse_value(f, value, &v, err, errlen) != 0) return TG_CLI_USAGE;
        if (f == watch) *seen = 1;
        if (store) store_value(f, v);
    }
    if (i < argc && !first_positional) {
        snprintf(err, errlen, "unexpected argument '%s' (this program takes only flags)", argv[i]);
        return TG_CLI_USAGE;
    }
    if (first_positional && store) *first_positional = i;
    return TG_CLI_OK;
}

int tg_cli_parse_args(int argc, char **argv, const tg_flag *flags, int n, int *first_positional,
                      char *err, size_t errlen)
{
    if (errlen) err[0] = '\0';
    int rc = parse_pass(argc, argv, flags, n, first_positional, 0, NULL, NULL, err, errlen);
    if (rc != TG_CLI_OK) return rc;
    return parse_pass(argc, argv, flags, n, first_positional, 1, NULL, NULL, err, errlen);
}

int tg_cli_given(int argc, char **argv, const tg_flag *flags, int n, const char *name)
{
    char err[512];
    int seen = 0, stop;
    const tg_flag *f = find_flag(flags, n, name, strlen(name));
    if (f) parse_pass(argc, argv, flags, n, &stop, 0, f, &seen, err, sizeof err);
    return seen;
}

/* ------------------------------------------------------------------ usage */

static void format_default(const tg_flag *f, char *buf, size_t n)
{
    switch (f->type) {
    case TG_INT: snprintf(buf, n, "%d", *(const int *)f->dest); break;
    case TG_U64: snprintf(buf, n, "%llu", (unsigned long long)*(const uint64_t *)f->dest); break;
    case TG_DOUBLE: snprintf(buf, n, "%g", *(const double *)f->dest); break;
    case TG_BOOL: snprintf(buf, n, "%s", *(const int *)f->dest ? "on" : "off"); break;
    case TG_STR: {
        const char *s = *(const char *const *)f->dest;
        snprintf(buf, n, "%s", s ? (s[0] ? s : "\"\"") : "none");
        break;
    }
    }
}

/* A number outside its flag's range is a sentinel ("not given": the program
 * picks, as seq2seq's --subwords by corpus), which the help text describes;
 * printed, "[0..1000000] (default: -1)" contradicted itself. */
static int default_in_range(const tg_flag *f)
{
    if (f->min >= f->max) return 1;
    double v = f->type == TG_INT      ? *(const int *)f->dest
               : f->type == TG_U64    ? (double)*(const uint64_t *)f->dest
               : f->type == TG_DOUBLE ? *(const double *)f->dest
                                      : f->min;
    return v >= f->min && v <= f->max;
}

static const char *metavar(tg_flag_type type)
{
    switch (type) {
    case TG_INT:
    case TG_U64: return " N";
    case TG_DOUBLE: return " X";
    case TG_STR: return " STR";
    case TG_BOOL: return "";
    }
    return "";
}

void tg_cli_usage(FILE *f, const tg_flag *flags, int n, const char *prog, const char *summary)
{
    fprintf(f, "usage: %s [flags]\n", prog);
    if (summary && summary[0]) fprintf(f, "%s\n", summary);
    fprintf(f, "\nflags:\n");
    for (int k = 0; k < n; k++) {
        const tg_flag *fl = &flags[k];
        char left[96], def[128];
        snprintf(left, sizeof left, "--%s%s", fl->name, metavar(fl->type));
        format_default(fl, def, sizeof def);
        fprintf(f, "  %-22s %s", left, fl->help ? fl->help : "");
        if (fl->choices) fprintf(f, " (one of %s)", fl->choices);
        if (fl->min < fl->max) fprintf(f, " [%.15g..%.15g]", fl->min, fl->max);
        if (default_in_range(fl)) fprintf(f, " (default: %s)", def);
        fputc('\n', f);
    }
    fprintf(f, "  %-22s %s\n", "-h, --help", "show this help and exit");
}

void tg_cli_adopt_blas_core(char **argv)
{
    const char *advice = tg_blas_core_advice();
    /* AT_BASE 0: started by naming the loader (ld.so PROG ...), whose own
     * file /proc/self/exe is, or linked statically: not ours to re-run */
    if (!advice || getenv("OPENBLAS_CORETYPE") || getauxval(AT_BASE) == 0) return;
    /* the binary's own path, not /proc/self/exe: the kernel names the
     * process after the file exec'd (pgrep, top and core dumps saw "exe") */
    char self[PATH_MAX];
    ssize_t n = readlink("/proc/self/exe", self, sizeof self - 1);
    if (n <= 0 || (size_t)n >= sizeof self - 1) return;
    self[n] = '\0';
    if (setenv("OPENBLAS_CORETYPE", advice, 1) != 0) return;
    execv(self, argv);
    /* failed (a deleted binary): go on as started, and the run's note and
     * any child see the environment the user gave */
    unsetenv("OPENBLAS_CORETYPE");
}

void tg_cli_parse(int argc, char **argv, const tg_flag *flags, int n, const char *prog,
                  const char *summary, int *first_positional)
{
    char err[512];
    int rc = tg_cli_parse_args(argc, argv, flags, n, first_positional, err, sizeof err);
    if (rc == TG_CLI_HELP) {
        tg_cli_usage(stdout, flags, n, prog, summary);
        exit(0);
    }
    if (rc != TG_CLI_OK) tg_cli_die_usage(prog, "%s", err);
    /* read by the engine at the first product, where a bad value aborts */
    if (tg_panel_kernel_check(err, sizeof err) != 0) tg_cli_die_usage(prog, "TG_ISA: %s", err);
}

/* The line is written at once: every rank of an MPI job may die with the
 * same message, and three writes each ran into one another's
 * ("seq2seq: seq2seq: rank 1 differs ... " and a line without a name).
 * Started by a launcher as one of several processes, the line names its
 * rank ("seq2seq: rank 1: x.tsv: ..."): mpirun interleaves the ranks'
 * stderr, and a file one host lacks fails on that rank alone. */
static _Noreturn void die_v(int code, const char *prog, const char *fmt, va_list ap)
{
    char line[16384];
    int at_least, n, rank, size;
    if (tg_dist_world(&rank, &size) ? size > 1 : tg_dist_launcher_size(&at_least) > 1)
        n = snprintf(line, sizeof line, "%s: rank %ld: ", prog, tg_cli_launcher_rank());
    else
        n = snprintf(line, sizeof line, "%s: ", prog);
    if (n > 0 && (size_t)n < sizeof line) vsnprintf(line + n, sizeof line - (size_t)n, fmt, ap);
    fflush(stdout);
    fprintf(stderr, "%s\n", line);
    exit(code);
}

void tg_cli_die_usage(const char *prog, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    die_v(2, prog, fmt, ap);
}

void tg_cli_die(const char *prog, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    die_v(1, prog, fmt, ap);
}

void tg_cli_die_nonfinite(const char *prog, const char *model, const char *fmt, ...)
{
    char what[256];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(what, sizeof what, fmt, ap);
    va_end(ap);
    tg_cli_die(prog, "%s%sthe model's outputs are not finite (NaN or infinite %s): its weights "
               "are too large or damaged", model ? model : "", model ? ": " : "", what);
}

/* ------------------------------------------------------------------ run set-up */

int tg_cmdline_given(const tg_cmdline *c, const char *name)
{
    return tg_cli_given(c->argc, c->argv, c->flags, c->n, name);
}

uint64_t tg_cli_env_step(const char *prog, const char *var)
{
    const char *s = getenv(var);
    char *end;
    if (!s || !*s) return 0;
    errno = 0;
    unsigned long long n = strtoull(s, &end, 10);
    if (errno || *end || s[0] == '-')
        tg_cli_die_usage(prog, "%s: expected a step number, got '%.40s'", var, s);
    return n;
}

/* The directory part of path ("." when it has none, "/" for "/x"). */
static void directory_of(const char *path, char *dir, size_t cap)
{
    const char *slash = strrchr(path, '/');
    if (!slash)
        snprintf(dir, cap, ".");
    else if (slash == path)
        snprintf(dir, cap, "/");
    else
        snprintf(dir, cap, "%.*s", (int)(slash - path), path);
}

int tg_meta_int(const tg_checkpoint *c, const char *path, const char *key, int lo, int hi,
                int *out, char *err, size_t errlen)
{
    uint64_t x;
    if (tg_checkpoint_meta_u64(c, key, &x, err, errlen) != 0) return -1;
    if (x < (uint64_t)lo || x > (uint64_t)hi) {
        snprintf(err, errlen, "%s: metadata '%s' is %llu, expected %d..%d", path, key,
                 (unsigned long long)x, lo, hi);
        return -1;
    }
    *out = (int)x;
    return 0;
}

int tg_meta_dropout(const char *path, const char *key, const char *value, double *out, char *err,
                    size_t errlen)
{
    if (whole_number(value, out) != NUM_OK || !(*out >= 0 && *out <= TG_CLI_DROPOUT_MAX)) {
        snprintf(err, errlen, "%s: metadata '%s' is '%.40s', expected a number in [0, %g]%s", path,
                 key, value, TG_CLI_DROPOUT_MAX,
                 starts_clean(value) ? "" : " (no space before it)");
        return -1;
    }
    return 0;
}

/* The last name of path (after its last '/'). */
static const char *last_name(const char *path)
{
    const char *slash = strrchr(path, '/');
    return slash ? slash + 1 : path;
}

int tg_cli_same_file(const char *a, const char *b)
{
    struct stat sa, sb;
    int has_a = stat(a, &sa) == 0, has_b = stat(b, &sb) == 0;
    if (has_a && has_b)
        return S_ISREG(sa.st_mode) && sa.st_dev == sb.st_dev && sa.st_ino == sb.st_ino;
    if (has_a || has_b) return 0;
    char da[PATH_MAX], db[PATH_MAX];
    directory_of(a, da, sizeof da);
    directory_of(b, db, sizeof db);
    return stat(da, &sa) == 0 && stat(db, &sb) == 0 && sa.st_dev == sb.st_dev &&
           sa.st_ino == sb.st_ino && strcmp(last_name(a), last_name(b)) == 0;
}

int tg_cli_check_output(const char *flag, const char *path, int replaced, char *err,
                        size_t errlen)
{
    struct stat st;
    char dir[PATH_MAX], probe[PATH_MAX + 32];
    if (!path[0] || strlen(path) >= PATH_MAX)
        return snprintf(err, errlen, "%s: bad file name", flag), -1;
    if (tg_cli_launcher_rank() > 0) return 0; /* rank 0 writes it, and checks (cli.h) */
    if (stat(path, &st) == 0) {
        if (S_ISDIR(st.st_mode))
            return snprintf(err, errlen, "%s %s: is a directory", flag, path), -1;
        if (!S_ISREG(st.st_mode) && replaced) /* a rename would put a file in its place */
            return snprintf(err, errlen, "%s %s: not a regular file (the output replaces it)",
                            flag, path),
                   -1;
        if (!S_ISREG(st.st_mode) || !replaced) { /* written in place: a device, a pipe, a file */
            if (access(path, W_OK) == 0) return 0;
            return snprintf(err, errlen, "%s %s: %s", flag, path, strerror(errno)), -1;
        }
    }
    directory_of(path, dir, sizeof dir);
    if (stat(dir, &st) != 0)
        return snprintf(err, errlen, "%s %s: directory '%s': %s", flag, path, dir,
                        strerror(errno)),
               -1;
    if (!S_ISDIR(st.st_mode))
        return snprintf(err, errlen, "%s %s: '%s' is not a directory", flag, path, dir), -1;
    /* a real file: catches read-only file systems and permissions that
     * access() would not */
    snprintf(probe, sizeof probe, "%s.tmp.%ld", path, (long)getpid());
    int fd = open(probe, O_WRONLY | O_CREAT | O_EXCL, 0600);
    if (fd < 0)
        return snprintf(err, errlen, "%s %s: cannot write in directory '%s': %s", flag, path,
                        dir, strerror(errno)),
               -1;
    close(fd);
    unlink(probe);
    return 0;
}

void tg_cli_one_process(const char *prog, const char *what)
{
    int at_least;
    long n = tg_dist_launcher_size(&at_least);
    if (n > 1)
        tg_cli_die_usage(prog, "%s runs in one process: start it without mpirun (%s%ld "
                         "processes would each do all of it and print it; the launcher's "
                         "OMPI_COMM_WORLD_SIZE, PMI_SIZE or PMIX_RANK in the environment says "
                         "there are)", what, at_least ? "at least " : "", n);
}

void tg_cli_check_stdout(const char *prog)
{
    errno = 0; /* what fflush fails with; an earlier failed write's is gone */
    if (fflush(stdout) != 0 || ferror(stdout))
        tg_cli_die(prog, "stdout: write error: %s",
                   errno ? strerror(errno) : "output was lost (its reader left, or no space?)");
}

long tg_cli_launcher_rank(void)
{
    const char *names[] = {"OMPI_COMM_WORLD_RANK", "PMIX_RANK", "PMI_RANK"};
    int rank, size, at_least;
    if (tg_dist_world(&rank, &size)) return rank; /* MPI's word over the environment's */
    /* a rank without a job of several (no mpirun: a variable left over)
     * turned rank 0's output checks off in a run of one process */
    if (tg_dist_launcher_size(&at_least) <= 1) return 0;
    for (size_t i = 0; i < sizeof names / sizeof names[0]; i++) {
        const char *v = getenv(names[i]);
        if (v && *v) return strtol(v, NULL, 10);
    }
    return 0;
}

/* ------------------------------------------------------------------ clock */

double tg_clock_seconds(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

void tg_format_duration(double s, char *buf, size_t n)
{
    if (!(s >= 0) || s > 1e9) {
        snprintf(buf, n, "?");
    } else if (s < 60) {
        snprintf(buf, n, "%.1fs", s);
    } else if (s < 3600) {
        long t = (long)(s + 0.5);
        snprintf(buf, n, "%ldm%02lds", t / 60, t % 60);
    } else {
        long t = (long)(s / 60 + 0.5);
        snprintf(buf, n, "%ldh%02ldm", t / 60, t % 60);
    }
}

/* ------------------------------------------------------------------ progress */

void tg_progress_init(tg_progress *p, FILE *f, double plain_interval)
{
    p->f = f;
    p->tty = isatty(fileno(f));
    p->interval = p->tty ? 0.1 : plain_interval;
    p->last = -1;
    p->width = 0;
    p->open = 0;
}

int tg_progress_update(tg_progress *p, int force, const char *fmt, ...)
{
    double now = tg_clock_seconds();
    if (!force && p->last >= 0 && now - p->last < p->interval) return 0;
    p->last = now;
    char line[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(line, sizeof line, fmt, ap);
    va_end(ap);
    int len = (int)strlen(line);
    if (p->tty) {
        /* pad with blanks so a shorter line fully covers the previous one */
        fprintf(p->f, "\r%s%*s", line, p->width > len ? p->width - len : 0, "");
        p->width = len;
        p->open = 1;
    } else {
        fprintf(p->f, "%s\n", line);
    }
    fflush(p->f);
    return 1;
}

void tg_progress_done(tg_progress *p)
{
    if (p->open) fputc('\n', p->f);
    p->open = 0;
    p->width = 0;
    fflush(p->f);
}

/* ------------------------------------------------------------------ CSV log */

/* Flushes what was written to c; 0, or -1 with c->err set (the first
 * failure's errno; EIO when the stream kept none). */
static int csv_flush(tg_csv *c)
{
    errno = 0;
    if (fflush(c->f) == 0 && !ferror(c->f)) return 0;
    if (!c->err) c->err = errno ? errno : EIO;
    return -1;
}

int tg_csv_open(tg_csv *c, const char *path, const char *header, char *err, size_t errlen)
{
    c->f = NULL;
    c->path[0] = '\0';
    c->err = 0;
    if (!path || !path[0]) return 0;
    snprintf(c->path, sizeof c->path, "%s", path);
    c->f = fopen(path, "w");
    if (!c->f) {
        snprintf(err, errlen, "--log %s: cannot open log file: %s", path, strerror(errno));
        return -1;
    }
    fprintf(c->f, "%s\n", header);
    if (csv_flush(c) != 0) { /* /dev/full: refused before the run, not after it */
        snprintf(err, errlen, "--log %s: cannot write log file: %s", path, strerror(c->err));
        fclose(c->f);
        c->f = NULL;
        return -1;
    }
    return 0;
}

/* A log whose last line has no newline (its run was killed while writing
 * it) is cut after its last whole line, so that the rows a resumed run
 * appends are lines of their own. 0, or -1 with errno set. */
static int cut_torn_line(FILE *f)
{
    char buf[4096];
    if (fseeko(f, 0, SEEK_END) != 0) return -1;
    off_t end = ftello(f), at = end;
    while (at > 0) {
        size_t n = at < (off_t)sizeof buf ? (size_t)at : sizeof buf;
        if (fseeko(f, at - (off_t)n, SEEK_SET) != 0) return -1;
        if (fread(buf, 1, n, f) != n) return errno = ferror(f) ? errno : EIO, -1;
        size_t i = n;
        while (i > 0 && buf[i - 1] != '\n') i--;
        if (i > 0) {
            at = at - (off_t)n + (off_t)i;
            break;
        }
        at -= (off_t)n;
    }
    if (at != end && ftruncate(fileno(f), at) != 0) return -1;
    return fseeko(f, 0, SEEK_END); /* reading, then writing: a seek between */
}

int tg_csv_open_run(tg_csv *c, const char *path, const char *header, int resumed, char *err,
                    size_t errlen)
{
    struct stat st;
    if (!resumed || !path || stat(path, &st) != 0 || !S_ISREG(st.st_mode) || st.st_size == 0)
        return tg_csv_open(c, path, header, err, errlen);
    snprintf(c->path, sizeof c->path, "%s", path);
    c->err = 0;
    c->f = fopen(path, "a+");
    if (!c->f || cut_torn_line(c->f) != 0) {
        snprintf(err, errlen, "--log %s: cannot open log file: %s", path, strerror(errno));
        if (c->f) fclose(c->f);
        c->f = NULL;
        return -1;
    }
    if (ftello(c->f) == 0) fprintf(c->f, "%s\n", header); /* not even the header was whole */
    if (csv_flush(c) != 0) {
        snprintf(err, errlen, "--log %s: cannot write log file: %s", path, strerror(c->err));
        fclose(c->f);
        c->f = NULL;
        return -1;
    }
    return 0;
}

int tg_csv_row(tg_csv *c, const char *fmt, ...)
{
    if (!c->f) return 0;
    va_list ap;
    va_start(ap, fmt);
    errno = 0;
    vfprintf(c->f, fmt, ap);
    va_end(ap);
    fputc('\n', c->f);
    /* a row longer than the buffer writes inside vfprintf: its errno, which
     * the flush's would replace (EIO) */
    if (ferror(c->f) && !c->err && errno) c->err = errno;
    return csv_flush(c); /* on disk at once: a killed run keeps every row */
}

int tg_csv_close(tg_csv *c, char *err, size_t errlen)
{
    if (!c->f) return 0;
    int bad = csv_flush(c) != 0;
    int saved = c->err; /* the first failure's: a row's, not close's */
    if (fclose(c->f) != 0 && !bad) {
        bad = 1;
        saved = errno;
    }
    c->f = NULL;
    if (bad) {
        snprintf(err, errlen, "--log %s: write error: %s", c->path, strerror(saved));
        return -1;
    }
    return 0;
}

/* ------------------------------------------------------------------ result */

void tg_result(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    fputs("result: ", stdout);
    vfprintf(stdout, fmt, ap);
    va_end(ap);
    fputc('\n', stdout);
    fflush(stdout);
}
