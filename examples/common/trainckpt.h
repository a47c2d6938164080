/* Training checkpoints: everything a run needs to continue exactly where it
 * stopped, in one safetensors file written atomically (tg_checkpoint.h).
 *
 * A run registers, once, the pieces of state it owns — parameters, the
 * optimizer, random generators, its data position, extra arrays (a carried
 * hidden state) and its configuration — then saves every N steps, and on
 * --resume loads them all back. Resuming is exact: N steps, save, load in a
 * new process, M more steps gives bitwise the parameters of N+M steps in
 * one run, as long as every piece of state the training loop reads is
 * registered (tests/reliability/test_trainckpt.c checks this per optimizer;
 * kill_test.c SIGKILLs a training process at random moments and resumes it).
 *
 *   tg_trainckpt *ck = tg_trainckpt_new("charlm", params, opt);   // after building model+opt
 *   tg_trainckpt_config(ck, "cell", cell);           // must match to resume
 *   tg_trainckpt_config_int(ck, "hidden", hidden);
 *   tg_trainckpt_config(ck, "vocab", vocab_string);  // e.g. tg_vocab_format()
 *   tg_trainckpt_info(ck, "lr", lr_text);            // recorded, may change on resume
 *   tg_trainckpt_rng(ck, "data", &data_rng);         // every generator the loop draws from
 *   tg_trainckpt_rng(ck, "dropout", &drop_rng);
 *   tg_trainckpt_u64(ck, "step", &step);             // loop counter, data position ...
 *   tg_trainckpt_u64(ck, "batch_cursor", &cursor);
 *   tg_trainckpt_f64(ck, "loss_avg", &loss_avg);     // running averages the loop keeps
 *   tg_trainckpt_array(ck, "tbptt.h", sb.h, n);      // carried state (tg_state_buf)
 *   if (resume && tg_trainckpt_load(ck, resume, err, sizeof err) != 0)
 *       tg_cli_die(prog, "%s", err);                 // exit 1; nothing was modified
 *   for (; step < steps; ) {
 *       ... one training step; step++ ...
 *       if (tg_trainckpt_guard(ck, loss, step, err, sizeof err) != 0)
 *           tg_cli_die(prog, "%s", err);             // non-finite: stop before saving
 *       if (every > 0 && step % every == 0 &&
 *           tg_trainckpt_save(ck, ckpt_path, err, sizeof err) != 0)
 *           tg_cli_die(prog, "%s", err);             // previous checkpoint left intact
 *   }
 *   tg_trainckpt_free(ck);
 *
 * Registration stores pointers: save reads the variables' current values,
 * load writes into them. Register before loading, and keep the variables
 * alive as long as ck. Names are copied.
 *
 * Load is all or nothing. It checks, before changing anything: the file
 * (every offset, size, dtype, value, via tg_checkpoint_open), that it is a
 * training checkpoint of the same program, that every registered config key
 * is in the file with the same value (message: "FILE: config 'hidden' is
 * 256 in the checkpoint, 128 in this run"; a file without a key of
 * tg_trainckpt_config_unless holds its absent value), that every rng, counter, value
 * and array is present and well formed, the parameters' names and shapes
 * and the optimizer's kind. Only then are values copied. On error the
 * message names the file and the field, and nothing registered is touched.
 *
 * Save refuses (and leaves the previous file intact) when a value is NaN or
 * infinite. It also removes "<path>.tmp.<pid>" files that a killed earlier
 * run left behind (only those whose process is gone).
 *
 * File layout (readable by any safetensors tool): the parameters under
 * their names; the optimizer state and registered arrays as 1-D extras
 * ("optim.*", "state.<name>"); metadata strings "trainckpt.version",
 * "trainckpt.program", "optim.kind", "optim.steps", "config.<key>",
 * "info.<key>", "rng.<name>" (64 hex digits), "u64.<name>" (decimal),
 * "f64.<name>" (hexadecimal float, exact). */
#ifndef TG_EXAMPLES_TRAINCKPT_H
#define TG_EXAMPLES_TRAINCKPT_H

#include <stddef.h>
#include <stdint.h>

#include "cli.h"
#include "text.h" /* tg_fnv1a: the identity of a run's data */
#include "tapegrad.h"
#include "tg_checkpoint.h"
#include "tg_optim.h"

