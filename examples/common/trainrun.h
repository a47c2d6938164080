/* A training run: the loop's bookkeeping that every program shares, once.
 *
 * Named tgx_run (x: examples) because it is not the engine's API: it lives
 * beside the programs (examples/common), over the library and over
 * trainckpt.h. It is meant to be copied or linked by people who write their
 * own training programs in C; the engine (tapegrad.h) knows nothing of it.
 *
 * What it owns: the step counter, skipped steps and the current skip
 * streak, training seconds (all of a resumed run's processes), the running
 * loss (an epoch sum and a moving average); the stop reasons (--steps,
 * --seconds, --epochs, SIGINT/SIGTERM); the step's end (reduce hook, the
 * non-finite guard, clipping, the verdict, the optimizer step); periodic
 * and final training checkpoints; --resume of all registered state; the
 * progress line and the CSV log. What a program supplies: its parameters
 * and optimizer, its batches and loss (forward + backward into the master
 * gradient, usually over tg_workers shards), its evaluation, its
 * configuration (registered on tgx_run_ckpt()), and its own data position.
 *
 *   tgx_run run;
 *   tgx_run_config rc = tgx_run_defaults("myprog", params, opt);
 *   rc.clip = 5; rc.steps = 1000; rc.checkpoint = path; rc.every = 100; ...
 *   tgx_run_init(&run, &rc);                       // registers step, skipped, ...
 *   tg_trainckpt_u64(tgx_run_ckpt(&run), "pos", &pos);  // the program's own state
 *   tgx_run_resume(&run);                          // --resume: all or nothing
 *   tgx_run_open_log(&run, "step,loss");
 *   tgx_run_start(&run);                           // signals, progress line
 *   while (!tgx_run_stop(&run)) {
 *       tgx_run_begin_step(&run);
 *       double loss = my_forward_backward(...);    // gradient in params
 *       if (tgx_run_end_step(&run, loss, lr, 1, tokens) == TGX_APPLIED) ...
 *       tgx_run_periodic_checkpoint(&run);
 *   }
 *   tgx_run_finish(&run);                          // final checkpoint, messages
 *   tgx_run_free(&run);
 *
 * Hooks for later work: hooks.reduce runs where the master gradient is
 * complete on this process (after the shards were summed by tg_workers):
 * a distributed run sums it (and the loss) over processes there.
 * hooks.agree runs on the local verdict: a distributed run makes every
 * process take the same one (skip on one = skip on all). MPI ranks
 * (tgx_run_config.dist, tgx_dist_init) need neither hook: the program's
 * shards go through tg_dist_run, which leaves the same reduced gradient and
 * loss on every rank, and the run agrees verdicts and stops itself. evaluation every
 * N steps with keep-best is tgx_run_eval_due / tgx_run_keep_best. */
#ifndef TGX_TRAINRUN_H
#define TGX_TRAINRUN_H

#include <stdint.h>

#include "cli.h"
#include "tapegrad.h"
#include "tg_dist.h"
#include "tg_layers.h"
#include "tg_optim.h"
#include "trainckpt.h"

