/* Program plumbing shared by every example: a table-driven flag parser, a
 * progress line, a CSV metrics log, a monotonic clock and the `result:` line.
 *
 * Flags, as every program takes them:
 *     static int hidden = 256;          // the default lives in the variable
 *     static const char *cell = "lstm";
 *     const tg_flag flags[] = {
 *         {"hidden", TG_INT, &hidden, "hidden units per layer", 1, 65536},
 *         {"cell", TG_STR, &cell, "recurrent cell", .choices = "rnn,lstm,gru,mgu"},
 *     };
 *     tg_cli_parse(argc, argv, flags, 2, "charlm", "Character-level LM.", NULL);
 *
 * `--name value` and `--name=value`; a TG_BOOL flag takes no value (`--name`
 * sets 1; `--name=0|1|true|false|yes|no|on|off` is accepted too). `--help`
 * or `-h` prints every flag with its default (read from dest before any flag
 * is stored) and exits 0. A bad command line prints one line
 *     prog: --hidden: expected an integer, got '12x'
 * on stderr and exits 2. Parsing is all-or-nothing: on an error or --help
 * no dest has been written. */
#ifndef TG_EXAMPLES_CLI_H
#define TG_EXAMPLES_CLI_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "tg_checkpoint.h" /* tg_meta_int */

