/* A training run's shared bookkeeping: see trainrun.h. */
#include "trainrun.h"

#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <malloc.h>
#include <math.h>
#include <omp.h>
#include <setjmp.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <unistd.h>

/* The one process-wide flag a signal handler may set. */
static volatile sig_atomic_t interrupted;
/* The temporary file of the save under way (tgx_write_begin), which the
 * handler reads: written only while `writing` is 0. */
static volatile sig_atomic_t writing;
/* tgx_interrupts_end_at_once: the first signal ends the program. */
static volatile sig_atomic_t end_at_once;
static char writing_tmp[4096 + 32];

static void on_interrupt(int sig)
{
    if (!interrupted && !end_at_once) {
        interrupted = 1;
        return;
    }
    /* a second Ctrl-C (or TERM) ends the program at once; during a save it
     * removes the temporary first (left beside the intact file, it was) */
    if (writing) unlink(writing_tmp);
    signal(sig, SIG_DFL);
    raise(sig); /* delivered on the handler's return: the default, ending it */
}

/* sigaction, not signal: under _POSIX_C_SOURCE glibc's signal() is
 * System V's, reset to the default at the first signal, so the second
 * never reached the handler (and a save's temporary stayed). No
 * SA_RESTART, as before: a blocking call returns EINTR. */
static void catch_interrupts(void)
{
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_interrupt;
    sigemptyset(&sa.sa_mask);
    sigaction(SIGINT, &sa, NULL);
    sigaction(SIGTERM, &sa, NULL);
}

void tgx_write_begin(const char *path)
{
    writing = 0;
    atomic_signal_fence(memory_order_seq_cst); /* the handler sees the name whole or not */
    if (tg_checkpoint_temp_path(path, writing_tmp, sizeof writing_tmp) != 0) return;
    atomic_signal_fence(memory_order_seq_cst);
    writing = 1;
}

void tgx_write_end(void) { writing = 0; }

void tgx_interrupts_end_at_once(void)
{
    end_at_once = 1;
    catch_interrupts();
}

const char *tgx_stop_name(tgx_stop s)
{
    switch (s) {
    case TGX_STOP_SIGNAL: return "interrupted";
    case TGX_STOP_STEPS: return "--steps reached";
    case TGX_STOP_SECONDS: return "--seconds reached";
    case TGX_STOP_EPOCHS: return "--epochs reached";
    case TGX_STOP_LOG: return "--log write error";
    default: return NULL;
    }
}

int tgx_optim_from_flag(const char *name, tg_optim_config *out)
{
    tg_optim_kind kind;
    int momentum = strcmp(name, "momentum") == 0;
    if (!momentum && tg_optim_kind_parse(name, &kind) != 0) return -1;
    *out = tg_optim_defaults(momentum ? TG_OPTIM_SGD : kind);
    if (momentum) out->momentum = 0.9;
    return 0;
}

void tgx_check_model_int(const char *prog, const tg_cmdline *cl, const char *flag, int given,
                         int model, const char *file)
{
    if (tg_cmdline_given(cl, flag) && given != model)
        tg_cli_die_usage(prog, "--%s %d does not match the model %s (%s=%d); leave it out to use "
                         "the model's", flag, given, file, flag, model);
}

void tgx_check_model_str(const char *prog, const tg_cmdline *cl, const char *flag,
                         const char *given, const char *model, const char *file)
{
    if (tg_cmdline_given(cl, flag) && strcmp(given, model) != 0)
        tg_cli_die_usage(prog, "--%s %s does not match the model %s (%s=%s); leave it out to use "
                         "the model's", flag, given, file, flag, model);
}

int tgx_default_shards(int shards, int threads, int batch)
{
    if (shards > 0) return shards;
    int n = threads > 2 ? threads : 2;
    return n < batch ? n : batch;
}

void tgx_check_shards(const char *prog, int shards, int batch, int max)
{
    if (shards < 1 || shards > batch || shards > max)
        tg_cli_die_usage(prog, "--shards %d must be in 1..min(--batch %d, %d)", shards, batch,
                         max);
}

void tgx_check_momentum(const char *prog, const char *optim, double momentum)
{
    if (momentum > 0 && strcmp(optim, "sgd") != 0 && strcmp(optim, "momentum") != 0)
        tg_cli_die_usage(prog, "--momentum is for --optim sgd or momentum, not %s", optim);
}

int tgx_checkpoint_flags(tg_flag *f, const char **checkpoint, int *every, const char **resume,
                         int *skip_nonfinite)
{
    f[0] = (tg_flag){"checkpoint", TG_STR, checkpoint, TGX_HELP_CHECKPOINT, 0, 0, NULL};
    f[1] = (tg_flag){"every", TG_INT, every, TGX_HELP_EVERY, 0, 1 << 30, NULL};
    f[2] = (tg_flag){"resume", TG_STR, resume, TGX_HELP_RESUME, 0, 0, NULL};
    f[3] = (tg_flag){"skip-nonfinite", TG_BOOL, skip_nonfinite, TGX_HELP_SKIP_NONFINITE, 0, 0,
                     NULL};
    return 4;
}

int tgx_run_threads(int threads)
{
    if (threads < 1) {
        long cores = sysconf(_SC_NPROCESSORS_ONLN);
        threads = cores < 1 ? 1 : cores > 256 ? 256 : (int)cores;
    }
    omp_set_num_threads(threads);
    return threads;
}

tgx_run_config tgx_run_defaults(const char *prog, tg_params *params, tg_optim *opt)
{
    tgx_run_config c;
    memset(&c, 0, sizeof c);
    c.prog = prog;
    c.params = params;
    c.opt = opt;
    return c;
}

/* A job MPI started other than the launcher's variables said (they were
 * left in the environment of a process no launcher started, which MPI made
 * a world of one): refused, as the start-up's output checks before MPI ran
 * (seq2seq's) trusted them, and rank 1 of 2 checks none. */