#ifdef __cplusplus
extern "C" {
#endif

#define TG_TRAINCKPT_VERSION "1"

typedef struct tg_trainckpt tg_trainckpt;

/* program names the run ("charlm"); a checkpoint of another program is
 * refused. opt may be NULL (no optimizer state). NULL on out of memory. */
tg_trainckpt *tg_trainckpt_new(const char *program, tg_params *params, tg_optim *opt);
void tg_trainckpt_free(tg_trainckpt *ck);

/* Registration. Each returns 0, or -1 on out of memory, an empty or
 * repeated name, or a name longer than 64 characters or with characters
 * outside [A-Za-z0-9_.-]. */
int tg_trainckpt_config(tg_trainckpt *ck, const char *key, const char *value); /* copied now */
int tg_trainckpt_config_int(tg_trainckpt *ck, const char *key, long long value);
int tg_trainckpt_config_double(tg_trainckpt *ck, const char *key, double value);
int tg_trainckpt_info(tg_trainckpt *ck, const char *key, const char *value); /* not checked */
/* A config that files leave out at the value absent (a feature added to a
 * program later: seq2seq's "attention" is not written when "none"): not
 * written, nor hashed, at absent, and a file without it holds absent. So
 * a resume that drops the feature, or adds it, is a config mismatch
 * ("config 'attention' is 'general' in the checkpoint, 'none' in this
 * run"), and the files of either version load alike. */
int tg_trainckpt_config_unless(tg_trainckpt *ck, const char *key, const char *value,
                               const char *absent);
/* FNV-1a of every config item (key and value) in registration order: two
 * runs with the same model flags and the same data (the programs record
 * their text's, pairs' or images' hash as a config) hash alike. */
uint64_t tg_trainckpt_config_hash(const tg_trainckpt *ck);
/* The identity of the file tg_trainckpt_load took (its metadata, settings
 * included, and its data checksum, which covers the parameters and the
 * optimizer's state): the ranks of a resumed run compare it. 0 when none. */
uint64_t tg_trainckpt_loaded_hash(const tg_trainckpt *ck);
int tg_trainckpt_info_int(tg_trainckpt *ck, const char *key, long long value);
int tg_trainckpt_info_double(tg_trainckpt *ck, const char *key, double value); /* %.17g */
int tg_trainckpt_rng(tg_trainckpt *ck, const char *name, tg_rng *r);
int tg_trainckpt_u64(tg_trainckpt *ck, const char *name, uint64_t *v);
int tg_trainckpt_f64(tg_trainckpt *ck, const char *name, double *v);
int tg_trainckpt_array(tg_trainckpt *ck, const char *name, tg_real *data, size_t numel);

/* Writes everything to path atomically. 0, or -1 with a message in err. */
int tg_trainckpt_save(tg_trainckpt *ck, const char *path, char *err, size_t errlen);
/* Restores everything from path (see above). 0, or -1 with a message. */
int tg_trainckpt_load(tg_trainckpt *ck, const char *path, char *err, size_t errlen);

/* A config value stored in a training checkpoint, without loading it (to
 * rebuild a model of the right shape before tg_trainckpt_load, or to print
 * it). Copies at most outlen-1 bytes into out. 0, or -1 with a message
 * (file unreadable or invalid, not a training checkpoint, key absent). */
int tg_trainckpt_read_config(const char *path, const char *key, char *out, size_t outlen,
                             char *err, size_t errlen);

/* Checks, before any training, that a --checkpoint path can be written: not
 * a directory, its directory exists and takes a new file (a probe file is
 * created and removed), and it does not overwrite an existing checkpoint
 * unless that file is the --resume one (resume may be NULL). 0, or -1 with
 * a message starting "--checkpoint PATH". On a launcher's rank above 0 it
 * checks nothing: rank 0 writes the file (tg_cli_launcher_rank). */
int tg_trainckpt_check_path(const char *path, const char *resume, char *err, size_t errlen);

/* Whether path is a training checkpoint, of any program and version: its
 * safetensors header holds "trainckpt.version" metadata. Only the header is
 * read. 0 for anything else, and for what cannot be told: no file, a
 * directory, a pipe or device (opened without waiting for a writer), a
 * model file, garbage, a file that cannot be read. */
int tg_trainckpt_is_checkpoint(const char *path);

/* A file of a run: the flag that names it, its path (NULL: not given). */
typedef struct tg_run_file {
    const char *flag, *path;
} tg_run_file;

#define TG_RUN_FILES_MAX 12

/* The files a training run reads its state from and writes to (NULL: not
 * given), and the other files it writes (--export-torch, ...) and reads
 * (--text, --import-torch, data files): lists ended by an empty slot. */
typedef struct tg_run_files {
    const char *checkpoint, *resume, *load, *save, *log;
    tg_run_file writes[TG_RUN_FILES_MAX], reads[TG_RUN_FILES_MAX];
} tg_run_files;

/* Appends {flag, path} to a list of tg_run_files (path NULL: nothing);
 * the lists hold TG_RUN_FILES_MAX - 1 files. */
void tg_run_files_add(tg_run_file *list, const char *flag, const char *path);

/* Usage errors among them (exit 2, "prog: ..."): --resume with --load,
 * --every without --checkpoint, --checkpoint and --save naming one file. */
void tg_trainckpt_check_flags(const char *prog, const tg_cmdline *cl, const tg_run_files *f);
/* Refuses (exit 2) an output that is another output's file, or an input's
 * (tg_cli_same_file): "--log r.tck would overwrite --resume r.tck". The
 * two pairs a run means to share are let through: --checkpoint may be
 * the --resume file (the run goes on in it), --save the --load file (the
 * model is trained on in place). Then refuses (exit 2) an output other
 * than --checkpoint that names an existing training checkpoint
 * (tg_trainckpt_is_checkpoint), another run's or the --load file: "--save
 * r.tck: that file is a training checkpoint (continue it with --resume);
 * --save would replace it ..."; and (exit 2) an output that writes no
 * model (--log, --attention-map: any but --checkpoint, --save and
 * --export-torch) naming an existing model file (a safetensors file, any
 * run's or tool's): "--log m.st: that file is a model ...". */
void tg_run_files_check_distinct(const char *prog, const tg_run_files *f);
/* Before any work: tg_run_files_check_distinct, then (exit 1 naming the
 * flag) --checkpoint (tg_trainckpt_check_path), --save (replaced
 * atomically) and --log (written in place) can be written
 * (tg_cli_check_output). */
void tg_trainckpt_check_outputs(const char *prog, const tg_run_files *f);

/* ------------------------------------------------------------------ --resume: inherited settings */

/* Which flags --resume FILE takes from FILE when the command line leaves
 * them out, each stored by the run's registration as "config.<flag>" or
 * "info.<flag>". Lists end with NULL; a NULL list is empty. */
typedef struct tg_resume_flags {
    const char *const *config;   /* "config.<flag>": must match, so a resume inherits them */
    const char *const *settings; /* "info.<flag>": recorded, inherited, free to change */
    const char *const *group;    /* "info.<flag>": one choice (--steps and --seconds),
                                  * inherited all together when none of them is given */
    const char *const *optional; /* "info.<flag>": inherited when FILE has it (a path the
                                  * run was given, absent when it used the default) */
    int required; /* a config, settings or group flag missing from FILE: exit 1
                   * "not written by this version of PROG"; 0: left out (the load
                   * names what it misses) */
} tg_resume_flags;

/* Settings taken from a checkpoint, as "--flag=value" arguments (the
 * options point into them): freed by tg_inherited_free. */
typedef struct tg_inherited {
    char *arg[TG_CLI_MAX_FLAGS + 1];
    int n;
} tg_inherited;

/* --resume FILE: every flag of which (see tg_resume_flags) that cl leaves
 * out is taken from FILE and parsed over cl's flag table as if it had been
 * given (the same types, ranges and choices), into the options. Exits 1
 * naming FILE when it is unreadable, not a training checkpoint of program
 * prog, lacks a required flag or holds one that does not parse. */
void tg_trainckpt_inherit(const char *prog, const char *path, const tg_resume_flags *which,
                          const tg_cmdline *cl, tg_inherited *keep);
/* A data file (or folder) that --resume took from checkpoint ckpt cannot be
 * read: exits 1 with "CKPT: cannot read the run's WHAT (taken from the
 * checkpoint): REASON; give USAGE with the run's WHAT" (usage: "--text
 * FILE"). */
_Noreturn void tg_trainckpt_die_inherited(const char *prog, const char *ckpt, const char *what,
                                          const char *usage, const char *reason);
/* Whether --flag was taken from the checkpoint. */
int tg_inherited_has(const tg_inherited *keep, const char *flag);
void tg_inherited_free(tg_inherited *keep);


/* What is not finite, without a verdict: 0 when loss, every parameter
 * gradient and every parameter value are finite, else -1 with "step N:
 * loss is nan", "step N: gradient of 'w'[37] is not finite" or "step N:
 * parameter value 5 is not finite" in err. */
int tg_trainckpt_nonfinite(const tg_trainckpt *ck, double loss, uint64_t step, char *err,
                           size_t errlen);
/* Only the parameter values' part of it: for a caller that knows the loss
 * and the gradients are finite (a finite gradient norm). */
int tg_trainckpt_nonfinite_values(const tg_trainckpt *ck, uint64_t step, char *err,
                                  size_t errlen);

/* Stops a run at the first non-finite loss or gradient: 0 when loss and
 * every parameter gradient are finite, else -1 with "step N: loss is nan"
 * or "step N: gradient of 'w'[37] is inf" (plus "; last checkpoint kept")
 * in err. Call it after backward, before the optimizer step and the save. */
int tg_trainckpt_guard(const tg_trainckpt *ck, double loss, uint64_t step, char *err,
                       size_t errlen);

#ifdef __cplusplus
}
#endif
#endif