#ifdef __cplusplus
extern "C" {
#endif

typedef enum tg_flag_type {
    TG_INT,    /* dest: int *          */
    TG_DOUBLE, /* dest: double *       (decimal, within a double: "1e-3", ".5", "5.";
                *  no hex, inf or nan; out of range beyond it, or nearer 0 than
                *  DBL_MIN and not 0) */
    TG_STR,    /* dest: const char **  (points into argv; NULL default = none) */
    TG_BOOL,   /* dest: int *          (0 or 1) */
    TG_U64,    /* dest: uint64_t *     (seeds) */
} tg_flag_type;

typedef struct tg_flag {
    const char *name;  /* "hidden" for --hidden */
    tg_flag_type type;
    void *dest;        /* holds the default before parsing */
    const char *help;
    double min, max;   /* inclusive range for numbers; checked only when min < max */
    const char *choices; /* TG_STR: comma-separated allowed values, or NULL */
} tg_flag;

enum {
    TG_CLI_OK = 0,
    TG_CLI_HELP = 1,  /* --help / -h was given: print usage, exit 0 */
    TG_CLI_USAGE = 2, /* bad command line: err holds the reason, exit 2 */
};

/* The non-exiting core (tests and fuzzers call this). argv[0] is skipped.
 * first_positional == NULL: any non-flag argument is an error. Otherwise
 * parsing stops at the first non-flag argument (or after "--") and its index
 * is stored there (argc if none). On TG_CLI_USAGE, err receives the reason
 * without the program name, e.g. "--hidden: expected an integer, got '12x'". */
int tg_cli_parse_args(int argc, char **argv, const tg_flag *flags, int n, int *first_positional,
                      char *err, size_t errlen);

/* Whether flag `name` appears on a command line that tg_cli_parse_args
 * accepted (to tell an explicit value from the default, e.g. a --hidden that
 * must match a loaded checkpoint). */
int tg_cli_given(int argc, char **argv, const tg_flag *flags, int n, const char *name);

/* Usage text: "usage: prog [flags]", the summary, then one line per flag with
 * its current value as the default. */
void tg_cli_usage(FILE *f, const tg_flag *flags, int n, const char *prog, const char *summary);

/* The exiting wrapper every program calls: on --help prints usage to stdout
 * and exits 0; on a bad command line prints "prog: <reason>" to stderr and
 * exits 2. Returns only on success. */
void tg_cli_parse(int argc, char **argv, const tg_flag *flags, int n, const char *prog,
                  const char *summary, int *first_positional);

/* A program's command line as parsed: argv and the flag table over its
 * options (to tell flags given from defaults, and to parse settings taken
 * from a checkpoint as if they had been given). */
#define TG_CLI_MAX_FLAGS 64
typedef struct tg_cmdline {
    int argc;
    char **argv;
    tg_flag flags[TG_CLI_MAX_FLAGS];
    int n;
} tg_cmdline;

/* Whether --name was on the command line. */
int tg_cmdline_given(const tg_cmdline *c, const char *name);

/* A step number from environment variable var (a test hook: poison a
 * gradient at that step); 0 when unset or empty. A malformed value is a
 * usage error: "prog: VAR: expected a step number, got '...'", exit 2. */
uint64_t tg_cli_env_step(const char *prog, const char *var);

/* OpenBLAS picks its kernels once, as it loads, by the CPU's model number:
 * 0.3.21 runs a model it does not know (a Xeon model 207) on its SSE3
 * "Prescott" kernels, and the seq2seq example trained 16-17% slower there
 * (BENCHMARKS.md). Unless the user named a core (OPENBLAS_CORETYPE set,
 * even empty), this starts the program again, once, with the core the
 * CPU's features call for (tg_blas_core_advice): execv of the binary
 * (/proc/self/exe's target) with argv (main's, NULL-terminated). A
 * program's first call, before it opens or starts anything, so the new
 * image begins as the old one did (same PID, name, files, rank under
 * mpirun; a debugger sees a second exec: set the variable to avoid it).
 * Not when the program was started by naming the loader (ld.so PROG), and
 * where the exec fails it returns, and the training run's note names the
 * variable. Not for a process that is not a program of its own (a test
 * harness). */
void tg_cli_adopt_blas_core(char **argv);

/* This process's rank: MPI's once MPI runs (tg_dist_world); before, the
 * one a launcher gave it (Open MPI's OMPI_COMM_WORLD_RANK, PMIx's
 * PMIX_RANK, PMI's PMI_RANK) when the launcher's size says there are
 * several (tg_dist_launcher_size); 0 otherwise: a rank variable left in a
 * run of one process (exported, inherited) must not turn its checks off.
 * Rank 0 alone writes the programs' files, so it alone checks their paths:
 * ranks on other hosts may see another directory, or a probe of the same
 * name (equal PIDs in identical containers) at the same instant. */
long tg_cli_launcher_rank(void);
/* Exits 2 ("prog: rank R: what runs in one process: start it without mpirun ...")
 * when a launcher started more than one process: for the work that is not
 * shared between ranks (translating, sampling), which every rank would do
 * whole and print. */
void tg_cli_one_process(const char *prog, const char *what);
/* Exits 1 with "prog: stdout: write error: output was lost (its reader
 * left?)" when stdout's lines could not all be written (a full disk,
 * /dev/full, a reader gone with SIGPIPE ignored); the last call before a
 * program that prints its work ends with 0. */
void tg_cli_check_stdout(const char *prog);

/* 1 when writing one of paths a and b would destroy the other: both name
 * one regular file (one inode, however spelt: "./m.st", "m.st", a link),
 * or neither exists yet and both name one entry of one directory. A
 * device or pipe (/dev/null, /dev/stdout) is never "one file": writes to
 * it destroy nothing. */
int tg_cli_same_file(const char *a, const char *b);

/* Checks, before any work, that output file path of flag ("--save") can be
 * written: it is not a directory, and its directory exists and takes a new
 * file (a probe named like the atomic writers' temporaries, "path.tmp.PID",
 * is created and removed). When replaced (written atomically: a temporary
 * renamed over it) an existing file that is not a regular one (/dev/null, a
 * pipe) is refused; else an existing file of any kind (a pipe,
 * /dev/stderr, a regular file) is written in place and needs only to be
 * writable, whatever its directory allows. 0, or -1 with a message
 * starting "--flag PATH" in err. On a launcher's rank above 0 only the name
 * is checked (tg_cli_launcher_rank). */
int tg_cli_check_output(const char *flag, const char *path, int replaced, char *err,
                        size_t errlen);

/* An integer in lo..hi (lo >= 0) read from a model file's metadata (c, opened
 * from path): digits only, as tg_checkpoint_meta_u64 reads them (" 8" and
 * "+8" are refused). 0 and *out, or -1 with a message naming path and key
 * in err. */
int tg_meta_int(const tg_checkpoint *c, const char *path, const char *key, int lo, int hi,
                int *out, char *err, size_t errlen);
/* The largest dropout rate the programs take: one bound for --dropout and
 * for a model file's metadata, so that a file says nothing a flag cannot. */
#define TG_CLI_DROPOUT_MAX 0.95
/* A dropout rate read from a model file's metadata (value of key in path):
 * the whole string a number in [0, TG_CLI_DROPOUT_MAX], no leading space,
 * as --dropout takes it. 0 and *out, or -1 with "PATH: metadata 'KEY' is
 * 'VALUE', expected a number in [0, 0.95]" in err. */
int tg_meta_dropout(const char *path, const char *key, const char *value, double *out, char *err,
                    size_t errlen);

/* A usage error found after parsing (e.g. two flags that conflict): prints
 * "prog: <message>" on stderr and exits 2. */
_Noreturn void tg_cli_die_usage(const char *prog, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
/* A data/environment error: prints "prog: <message>" on stderr and exits 1.
 * Both name the rank ("prog: rank R: <message>") in a process a launcher
 * says is one of several (tg_dist_launcher_size: a PMIx launcher that sets
 * only PMIX_RANK tells rank 0 nothing of the others, so rank 0's line has
 * no rank there). */
_Noreturn void tg_cli_die(const char *prog, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
/* The one message of every program whose model computes NaN or infinity
 * where it should give a number (its weights finite but too large, as a
 * PyTorch export scaled past float's range, or damaged), found at
 * inference: greedy or beam decoding, sampling, evaluation. The output
 * would be silently wrong (a NaN is never the argmax, its sample or its
 * score), so the program stops instead:
 *     prog: MODEL: the model's outputs are not finite (NaN or infinite WHAT):
 *     its weights are too large or damaged
 * on stderr, exit 1 (as tg_cli_die). model: the file the model came from
 * (--load, --import-torch), or NULL for one this run made or changed (the
 * "MODEL: " is left out); WHAT: printf-style, where it was found ("logits
 * at output token 1 of line 3", "loss on the test set"). */
_Noreturn void tg_cli_die_nonfinite(const char *prog, const char *model, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* ------------------------------------------------------------------ clock */

/* Seconds from an arbitrary fixed point (CLOCK_MONOTONIC). */
double tg_clock_seconds(void);

/* "1h02m", "3m05s", "12.3s" */
void tg_format_duration(double seconds, char *buf, size_t n);

/* ------------------------------------------------------------------ progress */

/* A progress line on a stream (stderr). On a terminal it is redrawn in place
 * with \r at most every 0.1 s; otherwise plain newline-terminated lines at
 * most every plain_interval seconds, so logs stay short. */
typedef struct tg_progress {
    FILE *f;
    int tty;
    double interval; /* seconds between draws */
    double last;     /* time of the last draw, < 0 before the first */
    int width;       /* characters of the line on screen (tty) */
    int open;        /* a tty line is on screen without its newline */
} tg_progress;

void tg_progress_init(tg_progress *p, FILE *f, double plain_interval);
/* Draws the formatted line if the interval has passed (or force != 0).
 * Returns 1 if drawn. */
int tg_progress_update(tg_progress *p, int force, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
/* Ends a redrawn line with a newline so later output starts clean. */
void tg_progress_done(tg_progress *p);

/* ------------------------------------------------------------------ CSV log */

/* --log FILE: a header line, then one row per call. A path of NULL or ""
 * makes every call a no-op, so programs call it unconditionally. Every
 * program's flag for it is --log, which its messages name, as the other
 * output checks' name theirs (tg_cli_check_output). */
typedef struct tg_csv {
    FILE *f;
    char path[512];
    int err; /* errno of the first row that could not be written; 0: none */
} tg_csv;

/* header: "step,loss,bpc", written and flushed at once, so that a log that
 * takes nothing (/dev/full, a full disk) is refused before the work. 0 ok;
 * -1 with "--log FILE: cannot open log file: strerror" or "--log FILE:
 * cannot write log file: strerror" in err. */
int tg_csv_open(tg_csv *c, const char *path, const char *header, char *err, size_t errlen);
/* The same, but a resumed run (resumed != 0) appends to the log it
 * continues when that is a non-empty regular file, without a header, after
 * cutting a last line that has no newline (a killed run's torn row). */
int tg_csv_open_run(tg_csv *c, const char *path, const char *header, int resumed, char *err,
                    size_t errlen);
/* One row, printf-style, newline added, flushed. 0, or -1 when it could
 * not all be written (the first such row's errno kept in c->err, for the
 * training run to stop at: tgx_run_stop); close says so again. */
int tg_csv_row(tg_csv *c, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* Flushes and closes. 0 ok; -1 with "--log FILE: write error: ..." in err. */
int tg_csv_close(tg_csv *c, char *err, size_t errlen);

/* ------------------------------------------------------------------ result */

/* Prints "result: " + the formatted key=value pairs + newline on stdout and
 * flushes: the last line of every program. */
void tg_result(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

#ifdef __cplusplus
}
#endif
#endif