static void check_launcher_agrees(const char *prog, tg_dist *d, long rank, long n, int at_least)
{
    long size = tg_dist_size(d);
    if (rank == tg_dist_rank(d) && (at_least ? size >= n : size == n)) return;
    tg_cli_die_usage(prog, "the environment says this process is rank %ld of %s%ld "
                     "(OMPI_COMM_WORLD_RANK and _SIZE, PMIX_RANK, PMI_RANK or PMI_SIZE), but MPI "
                     "started it as rank %d of %ld: left over from another launch? Unset them, "
                     "or start the program with mpirun", rank, at_least ? "at least " : "", n,
                     tg_dist_rank(d), size);
}

tg_dist *tgx_dist_init(const char *prog, int *argc, char ***argv)
{
    char err[512];
    if (!getenv("OMPI_COMM_WORLD_SIZE") && !getenv("PMIX_RANK") && !getenv("PMI_SIZE"))
        return NULL;
    int at_least;
    long ranks = tg_dist_launcher_size(&at_least), rank = tg_cli_launcher_rank(); /* before MPI */
    tg_dist *d = tg_dist_init(argc, argv, err, sizeof err);
    if (!d) tg_cli_die(prog, "%s", err);
    check_launcher_agrees(prog, d, rank, ranks, at_least);
    /* the configuration: every rank's whole command line (an MPMD launch
     * or a per-rank wrapper could give one rank other flags, anywhere: a
     * fixed-size copy once let a flag after a long --prime differ) */
    size_t n = 0;
    for (int i = 1; i < *argc; i++) n += strlen((*argv)[i]) + 1;
    char *line = malloc(n + 1);
    if (!line) tg_dist_abort(d, 71, "out of memory comparing the command line with rank 0");
    size_t at = 0;
    for (int i = 1; i < *argc; i++) {
        size_t k = strlen((*argv)[i]) + 1; /* with its NUL: "a b" is not "a" "b" */
        memcpy(line + at, (*argv)[i], k);
        at += k;
    }
    int rc = tg_dist_check_same(d, line, n, "command line", err, sizeof err);
    free(line);
    if (rc != 0) tg_cli_die(prog, "%s", err);
    return d;
}

int tgx_run_is_root(const tgx_run *r) { return !r->c.dist || tg_dist_rank(r->c.dist) == 0; }

/* Where the progress line goes: stderr on rank 0 only. */
static FILE *progress_stream(tgx_run *r)
{
    if (tgx_run_is_root(r)) return stderr;
    if (!r->quiet) r->quiet = fopen("/dev/null", "w");
    return r->quiet ? r->quiet : stderr;
}

/* Whether fd is the file path names now. */
static int is_named(int fd, const char *path)
{
    struct stat held, named;
    return fstat(fd, &held) == 0 && stat(path, &named) == 0 && held.st_dev == named.st_dev &&
           held.st_ino == named.st_ino;
}

/* One attempt at the lock: 1 held, 0 the file lost its name meanwhile (a
 * run ending removed it: try again); exits on a refusal. */
static int try_lock(tgx_run *r)
{
    const char *prog = r->c.prog, *path = r->c.checkpoint;
    struct stat st;
    r->lock_fd = open(r->lock_path, O_RDWR | O_CREAT | O_CLOEXEC, 0644);
    if (r->lock_fd < 0)
        tg_cli_die(prog, "--checkpoint %s: cannot create its lock %s: %s", path, r->lock_path,
                   strerror(errno));
    if (fstat(r->lock_fd, &st) == 0 && st.st_size > 0) /* a lock is empty: someone's file */
        tg_cli_die(prog, "--checkpoint %s: %s holds data, so it is no lock a run left: move it "
                   "away", path, r->lock_path);
    struct flock whole = {.l_type = F_WRLCK, .l_whence = SEEK_SET};
    if (fcntl(r->lock_fd, F_SETLK, &whole) != 0) {
        if (errno == EACCES || errno == EAGAIN)
            tg_cli_die(prog, "--checkpoint %s: another run is writing it (it holds %s): give "
                       "this run another --checkpoint, or let that one end", path, r->lock_path);
        tg_cli_die(prog, "--checkpoint %s: cannot lock %s: %s", path, r->lock_path,
                   strerror(errno));
    }
    if (is_named(r->lock_fd, r->lock_path)) return 1;
    close(r->lock_fd);
    return 0;
}

/* One run at a time writes a --checkpoint: a lock (fcntl, on FILE.lock)
 * held to tgx_run_free; the kernel drops it when the process ends, however
 * it ends, so a file left by an error or a kill is locked again, in
 * nobody's way. Two runs at once on one checkpoint each overwrote the
 * other's saves, and both said "checkpoint FILE at step N". An error exit
 * (tg_cli_die, anywhere in a program) leaves the file: removing it there
 * takes a process-wide exit hook, atexit with the lock in a global or
 * glibc's on_exit (not POSIX, and run by a forked child's exit too), and
 * a kill leaves it all the same. */
static void lock_checkpoint(tgx_run *r)
{
    size_t n = strlen(r->c.checkpoint) + sizeof ".lock";
    r->lock_path = malloc(n);
    if (!r->lock_path) tg_cli_die(r->c.prog, "out of memory");
    snprintf(r->lock_path, n, "%s.lock", r->c.checkpoint);
    for (int tries = 0; tries < 16; tries++)
        if (try_lock(r)) return;
    tg_cli_die(r->c.prog, "--checkpoint %s: cannot hold its lock %s (it keeps being removed)",
               r->c.checkpoint, r->lock_path);
}

void tgx_run_init(tgx_run *r, const tgx_run_config *c)
{
    memset(r, 0, sizeof *r);
    r->c = *c;
    r->last_loss = r->recent_loss = 0;
    r->ck = tg_trainckpt_new(c->prog, c->params, c->opt);
    if (!r->ck || tg_trainckpt_u64(r->ck, "step", &r->step) != 0 ||
        tg_trainckpt_u64(r->ck, "skipped", &r->skipped) != 0 ||
        tg_trainckpt_u64(r->ck, "skip_streak", &r->streak) != 0 ||
        tg_trainckpt_f64(r->ck, "train_seconds", &r->train_seconds) != 0)
        tg_cli_die(c->prog, "out of memory");
    if (c->opt) tg_optim_set_threads(c->opt, c->threads);
    if (c->checkpoint && tgx_run_is_root(r)) lock_checkpoint(r); /* rank 0 alone writes it */
    tg_progress_init(&r->pg, progress_stream(r), 10.0);
}