#ifdef __cplusplus
extern "C" {
#endif

/* --optim, the same choices in every program: "momentum" is SGD with
 * momentum 0.9 (a program's --momentum may change it). */
#define TGX_OPTIM_CHOICES "sgd,momentum,adam,adamw"
/* The optimizer's defaults for --optim NAME into *out. 0, or -1 for a name
 * not in TGX_OPTIM_CHOICES (*out untouched). */
int tgx_optim_from_flag(const char *name, tg_optim_config *out);

/* A model flag given on the command line that the model read from file
 * (--load, --import-torch) contradicts: exits 2 with "--FLAG V does not
 * match the model FILE (FLAG=W); leave it out to use the model's". Nothing
 * when the flag was not given. */
void tgx_check_model_int(const char *prog, const tg_cmdline *cl, const char *flag, int given,
                         int model, const char *file);
void tgx_check_model_str(const char *prog, const tg_cmdline *cl, const char *flag,
                         const char *given, const char *model, const char *file);

/* --shards when not given (0): max(2, threads), at most one per batch row,
 * so that --threads 1 and 2 give the same results and extra threads run
 * shards (the kernels' own threading is slower on these sizes). */
int tgx_default_shards(int shards, int threads, int batch);
/* Exits 2 when shards (resolved) is above batch: a shard would have no
 * rows. "--shards S must be in 1..min(--batch B, max)". */
void tgx_check_shards(const char *prog, int shards, int batch, int max);
/* Exits 2 when momentum is above 0 for an --optim other than sgd or
 * momentum: only SGD has one, Adam(W) would silently drop it. */
void tgx_check_momentum(const char *prog, const char *optim, double momentum);
/* The run's thread count from --threads: 0 (the default) is every online
 * core, as a user running the program on a machine expects; at most 256.
 * It becomes OpenMP's default too (omp_set_num_threads; every parallel
 * region names its count anyway): under an address-space limit the memory
 * check keeps a BLAS buffer for each thread of the run, not of the machine.
 * Call before tgx_default_shards. */
int tgx_run_threads(int threads);
#define TGX_SHARDS_HELP                                                                     \
    "data-parallel shards of each batch; 0: max(2, --threads), at most --batch (results "  \
    "depend on --shards, never on --threads for a given --shards)"

/* The help of the flags every training program shares, in one wording
 * (charlm, rowseq, seq2seq, echo). A program whose flag means more adds
 * to it (TGX_HELP_SAVE's "what" says what is written and when). */
#define TGX_HELP_THREADS                                                                     \
    "threads: one per shard, inside the kernels with one shard (results do not depend on "  \
    "it); 0: every core"
#define TGX_HELP_CHECKPOINT                                                                  \
    "write a training checkpoint (all --resume needs) to FILE every --every steps and at the " \
    "end"
#define TGX_HELP_EVERY "steps between training checkpoints (0: at the end only)"
#define TGX_HELP_RESUME                                                                      \
    "continue the run in training checkpoint FILE exactly; settings not given are taken "   \
    "from it, and the run's length (--steps, --epochs) counts from its start"
#define TGX_HELP_SKIP_NONFINITE                                                              \
    "skip a step whose loss or gradient is NaN or infinite, instead of stopping with exit 1"
/* rows: "one row per step", "one row per epoch" ... */
#define TGX_HELP_LOG(rows)                                                                   \
    "write the training metrics to FILE as CSV, " rows " (scripts/plot_log.py FILE draws them)"
/* what: "the model, its optimizer state and vocabulary, at the end" ... */
#define TGX_HELP_SAVE(what)                                                                  \
    "write to FILE (safetensors) " what "; never over a training checkpoint (refused: "     \
    "--resume continues one)"
#define TGX_HELP_LOAD(what)                                                                  \
    "start from the model in FILE (a --save or --checkpoint file: " what "); without a "    \
    "training flag nothing trains"
/* every: "every N steps" in the program's words */
#define TGX_HELP_EVAL_EVERY(unit)                                                            \
    "evaluate on the held-out data every N " unit " and keep the best model in --save (0: " \
    "at the end only)"
#define TGX_HELP_EXPORT_TORCH(module)                                                        \
    "write the model in the names and shapes of scripts/torch_models.py's " module         \
    " (load_state_dict(strict=True)) to FILE: the same model as --save"
#define TGX_HELP_IMPORT_TORCH(module)                                                        \
    "start from a " module " state_dict in FILE (scripts/torch_models.py writes one); its " \
    "shapes give the model's size"

/* The four training-checkpoint flags (--checkpoint, --every, --resume,
 * --skip-nonfinite) in the shared wording, at f[0..3]; returns 4. */
int tgx_checkpoint_flags(tg_flag *f, const char **checkpoint, int *every, const char **resume,
                         int *skip_nonfinite);

/* A run stops after this many skipped steps in a row: the model is not
 * recovering, and skipping on would only burn time. */
#define TGX_MAX_SKIP_STREAK 100

/* What became of a step. */
typedef enum tgx_verdict {
    TGX_APPLIED = 0, /* finite: clipped and applied (ordered: ranks agree on the largest) */
    TGX_SKIPPED,     /* not finite, --skip-nonfinite: no update */
    TGX_STOPPED,     /* not finite: the run must stop (tgx_run_end_step exits 1) */
} tgx_verdict;

/* Why training stops (TGX_GOING: it goes on). */
typedef enum tgx_stop {
    TGX_GOING = 0,
    TGX_STOP_SIGNAL,  /* SIGINT or SIGTERM */
    TGX_STOP_STEPS,   /* --steps reached */
    TGX_STOP_SECONDS, /* --seconds reached */
    TGX_STOP_EPOCHS,  /* --epochs reached */
    TGX_STOP_LOG,     /* a --log row could not be written (the log's close exits 1) */
} tgx_stop;

/* "interrupted", "--steps reached", "--seconds reached", "--epochs reached",
 * "--log write error". */
const char *tgx_stop_name(tgx_stop s);

typedef struct tgx_run_hooks {
    /* The master gradient (and *loss) of this process is complete: a
     * distributed run sums them over processes here. 0, or -1 with a
     * message in err (the run exits 1). NULL: one process. */
    int (*reduce)(void *ctx, tg_params *params, double *loss, char *err, size_t errlen);
    /* The verdict every process takes (e.g. the worst of all). NULL: local. */
    tgx_verdict (*agree)(void *ctx, tgx_verdict local);
    /* With ranks, collective: every rank calls it just before a training
     * checkpoint is written (by rank 0), so that state living only on the
     * rank that runs a shard (carried recurrent state, a shard's dropout
     * generator) reaches rank 0's registered fields (tg_dist_share_shard).
     * NULL: nothing of the kind. */
    void (*before_checkpoint)(void *ctx);
    void *ctx;
} tgx_run_hooks;

typedef struct tgx_run_config {
    const char *prog;     /* "charlm": messages and the checkpoint's program */
    tg_params *params;    /* the master parameters */
    tg_optim *opt;        /* may be NULL (no training) */
    double clip;          /* global gradient norm (0: off) */
    int threads;          /* for the optimizer's update (tg_optim_set_threads); 0: 1 */
    int skip_nonfinite;   /* --skip-nonfinite */
    uint64_t steps;       /* stop limits, 0: none */
    double seconds;
    uint64_t epochs;
    const char *checkpoint, *resume, *log; /* NULL: not given */
    uint64_t every;       /* steps between checkpoints (0: at the end only) */
    uint64_t fault_step;  /* a test hook: poison a gradient at this step (0: never) */
    tgx_run_hooks hooks;
    /* MPI ranks (tg_dist.h), NULL: one process. Every rank runs the same
     * loop on the same (reduced) gradient; the run agrees the verdict, the
     * stop (a signal or --seconds on any rank) and checks at start that all
     * ranks hold the same parameters and state; only rank 0 prints
     * progress, writes --log and checkpoints. */
    tg_dist *dist;
    /* The workers whose run (tg_workers_run, tg_dist_run) sets params'
     * gradient, NULL: none. The end of a step then takes the norm they
     * summed on the way (tg_workers_take_grad_norm, once a run) instead of
     * a pass over the gradient; a step after no full run of theirs (MPI
     * ranks, another path) takes the pass. The program must not change
     * the gradient between their run and the end of the step. */
    tg_workers *workers;
} tgx_run_config;

typedef struct tgx_run {
    tgx_run_config c;
    tg_trainckpt *ck;
    /* the loop's state, in training checkpoints */
    uint64_t step;        /* steps run (applied or skipped), from the run's start */
    uint64_t skipped;     /* of them, skipped as not finite */
    uint64_t streak;      /* skipped in a row up to now */
    uint64_t epochs_done; /* for --epochs; the program counts them (tgx_run_end_epoch) */
    double train_seconds; /* training time, all of the run's processes */
    double loss_sum;      /* sum of weight x loss over applied steps since tgx_run_reset_loss */
    uint64_t loss_weight; /* the weights in that sum */
    double last_loss, recent_loss; /* the last applied loss, its moving average (0.98) */
    /* this process only */
    uint64_t start_step;  /* where it started (> 0 after --resume) */
    double run_seconds;   /* its training time */
    double tokens;        /* tokens it trained on (the program's unit) */
    double last_norm;     /* the last step's gradient norm before clipping */
    int values_finite;    /* the optimizer's last update wrote only finite values: the
                           * next step's check of them is done (tg_optim_values_finite) */
    int unsaved;          /* the state changed since the last checkpoint */
    double t0;            /* start of the step in progress */
    tg_progress pg;       /* the progress line (stderr) */
    tg_csv csv;           /* --log */
    FILE *quiet;          /* /dev/null: the progress line of a rank other than 0 */
    int agreed_stop;      /* ranks: a tgx_stop for a signal or --seconds on some rank, agreed
                           * by tgx_run_end_step (TGX_GOING: none) */
    char *lock_path;      /* --checkpoint's FILE.lock, held by this run (NULL: none) */
    int lock_fd;
} tgx_run;

/* The program's ranks when a launcher (mpirun: OMPI_COMM_WORLD_SIZE,
 * PMIX_RANK or PMI_SIZE in the environment) started it: tg_dist_init
 * (exits 1 with its reason; exits 2 where MPI's rank or size is not the
 * variables': they were left over, and no launcher started the process).
 * NULL otherwise: a run without mpirun never touches MPI (no singleton
 * start-up, no MPI signal handlers), exactly as a build without MPI. */
tg_dist *tgx_dist_init(const char *prog, int *argc, char ***argv);

/* 1 on rank 0 (the rank that prints and writes) or without ranks. */
int tgx_run_is_root(const tgx_run *r);

tgx_run_config tgx_run_defaults(const char *prog, tg_params *params, tg_optim *opt);
/* The config from a program's options struct whose fields are named as in
 * every program here: clip, skip_nonfinite, steps, seconds, checkpoint,
 * resume, log, every, fault_step, threads (a macro: any such struct will
 * do). */
#define TGX_RUN_CONFIG_FROM(prog_, params_, opt_, o)                                        \
    ((tgx_run_config){.prog = (prog_), .params = (params_), .opt = (opt_),                 \
                      .clip = (o)->clip, .skip_nonfinite = (o)->skip_nonfinite,           \
                      .steps = (uint64_t)(o)->steps, .seconds = (o)->seconds,             \
                      .checkpoint = (o)->checkpoint, .resume = (o)->resume, .log = (o)->log, \
                      .every = (uint64_t)(o)->every, .fault_step = (o)->fault_step,     \
                      .threads = (o)->threads})

/* Sets up the run and its training checkpoint, and registers the run's own
 * state as "u64.step", "u64.skipped", "u64.skip_streak",
 * "f64.train_seconds". With --checkpoint FILE it locks FILE.lock to
 * tgx_run_free (which removes it): a second run on the same checkpoint
 * at once exits 1 naming it. Exits 1 on out of memory. */
void tgx_run_init(tgx_run *r, const tgx_run_config *c);
/* Frees the run, removes its checkpoint lock, and exits 1 when stdout lost
 * output (a reader that left: SIGPIPE is ignored while training). */
void tgx_run_free(tgx_run *r);

/* The checkpoint, for the program's own registrations. */
tg_trainckpt *tgx_run_ckpt(tgx_run *r);
/* Registers the running loss under the names a program's checkpoints use:
 * the sum and its weight ("epoch_loss", "epoch_images"), or the moving
 * average ("last_loss", "recent_loss"); NULL names are left out. Exits 1
 * on out of memory. */
void tgx_run_register_loss(tgx_run *r, const char *sum, const char *weight, const char *last,
                           const char *recent);

/* --resume: loads everything registered (all or nothing); exits 1 naming
 * the file and field. No-op without --resume. */
void tgx_run_resume(tgx_run *r);
/* "PROG: already at step N of --steps M: nothing to train" (or the
 * --seconds form) when a resumed run has nothing left by steps or seconds;
 * returns whether it printed. */
int tgx_run_say_nothing_left(const tgx_run *r);

/* --log FILE with this header; a resumed run appends to its log. Exits 1. */
void tgx_run_open_log(tgx_run *r, const char *header);

/* Catches SIGINT/SIGTERM to the program's end (a second one ends it; the
 * first stops training, and the final checkpoint, evaluation and saves
 * still run), ignores SIGPIPE (a write to a pipe whose reader left fails
 * and is reported) and starts the progress line. With ranks (collective): checks that every rank holds the
 * same parameters and loop state; exits 1 naming the rank that differs. */
void tgx_run_start(tgx_run *r);
/* Why training stops before the next step. */
tgx_stop tgx_run_stop(const tgx_run *r);

/* Marks the start of a step (its time counts as training). */
void tgx_run_begin_step(tgx_run *r);
/* Ends the step whose gradient is in the parameters: reduce hook, the
 * guard, clipping, the verdict (agree hook), then the update at lr (NAN:
 * keep the optimizer's), counts the step, adds weight x loss to the
 * running loss and tokens to the throughput. A stopping verdict exits 1
 * here: no update, no checkpoint, no --save. */
tgx_verdict tgx_run_end_step(tgx_run *r, double loss, double lr, uint64_t weight,
                             double tokens);
/* Time spent on training outside a step (an epoch's batch order). */
void tgx_run_add_time(tgx_run *r, double seconds);
/* State the program changed outside a step (an epoch ended): a final
 * checkpoint is due. */
void tgx_run_touch(tgx_run *r);
/* An epoch ended: counts it, clears the sum of the running loss. */
void tgx_run_end_epoch(tgx_run *r);
void tgx_run_reset_loss(tgx_run *r);
/* The mean of the running loss sum (NAN when empty). */
double tgx_run_mean_loss(const tgx_run *r);
double tgx_run_tokens_per_second(const tgx_run *r);

/* Evaluation every n steps (0: never): whether it is due after this step. */
int tgx_run_eval_due(const tgx_run *r, uint64_t n);
/* Keep the best model by a validation metric: 1 when metric beats *best
 * (larger is better when higher_better), and *best is updated. A NAN
 * metric never wins. */
int tgx_run_keep_best(double metric, double *best, int higher_better);

/* The kept model's file (--save) records its metric, the step it was kept
 * at and the run's configuration hash (tg_trainckpt_config_hash: its model
 * flags and the hash of its data), as metadata kept.<metric>, kept.step and
 * kept.run: a run stopped after keeping a model and before its next
 * checkpoint leaves a file better than the checkpoint knows, and a resumed
 * run that compared against the checkpoint's best alone replaced it with a
 * worse one (a BLEU 35 model by one of 0.05 at another --lr).
 * tgx_kept_meta_make fills km for the model of r's run at r's step with
 * that metric (km->kv point into km). */
#define TGX_KEPT_KEYS 3
typedef struct tgx_kept_meta {
    char key[48], value[32], step[24], run[24];
    tg_ckpt_meta kv[TGX_KEPT_KEYS];
} tgx_kept_meta;
void tgx_kept_meta_make(tgx_kept_meta *km, const tgx_run *r, const char *metric, double value);
/* On a resumed run (after tgx_run_resume): when the file at path holds a
 * model of this run's configuration kept at a step after the checkpoint's,
 * with a metric that beats *best, its metric and step become *best and
 * *best_step, and a line on stderr says so; a file without them, of
 * another configuration, or from before the checkpoint, changes nothing.
 * Every rank takes rank 0's answer. The program must then tell its own
 * kept model from this one (the steps may coincide). */
void tgx_run_adopt_kept(tgx_run *r, const char *path, const char *metric, int higher_better,
                        double *best, uint64_t *best_step);

/* Around a save of path (tg_checkpoint_save: a temporary renamed over
 * path) after tgx_run_start: a second SIGINT or SIGTERM during it removes
 * the temporary as it ends the program, and path is left as it was (or
 * is the new file, the rename done). tgx_run_save_checkpoint uses them;
 * a program's --save may too. */
void tgx_write_begin(const char *path);
void tgx_write_end(void);
/* For a program that does not train (seq2seq --translate): SIGINT and
 * SIGTERM end it at once, as their default action does, removing the
 * temporary of a write under way (tgx_write_begin) first. */
void tgx_interrupts_end_at_once(void);

/* A checkpoint every --every steps (when that step was just run). */
void tgx_run_periodic_checkpoint(tgx_run *r);
void tgx_run_save_checkpoint(tgx_run *r);
/* The run's end: "interrupted at step N", the
 * final checkpoint (unless the last save holds this state), "checkpoint
 * FILE at step N", and "N of M steps skipped as not finite". After a stop
 * for the log (TGX_STOP_LOG: the metrics of the steps to come would be
 * lost) it says "--log FILE: write error: REASON; training stopped at step
 * N" (and that the checkpoint is kept, to --resume with another log); the
 * program then writes its --save and exports as at any stop, and the
 * log's close (tg_csv_close) exits 1. */
void tgx_run_finish(tgx_run *r);

/* ------------------------------------------------------------------ arenas */

/* Step arenas sized by measurement, not by formulas: runs probe(ctx, t)
 * once on a tape whose arena has room for anything this machine could
 * hold (a quarter of its memory, at most 8 GiB, at most half the address
 * space an RLIMIT_AS leaves; only the pages the probe touches are ever
 * backed), and returns the probe's high water plus 1/8
 * and 1 MiB of slack. The probe should run the largest step the arena
 * will see (the longest batch; training or decoding). 0 when not even a
 * 64 MiB tape could be made; TGX_ARENA_TOO_BIG when the probe's step
 * overflows that room (tg_tape_on_overflow: the probe is cut short there,
 * so it must hold no heap memory of its own, nor leave state it needs
 * restored). A later step that needs more still stops with the engine's
 * overflow message naming the bytes. */
size_t tgx_arena_measure(void (*probe)(void *ctx, tg_tape *t), void *ctx);
/* n ids for a probe's step, from first .. vocab-1 (first < vocab): one
 * short of as many distinct ones as n positions or the vocabulary can hold
 * (at least one), cycling. A step fed by ids projects each distinct one
 * (tg_rnn_forward), so a probe of one repeated id measured one row where a
 * real batch takes hundreds: charlm with 3000 characters and --embed 1024
 * aborted on its arena in the first step. One short of all: a batch with a
 * repeated id gathers its projected rows for every position (cells without
 * step_rows, the attention decoder), the largest step; all distinct reads
 * them in place, larger by one row only for the LSTM. n: the positions the
 * network reads, not the targets after them. */
void tgx_probe_ids(int *ids, size_t n, int first, int vocab);
#define TGX_ARENA_TOO_BIG SIZE_MAX
/* For a tgx_arena_measure result that is no size (0, TGX_ARENA_TOO_BIG):
 * 1 with a one-line reason in err that ends "lower " and the flags in
 * lower; else 0. */
int tgx_arena_problem(size_t bytes, const char *lower, char *err, size_t errlen);


/* ------------------------------------------------------------------ memory */

/* What a run holds at once, in bytes, worked out before it trains. */
typedef struct tgx_memory_plan {
    size_t params; /* the master parameters */
    size_t grads;  /* the master's gradient and each shard replica's */
    size_t optim;  /* the optimizer's state */
    size_t arenas; /* the step arenas: every shard's tape, the evaluation tape(s) */
    size_t data;   /* the training data the program holds (0: not counted) */
} tgx_memory_plan;

/* The plan of numel parameters trained over `shards` replicas by opt (NULL:
 * no training: no gradients, no optimizer state), with arenas bytes of
 * step arenas. */
tgx_memory_plan tgx_memory_plan_of(size_t numel, int shards, const tg_optim *opt, size_t arenas);
size_t tgx_memory_plan_total(const tgx_memory_plan *p);
/* The same before anything is built (building a model too large to train
 * would already take much of the memory): the optimizer's state counted
 * from its config (Adam/AdamW: 2 arrays, SGD with momentum: 1, plain: 0). */
tgx_memory_plan tgx_memory_plan_config(size_t numel, int shards, const tg_optim_config *oc,
                                       size_t arenas);
/* The parameters of a recurrent stack of a built-in cell, at their most:
 * each layer's W_ih, W_hh, b_ih, b_hh (gates x hidden rows) and a row of
 * hidden values in each of the 4 extra slots (peephole uses 3); a user
 * cell's larger extras are not counted. */
size_t tgx_stack_numel(const tg_cell_kind *kind, int in, int hidden, int layers);
/* The weights alone of that stack (gates x hidden x (in + hidden) a layer):
 * a floor of its parameters, whatever the cell stores besides. */
size_t tgx_stack_weights(const tg_cell_kind *kind, int in, int hidden, int layers);

/* Whether the model a file's metadata describes may be built before any of
 * its tensors is read: 0, or -1 with "PATH: ..." in err. A small crafted
 * file can describe a model of many GiB, which building allocates with its
 * gradients and touches until the kernel kills the process; so the file's
 * tensors must hold at least floor values (the model's parameters counted
 * at their fewest: the metadata and the tensors then may belong together),
 * and the parameters and gradients, bound values each (counted at their
 * most), must fit in the memory available. what names the size for the
 * message ("embed 8, hidden 8192, layers 2, vocabularies 50 and 60"). */
int tgx_model_meta_fits(const char *prog, const tg_checkpoint *ck, const char *path,
                        size_t floor, size_t bound, const char *what, char *err, size_t errlen);

/* n bytes for a message: "12.0 KiB", "123.4 MiB" or "16.3 GiB". */
void tgx_format_bytes(size_t n, char *buf, size_t cap);

/* Memory a run may use, in bytes: TG_MAX_MEMORY from the environment when
 * set (bytes, or with a K, M or G suffix: a cap a user or a test sets),
 * else MemAvailable of /proc/meminfo (sysconf(_SC_AVPHYS_PAGES) without
 * it), lowered to the cgroup's memory.max less its memory.current and to
 * the address-space limit (RLIMIT_AS: ulimit -v, h_vmem) less the address
 * space mapped. Its source is written to src ("TG_MAX_MEMORY",
 * "MemAvailable", ...). 0 when unknown. A malformed TG_MAX_MEMORY exits 2
 * naming it. */
size_t tgx_memory_available(const char *prog, char *src, size_t cap);

/* Refuses, before training, a plan that does not fit, with exit 1:
 *   PROG: this configuration needs 16.3 GiB (parameters 4.0 GiB, gradients
 *   8.0 GiB, optimizer state 8.0 GiB, step arenas 312.0 MiB) but 11.2 GiB
 *   is available (MemAvailable): lower --hidden, --layers or --batch
 * ("step arenas not measured yet" when p->arenas is 0; ", training data
 * X" after the arenas when p->data is set). lower names the flags that
 * shrink it. No-op when nothing is known. */
void tgx_memory_check(const char *prog, const tgx_memory_plan *p, const char *lower);

/* Refuses, before the memory is taken, data that would not fit, with exit 1:
 *   PROG: WHAT takes 679.5 MiB (HOW) but 100.0 MiB is available
 *   (TG_MAX_MEMORY): ADVICE
 * what: "ko.txt: holding this text", "learning the pieces from 400000
 * pairs"; need: the bytes the program will hold for it; how says how they
 * were counted. Linux grants large allocations it cannot back and kills the
 * process when they are touched, so a failed malloc alone would not say it.
 * No-op when nothing is known. */
void tgx_memory_check_data(const char *prog, const char *what, size_t need, const char *how,
                           const char *advice);

#ifdef __cplusplus
}
#endif
#endif