void tgx_run_free(tgx_run *r)
{
    tg_trainckpt_free(r->ck);
    r->ck = NULL;
    if (r->quiet) fclose(r->quiet);
    r->quiet = NULL;
    if (r->lock_path) { /* removed while held, and only if still ours (--save may name it) */
        if (is_named(r->lock_fd, r->lock_path)) unlink(r->lock_path);
        close(r->lock_fd);
        free(r->lock_path);
        r->lock_path = NULL;
    }
    /* SIGPIPE is ignored while training (tgx_run_start): stdout's reader
     * leaving (| head) loses the lines and the result silently, exit 0 */
    tg_cli_check_stdout(r->c.prog);
}

tg_trainckpt *tgx_run_ckpt(tgx_run *r) { return r->ck; }

void tgx_run_register_loss(tgx_run *r, const char *sum, const char *weight, const char *last,
                           const char *recent)
{
    if ((sum && tg_trainckpt_f64(r->ck, sum, &r->loss_sum) != 0) ||
        (weight && tg_trainckpt_u64(r->ck, weight, &r->loss_weight) != 0) ||
        (last && tg_trainckpt_f64(r->ck, last, &r->last_loss) != 0) ||
        (recent && tg_trainckpt_f64(r->ck, recent, &r->recent_loss) != 0))
        tg_cli_die(r->c.prog, "out of memory");
}

/* ------------------------------------------------------------------ resume, log */

/* Counters no run writes: a skipped step is a step taken, and a streak is
 * made of skipped steps. Above them (a doctored file) the run went on to
 * say "7 of 4 steps skipped" and a NaN training loss. */
static void check_counters(const tgx_run *r)
{
    const char *prog = r->c.prog, *path = r->c.resume;
    if (r->skipped > r->step)
        tg_cli_die(prog, "%s: metadata 'u64.skipped' is %llu, above 'u64.step' %llu (a skipped "
                   "step is a step taken)", path, (unsigned long long)r->skipped,
                   (unsigned long long)r->step);
    if (r->streak > r->skipped)
        tg_cli_die(prog, "%s: metadata 'u64.skip_streak' is %llu, above 'u64.skipped' %llu (a "
                   "streak is of skipped steps)", path, (unsigned long long)r->streak,
                   (unsigned long long)r->skipped);
}

void tgx_run_resume(tgx_run *r)
{
    char err[1024];
    if (!r->c.resume) return;
    if (tg_trainckpt_load(r->ck, r->c.resume, err, sizeof err) != 0)
        tg_cli_die(r->c.prog, "%s", err);
    check_counters(r);
    r->start_step = r->step;
}

int tgx_run_say_nothing_left(const tgx_run *r)
{
    tgx_stop s = tgx_run_stop(r);
    if (s == TGX_STOP_STEPS)
        fprintf(stderr, "%s: already at step %llu of --steps %llu: nothing to train\n",
                r->c.prog, (unsigned long long)r->step, (unsigned long long)r->c.steps);
    else if (s == TGX_STOP_SECONDS)
        fprintf(stderr, "%s: already at step %llu, %.1fs of training (%s): nothing to train\n",
                r->c.prog, (unsigned long long)r->step, r->train_seconds, tgx_stop_name(s));
    return s == TGX_STOP_STEPS || s == TGX_STOP_SECONDS;
}

void tgx_run_open_log(tgx_run *r, const char *header)
{
    char err[1024];
    const char *log = tgx_run_is_root(r) ? r->c.log : NULL; /* rank 0 writes it */
    if (tg_csv_open_run(&r->csv, log, header, r->c.resume != NULL, err, sizeof err) != 0)
        tg_cli_die(r->c.prog, "%s", err);
}

/* ------------------------------------------------------------------ the loop */

/* Collective: every rank built (or resumed) the same parameters and is at
 * the same step, or the job ends naming the rank that differs. */
static void check_ranks_same(tgx_run *r)
{
    char err[1024];
    uint64_t state[3] = {r->step, r->skipped, r->streak};
    /* the data too: a rank given other text, pairs or images of the same
     * size built the same model and trained, silently, on a mix */
    uint64_t config = tg_trainckpt_config_hash(r->ck), resumed = tg_trainckpt_loaded_hash(r->ck);
    if (tg_dist_check_same(r->c.dist, &config, sizeof config,
                           "configuration (its model flags, and the hash of its training data)",
                           err, sizeof err) != 0 ||
        /* the settings a resume inherits and the optimizer's state: ranks
         * given other files of the same model trained each with its own */
        tg_dist_check_same(r->c.dist, &resumed, sizeof resumed,
                           "--resume file (its settings and state: every rank resumes a copy of "
                           "one file)", err, sizeof err) != 0 ||
        tg_dist_check_same(r->c.dist, tg_params_data(r->c.params),
                           tg_params_numel(r->c.params) * sizeof(tg_real), "parameters", err,
                           sizeof err) != 0 ||
        tg_dist_check_same(r->c.dist, state, sizeof state, "step", err, sizeof err) != 0)
        tg_cli_die(r->c.prog, "%s", err);
}

void tgx_run_start(tgx_run *r)
{
    interrupted = 0;
    catch_interrupts();
    /* --log or the progress lines may go to a pipe whose reader leaves (|
     * head): the write then fails, and the log's close says so after the
     * last checkpoint, where SIGPIPE killed the run before it. Left so to
     * the end: the log is closed after tgx_run_finish. */
    signal(SIGPIPE, SIG_IGN);
    tg_progress_init(&r->pg, progress_stream(r), 10.0);
    if (r->c.dist) check_ranks_same(r);
    const char *advice = tg_blas_core_advice();
    if (advice && tgx_run_is_root(r))
        fprintf(stderr, "%s: note: OpenBLAS runs its %s kernels, older than this CPU's AVX2 "
                "(a CPU model it does not know?): OPENBLAS_CORETYPE=%s makes training "
                "faster (1.2x to 3x where measured: BENCHMARKS.md)\n",
                r->c.prog, tg_blas_core(), advice);
}

tgx_stop tgx_run_stop(const tgx_run *r)
{
    if (r->c.dist && r->agreed_stop) return (tgx_stop)r->agreed_stop; /* the same on all */
    if (interrupted && !r->c.dist) return TGX_STOP_SIGNAL;
    /* a full disk: every later row would be lost too, found at the end */
    if (r->csv.err && !r->c.dist) return TGX_STOP_LOG;
    if (r->c.epochs > 0 && r->epochs_done >= r->c.epochs) return TGX_STOP_EPOCHS;
    if (r->c.steps > 0 && r->step >= r->c.steps) return TGX_STOP_STEPS;
    /* with ranks only before the first step: then train_seconds is the
     * resumed file's, the same on every rank */
    if (r->c.seconds > 0 && r->train_seconds >= r->c.seconds &&
        (!r->c.dist || r->step == r->start_step))
        return TGX_STOP_SECONDS;
    return TGX_GOING;
}

void tgx_run_begin_step(tgx_run *r) { r->t0 = tg_clock_seconds(); }

void tgx_run_add_time(tgx_run *r, double seconds)
{
    r->train_seconds += seconds;
    r->run_seconds += seconds;
}

/* The step's gradient norm when the loss is finite (else NaN): the
 * workers' when their run set the gradient (and nothing changed it since:
 * no reduce hook, no injected fault), else a pass over it. The same bits
 * either way (tg_workers_take_grad_norm). Their norm is taken every step,
 * used or not: a later step must not find this one's. */
static double grad_norm(const tgx_run *r, double loss)
{
    double norm;
    int known = r->c.workers && tg_workers_take_grad_norm(r->c.workers, &norm) == 0;
    int untouched = !r->c.hooks.reduce && r->c.fault_step != r->step + 1;
    if (!isfinite(loss)) return NAN;
    return known && untouched ? norm : tg_grad_norm(r->c.params);
}

/* The local verdict on the step's gradient (what, in err, when not
 * finite); clips a finite one. The norm comes first: a finite one says
 * every gradient is finite (a NaN or infinity makes the double sum of
 * squares one), so the scan that names a non-finite gradient runs only
 * when it is not: one pass over the gradients less a step. The values were
 * checked by the update that wrote them (tg_optim_values_finite), or are
 * scanned here before the first update and after one that wrote a
 * non-finite value (to name it): another pass less a step. Clipping waits
 * for the verdict: it would spread a NaN over every gradient, and the
 * message names the parameter where it arose. */
static tgx_verdict judge(tgx_run *r, double loss, char *err, size_t errlen)
{
    uint64_t step = r->step + 1;
    double norm = grad_norm(r, loss);
    int bad = !isfinite(norm) ? tg_trainckpt_nonfinite(r->ck, loss, step, err, errlen)
              : r->values_finite ? 0 /* the update that wrote them checked them */
                                 : tg_trainckpt_nonfinite_values(r->ck, step, err, errlen);
    if (bad == 0) {
        r->last_norm = norm;
        if (isfinite(norm)) {
            tg_clip_grad_to(r->c.params, norm, r->c.clip);
            return TGX_APPLIED;
        }
        /* finite values whose squares overflowed */
        snprintf(err, errlen, "step %llu: gradient norm is %g", (unsigned long long)step, norm);
    }
    if (!r->c.skip_nonfinite || r->streak + 1 >= TGX_MAX_SKIP_STREAK) return TGX_STOPPED;
    return TGX_SKIPPED;
}

/* Says what became of a step that was not applied; exits 1 on a stop. */
static void say_verdict(tgx_run *r, tgx_verdict v, const char *what)
{
    tg_progress_done(&r->pg);
    if (v == TGX_STOPPED && !r->c.skip_nonfinite)
        tg_cli_die(r->c.prog, "%s; stopping, last checkpoint kept (try a smaller --lr or "
                   "--clip, or --skip-nonfinite)", what);
    if (v == TGX_STOPPED)
        tg_cli_die(r->c.prog, "%s: %d steps in a row were not finite; stopping, last "
                   "checkpoint kept", what, TGX_MAX_SKIP_STREAK);
    fprintf(stderr, "%s: %s; step skipped (--skip-nonfinite)\n", r->c.prog, what);
}

static void count_loss(tgx_run *r, double loss, uint64_t weight)
{
    r->loss_sum += loss * (double)weight;
    r->loss_weight += weight;
    r->last_loss = loss;
    uint64_t applied = r->step - r->skipped;
    r->recent_loss = applied == 1 ? loss : 0.98 * r->recent_loss + 0.02 * loss;
}

/* Collective: the worst verdict of all ranks (stop > skip > apply, the
 * enum's order), in one reduction. */
static tgx_verdict agree_verdict(tg_dist *d, tgx_verdict local)
{
    return (tgx_verdict)tg_dist_max(d, (int)local);
}

tgx_verdict tgx_run_end_step(tgx_run *r, double loss, double lr, uint64_t weight,
                             double tokens)
{
    char err[1024] = "";
    if (r->c.hooks.reduce &&
        r->c.hooks.reduce(r->c.hooks.ctx, r->c.params, &loss, err, sizeof err) != 0)
        tg_cli_die(r->c.prog, "%s", err);
    if (r->c.fault_step == r->step + 1) tg_params_grad(r->c.params)[0] = (tg_real)NAN;
    tgx_verdict v = judge(r, loss, err, sizeof err);
    if (r->c.hooks.agree) v = r->c.hooks.agree(r->c.hooks.ctx, v);
    if (r->c.dist) v = agree_verdict(r->c.dist, v);
    if (v != TGX_APPLIED) say_verdict(r, v, err[0] ? err : "another process: not finite");
    if (v == TGX_APPLIED && r->c.opt) {
        if (!isnan(lr)) tg_optim_set_lr(r->c.opt, lr);
        tg_optim_step(r->c.opt, r->c.params);
        r->values_finite = tg_optim_values_finite(r->c.opt);
    }
    r->step++; /* before the loss: the moving average starts at the first applied step */
    r->unsaved = 1;
    r->tokens += tokens;
    if (v == TGX_APPLIED) {
        r->streak = 0;
        count_loss(r, loss, weight);
    } else {
        r->skipped++;
        r->streak++;
    }
    tgx_run_add_time(r, tg_clock_seconds() - r->t0);
    if (r->c.dist) { /* signals and clocks differ between ranks: stop at the same step */
        int out_of_time = r->c.seconds > 0 && r->train_seconds >= r->c.seconds;
        /* one reduction of the reasons ranked by precedence: a signal on any
         * rank, then rank 0's log, then a rank's clock */
        int rank = interrupted ? 3 : r->csv.err != 0 ? 2 : out_of_time ? 1 : 0;
        static const tgx_stop reason[] = {TGX_GOING, TGX_STOP_SECONDS, TGX_STOP_LOG,
                                          TGX_STOP_SIGNAL};
        r->agreed_stop = reason[tg_dist_max(r->c.dist, rank)];
    }
    return v;
}

void tgx_run_touch(tgx_run *r) { r->unsaved = 1; }

void tgx_run_reset_loss(tgx_run *r)
{
    r->loss_sum = 0;
    r->loss_weight = 0;
}

void tgx_run_end_epoch(tgx_run *r)
{
    r->epochs_done++;
    tgx_run_reset_loss(r);
    r->unsaved = 1;
}

double tgx_run_mean_loss(const tgx_run *r)
{
    return r->loss_weight ? r->loss_sum / (double)r->loss_weight : NAN;
}

double tgx_run_tokens_per_second(const tgx_run *r)
{
    return r->run_seconds > 0 ? r->tokens / r->run_seconds : 0;
}

int tgx_run_eval_due(const tgx_run *r, uint64_t n) { return n > 0 && r->step % n == 0; }

int tgx_run_keep_best(double metric, double *best, int higher_better)
{
    if (isnan(metric)) return 0;
    int better = isnan(*best) || (higher_better ? metric > *best : metric < *best);
    if (better) *best = metric;
    return better;
}

/* The run's configuration hash as kept.run writes it. */
static void run_hash_text(const tgx_run *r, char *out, size_t cap)
{
    snprintf(out, cap, "%016llx", (unsigned long long)tg_trainckpt_config_hash(r->ck));
}

void tgx_kept_meta_make(tgx_kept_meta *km, const tgx_run *r, const char *metric, double value)
{
    snprintf(km->key, sizeof km->key, "kept.%s", metric);
    snprintf(km->value, sizeof km->value, "%.17g", value);
    snprintf(km->step, sizeof km->step, "%llu", (unsigned long long)r->step);
    run_hash_text(r, km->run, sizeof km->run);
    km->kv[0] = (tg_ckpt_meta){km->key, km->value};
    km->kv[1] = (tg_ckpt_meta){"kept.step", km->step};
    km->kv[2] = (tg_ckpt_meta){"kept.run", km->run};
}

/* The kept model's metric and step from its file's metadata; 0 when the
 * file has them, well formed, for r's configuration. */
static int read_kept(const tgx_run *r, const char *path, const char *metric, double *value,
                     uint64_t *step)
{
    char key[48], v[64], st[64], run[64], mine[24], *end;
    snprintf(key, sizeof key, "kept.%s", metric);
    run_hash_text(r, mine, sizeof mine);
    if (!tg_checkpoint_peek_meta(path, key, v, sizeof v) ||
        !tg_checkpoint_peek_meta(path, "kept.step", st, sizeof st) ||
        !tg_checkpoint_peek_meta(path, "kept.run", run, sizeof run) || strcmp(run, mine) != 0)
        return -1;
    errno = 0;
    *value = strtod(v, &end);
    if (errno || end == v || *end || !isfinite(*value)) return -1;
    *step = strtoull(st, &end, 10);
    return errno || end == st || *end || st[0] == '-' ? -1 : 0;
}

void tgx_run_adopt_kept(tgx_run *r, const char *path, const char *metric, int higher_better,
                        double *best, uint64_t *best_step)
{
    struct { double value; uint64_t step; int adopt; } k = {0, 0, 0};
    if (tgx_run_is_root(r) && path && read_kept(r, path, metric, &k.value, &k.step) == 0 &&
        k.step > r->step) {
        double was = *best;
        k.adopt = tgx_run_keep_best(k.value, &was, higher_better);
    }
    if (r->c.dist) tg_dist_broadcast(r->c.dist, &k, sizeof k);
    if (!k.adopt) return;
    *best = k.value;
    *best_step = k.step;
    if (tgx_run_is_root(r))
        fprintf(stderr, "%s: %s holds the model kept at step %llu (%s %.4f), after this "
                "checkpoint's step %llu: a model replaces it only when it does better\n",
                r->c.prog, path, (unsigned long long)k.step, metric, k.value,
                (unsigned long long)r->step);
}

/* ------------------------------------------------------------------ checkpoints */

void tgx_run_save_checkpoint(tgx_run *r)
{
    char err[1024];
    r->unsaved = 0;
    if (r->c.dist && r->c.hooks.before_checkpoint) r->c.hooks.before_checkpoint(r->c.hooks.ctx);
    if (!tgx_run_is_root(r)) return; /* every rank holds the same state: rank 0 writes it */
    tgx_write_begin(r->c.checkpoint);
    int rc = tg_trainckpt_save(r->ck, r->c.checkpoint, err, sizeof err);
    tgx_write_end();
    if (rc != 0) tg_cli_die(r->c.prog, "%s", err);
}

void tgx_run_periodic_checkpoint(tgx_run *r)
{
    if (r->c.checkpoint && r->c.every > 0 && r->unsaved && r->step % r->c.every == 0)
        tgx_run_save_checkpoint(r);
}

/* Says why the training stopped early (rank 0, which writes the log). The
 * program then goes on to its --save, export and sample, as at any stop,
 * and the log's close exits 1: exiting here lost the trained model of a
 * run without --checkpoint. */
static void report_log_failed(const tgx_run *r)
{
    fprintf(stderr, "%s: --log %s: write error: %s; training stopped at step %llu", r->c.prog,
            r->c.log, strerror(r->csv.err), (unsigned long long)r->step);
    if (r->c.checkpoint)
        fprintf(stderr, ", checkpoint %s kept (--resume it with another --log)", r->c.checkpoint);
    fputc('\n', stderr);
}

void tgx_run_finish(tgx_run *r)
{
    tg_progress_done(&r->pg);
    /* SIGINT and SIGTERM keep their handler to the program's end: a first
     * signal during the final checkpoint, evaluation or --save is noted and
     * the program finishes them (a second ends it at once, removing the
     * save's temporary); put back to the default here, one killed the run
     * half-way through writing its checkpoint, the temporary left and no
     * checkpoint at all. Asked here,
     * before the save: a signal during it did not interrupt the training. */
    int signalled = interrupted || tgx_run_stop(r) == TGX_STOP_SIGNAL;
    int log_failed = r->csv.err != 0; /* rank 0's log */
    /* a resume that trained nothing leaves its file as it was; the same
     * decision on every rank (the save may be collective) */
    int same = r->c.resume && r->c.checkpoint && strcmp(r->c.resume, r->c.checkpoint) == 0;
    if (r->c.checkpoint && (r->unsaved || !same)) tgx_run_save_checkpoint(r);
    if (!tgx_run_is_root(r)) return;
    if (signalled)
        fprintf(stderr, "%s: interrupted at step %llu\n", r->c.prog, (unsigned long long)r->step);
    if (r->c.checkpoint)
        fprintf(stderr, "%s: checkpoint %s at step %llu\n", r->c.prog, r->c.checkpoint,
                (unsigned long long)r->step);
    uint64_t ran = r->step - r->start_step;
    if (r->c.dist && tg_dist_size(r->c.dist) > 1 && ran > 0) /* SCALING.md's figure */
        fprintf(stderr, "%s: gradient exchange %.1f ms per step on rank 0 (%.0f%% of its "
                "training time; waiting for a slower rank included)\n", r->c.prog,
                1e3 * tg_dist_comm_seconds(r->c.dist) / (double)ran,
                r->run_seconds > 0 ? 100 * tg_dist_comm_seconds(r->c.dist) / r->run_seconds : 0);
    if (r->skipped)
        fprintf(stderr, "%s: %llu of %llu steps skipped as not finite\n", r->c.prog,
                (unsigned long long)r->skipped, (unsigned long long)r->step);
    if (log_failed) report_log_failed(r);
}

/* ------------------------------------------------------------------ arenas */

/* glibc's malloc perturbation (a debugging aid tests turn on with
 * MALLOC_PERTURB_): off (0), or back to the environment's (-1). */
static void set_perturb(int value)
{
#ifdef M_PERTURB
    const char *env = getenv("MALLOC_PERTURB_");
    mallopt(M_PERTURB, value >= 0 ? value : env ? atoi(env) : 0);
#else
    (void)value;
#endif
}

/* AddressSanitizer writes the shadow of every allocation, an eighth of its
 * size, when it is made and again when it is freed: on a 24 GB machine the
 * probe's 5.75 GB reservation below cost 4 s of memset per measurement (a
 * charlm start measures twice): the resume tests ran past their time limit.
 * Its builds (tests and their small models) reserve less. */
#if defined(__SANITIZE_ADDRESS__) /* gcc */
#define UNDER_ASAN 1
#elif defined(__has_feature) /* clang */
#if __has_feature(address_sanitizer)
#define UNDER_ASAN 1
#endif
#endif
#ifdef UNDER_ASAN
#define PROBE_ROOM_MAX ((size_t)512 << 20)
#else
#define PROBE_ROOM_MAX ((size_t)8 << 30)
#endif

/* Where an overflowing probe goes back to. */
typedef struct probe_exit {
    jmp_buf to;
} probe_exit;

static void probe_overflowed(void *ctx, size_t need)
{
    (void)need;
    longjmp(((probe_exit *)ctx)->to, 1);
}

/* OpenBLAS (0.3.21) maps a work buffer of this size for each thread that
 * calls it at once, and when the map fails it retries forever (OpenBLAS
 * issue 5289, fixed in 0.3.30): under an address-space limit that is a
 * hang, so the space is kept for it. */
#define BLAS_BUFFER_BYTES ((size_t)128 << 20)

/* Address space the process may still map under its RLIMIT_AS (ulimit -v,
 * a batch system's h_vmem): the limit less /proc/self/statm's size and
 * less a BLAS work buffer for every thread (OpenMP's count and the main
 * thread); SIZE_MAX when there is no limit. Such a limit counts
 * reservations, not the pages touched, so it can be far below the memory
 * free. */
static size_t address_space_left(void)
{
    struct rlimit lim;
    if (getrlimit(RLIMIT_AS, &lim) != 0 || lim.rlim_cur == RLIM_INFINITY) return SIZE_MAX;
    FILE *f = fopen("/proc/self/statm", "r");
    unsigned long long pages = 0;
    if (f) {
        if (fscanf(f, "%llu", &pages) != 1) pages = 0;
        fclose(f);
    }
    size_t used = (size_t)pages * (size_t)sysconf(_SC_PAGESIZE);
    used += BLAS_BUFFER_BYTES * (size_t)(omp_get_max_threads() + 1);
    return (size_t)lim.rlim_cur > used ? (size_t)lim.rlim_cur - used : 0;
}

/* The probe's room: a quarter of the machine's memory, at most
 * PROBE_ROOM_MAX, and at most half the address space left (the probe
 * reserves it whole; what the message then names is what it had). */
static size_t probe_room(const char **why)
{
    long pages = sysconf(_SC_PHYS_PAGES), page = sysconf(_SC_PAGESIZE);
    size_t room = pages > 0 && page > 0 ? (size_t)pages / 4 * (size_t)page : (size_t)1 << 30;
    size_t left = address_space_left() / 2;
    *why = "a quarter of the machine's memory";
    if (room > PROBE_ROOM_MAX) {
        room = PROBE_ROOM_MAX;
        *why = "the probe's own limit";
    }
    if (room > left) {
        room = left;
        *why = "half the address space ulimit -v leaves";
    }
    return room;
}

size_t tgx_arena_measure(void (*probe)(void *ctx, tg_tape *t), void *ctx)
{
    const char *why;
    size_t room = probe_room(&why);
    tg_tape *t = NULL;
    set_perturb(0); /* glibc's MALLOC_PERTURB_ would fill the whole reservation */
    while (!t && room >= ((size_t)64 << 20)) { /* a stricter overcommit policy: less */
        t = tg_tape_new(room);
        room /= 2;
    }
    set_perturb(-1);
    if (!t) return 0;
    /* a step larger than the room leaves through the hook (the arena is
     * only filled on the recording thread, never inside a parallel
     * region): an answer for the caller, where the engine's overflow
     * error would end the program over flags it should tell to lower */
    probe_exit out;
    volatile size_t high = TGX_ARENA_TOO_BIG;
    if (setjmp(out.to) == 0) {
        tg_tape_on_overflow(t, probe_overflowed, &out);
        probe(ctx, t);
        high = tg_tape_arena_high_water(t);
    }
    set_perturb(0);
    tg_tape_free(t);
    set_perturb(-1);
    return high == TGX_ARENA_TOO_BIG ? high : high + high / 8 + ((size_t)1 << 20);
}

/* ------------------------------------------------------------------ memory */

tgx_memory_plan tgx_memory_plan_of(size_t numel, int shards, const tg_optim *opt, size_t arenas)
{
    size_t bytes = numel * sizeof(tg_real);
    tgx_memory_plan p = {bytes, 0, 0, arenas, 0};
    if (opt) {
        p.grads = bytes * (size_t)(1 + (shards > 1 ? shards : 0)); /* replicas past one */
        p.optim = bytes * tg_optim_state_count(opt);
    }
    return p;
}

tgx_memory_plan tgx_memory_plan_config(size_t numel, int shards, const tg_optim_config *oc,
                                       size_t arenas)
{
    size_t bytes = numel * sizeof(tg_real);
    size_t arrays = oc->kind == TG_OPTIM_SGD ? (oc->momentum > 0 ? 1 : 0) : 2;
    tgx_memory_plan p = {bytes, bytes * (size_t)(1 + (shards > 1 ? shards : 0)),
                         bytes * arrays, arenas, 0};
    return p;
}

size_t tgx_stack_weights(const tg_cell_kind *kind, int in, int hidden, int layers)
{
    size_t H = (size_t)hidden, G = (size_t)kind->gates, n = 0, x = (size_t)in;
    for (int l = 0; l < layers; l++, x = H) n += G * H * (x + H);
    return n;
}

size_t tgx_stack_numel(const tg_cell_kind *kind, int in, int hidden, int layers)
{
    size_t H = (size_t)hidden, G = (size_t)kind->gates;
    /* each layer's two biases and the 4 extra rows besides the weights */
    return tgx_stack_weights(kind, in, hidden, layers) + (size_t)layers * (2 * G * H + 4 * H);
}

int tgx_model_meta_fits(const char *prog, const tg_checkpoint *ck, const char *path,
                        size_t floor, size_t bound, const char *what, char *err, size_t errlen)
{
    char src[96], need[32], have[32];
    size_t avail = tgx_memory_available(prog, src, sizeof src);
    double bytes = 2.0 * (double)bound * (double)sizeof(tg_real); /* and the gradients */
    if (avail && bytes > (double)avail) {
        tgx_format_bytes(bytes < (double)SIZE_MAX ? (size_t)bytes : SIZE_MAX, need, sizeof need);
        tgx_format_bytes(avail, have, sizeof have);
        return snprintf(err, errlen, "%s: its metadata describes a model of %s with its "
                        "gradients (%s), more than the %s available (%s)", path, need, what, have,
                        src), -1;
    }
    size_t held = 0;
    for (size_t i = 0; i < tg_checkpoint_tensor_count(ck); i++) {
        int rows = 0, cols = 0;
        tg_checkpoint_tensor_shape(ck, tg_checkpoint_tensor_name(ck, i), &rows, &cols);
        held += (size_t)rows * (size_t)cols;
    }
    if (held < floor)
        return snprintf(err, errlen, "%s: its metadata describes a model of at least %zu values "
                        "(%s) but its tensors hold %zu: they are not that model's", path, floor,
                        what, held), -1;
    return 0;
}

size_t tgx_memory_plan_total(const tgx_memory_plan *p)
{
    return p->params + p->grads + p->optim + p->arenas + p->data;
}

void tgx_format_bytes(size_t n, char *buf, size_t cap)
{
    double mib = (double)n / 1048576.0;
    if (n < 1024) /* TG_MAX_MEMORY=1 was "0.0 KiB available" */
        snprintf(buf, cap, "%zu B", n);
    else if (mib < 1)
        snprintf(buf, cap, "%.1f KiB", (double)n / 1024.0);
    else if (mib < 1024)
        snprintf(buf, cap, "%.1f MiB", mib);
    else
        snprintf(buf, cap, "%.1f GiB", mib / 1024);
}

void tgx_probe_ids(int *ids, size_t n, int first, int vocab)
{
    TG_CHECK(first >= 0 && first < vocab, TG_HERE, "tgx_probe_ids",
             "first id %d outside a vocabulary of %d", first, vocab);
    size_t avail = (size_t)(vocab - first);
    size_t most = n < avail ? n : avail, distinct = most > 1 ? most - 1 : 1;
    for (size_t k = 0; k < n; k++) ids[k] = first + (int)(k % distinct);
}

int tgx_arena_problem(size_t bytes, const char *lower, char *err, size_t errlen)
{
    if (bytes == 0)
        snprintf(err, errlen, "out of memory: no 64 MiB step arena to measure a step in; lower %s",
                 lower);
    else if (bytes == TGX_ARENA_TOO_BIG) {
        char room[32];
        const char *why;
        tgx_format_bytes(probe_room(&why), room, sizeof room);
        snprintf(err, errlen, "one step of this configuration needs more than %s of step memory, "
                 "the most a step may take here (%s): lower %s", room, why, lower);
    }
    return bytes == 0 || bytes == TGX_ARENA_TOO_BIG;
}

/* A size with an optional K, M or G suffix (powers of 1024), digits first:
 * strtoull skips blanks and takes a sign, so " -1" was 2^64 - 1, no cap. */
static int parse_size(const char *s, size_t *out)
{
    char *end;
    if (!isdigit((unsigned char)s[0])) return -1;
    errno = 0;
    unsigned long long v = strtoull(s, &end, 10);
    int shift = 0;
    if (*end == 'K' || *end == 'k') shift = 10;
    if (*end == 'M' || *end == 'm') shift = 20;
    if (*end == 'G' || *end == 'g') shift = 30;
    if (shift) end++;
    if (errno || end == s || *end || (shift && v > (~0ull >> shift))) return -1;
    *out = (size_t)(v << shift);
    return 0;
}

/* The first number on the line of /proc/meminfo that starts with key, in
 * bytes (the file gives kB); 0 when absent. */
static size_t meminfo(const char *key)
{
    FILE *f = fopen("/proc/meminfo", "r");
    char line[256];
    unsigned long long kb = 0;
    size_t len = strlen(key);
    if (!f) return 0;
    while (fgets(line, sizeof line, f))
        if (strncmp(line, key, len) == 0 && sscanf(line + len, " %llu", &kb) == 1) break;
    fclose(f);
    return (size_t)kb * 1024;
}

/* A number in a one-line file (a cgroup's); 0 when absent or "max". */
static size_t file_number(const char *path)
{
    FILE *f = fopen(path, "r");
    unsigned long long v = 0;
    if (!f) return 0;
    if (fscanf(f, "%llu", &v) != 1) v = 0;
    fclose(f);
    return (size_t)v;
}

size_t tgx_memory_available(const char *prog, char *src, size_t cap)
{
    const char *cap_env = getenv("TG_MAX_MEMORY");
    size_t avail;
    if (cap_env && cap_env[0]) {
        if (parse_size(cap_env, &avail) != 0 || avail == 0) /* 0 would read as "unknown" */
            tg_cli_die_usage(prog, "TG_MAX_MEMORY: expected bytes (or with a K, M or G suffix), "
                             "more than 0, got '%.40s'", cap_env);
        snprintf(src, cap, "TG_MAX_MEMORY");
        return avail;
    }
    avail = meminfo("MemAvailable:");
    snprintf(src, cap, "MemAvailable in /proc/meminfo");
    if (!avail) {
        long pages = sysconf(_SC_AVPHYS_PAGES), page = sysconf(_SC_PAGESIZE);
        avail = pages > 0 && page > 0 ? (size_t)pages * (size_t)page : 0;
        snprintf(src, cap, "free memory");
    }
    size_t limit = file_number("/sys/fs/cgroup/memory.max");
    size_t used = file_number("/sys/fs/cgroup/memory.current");
    if (limit > 0 && limit > used && (!avail || limit - used < avail)) {
        avail = limit - used;
        snprintf(src, cap, "the cgroup's memory.max less its memory.current");
    }
    size_t left = address_space_left();
    if (left != SIZE_MAX && (!avail || left < avail)) {
        avail = left ? left : 1; /* 0 would say "unknown" */
        snprintf(src, cap, "the address-space limit, ulimit -v, less the space mapped and BLAS's "
                 "buffers");
    }
    return avail;
}

void tgx_memory_check(const char *prog, const tgx_memory_plan *p, const char *lower)
{
    char src[96], need[32], have[32], par[32], gr[32], opt[32], ar[32], data[64] = "";
    size_t avail = tgx_memory_available(prog, src, sizeof src);
    size_t total = tgx_memory_plan_total(p);
    if (!avail || total <= avail) return;
    tgx_format_bytes(total, need, sizeof need);
    tgx_format_bytes(avail, have, sizeof have);
    tgx_format_bytes(p->params, par, sizeof par);
    tgx_format_bytes(p->grads, gr, sizeof gr);
    tgx_format_bytes(p->optim, opt, sizeof opt);
    tgx_format_bytes(p->arenas, ar, sizeof ar);
    if (p->data) {
        memcpy(data, ", training data ", 16);
        tgx_format_bytes(p->data, data + 16, sizeof data - 16);
    }
    tg_cli_die(prog, "this configuration needs %s (parameters %s, gradients %s, optimizer state "
               "%s, %s%s%s) but %s is available (%s): lower %s", need, par, gr, opt,
               p->arenas ? "step arenas " : "step arenas not measured yet",
               p->arenas ? ar : "", data, have, src, lower);
}

void tgx_memory_check_data(const char *prog, const char *what, size_t need, const char *how,
                           const char *advice)
{
    char src[96], needs[32], have[32];
    size_t avail = tgx_memory_available(prog, src, sizeof src);
    if (!avail || need <= avail) return;
    tgx_format_bytes(need, needs, sizeof needs);
    tgx_format_bytes(avail, have, sizeof have);
    tg_cli_die(prog, "%s takes %s (%s) but %s is available (%s): %s", what, needs, how, have, src,
               advice);
}
