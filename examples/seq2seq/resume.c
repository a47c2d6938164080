/* seq2seq's training checkpoints (see resume.h): inheritance of settings
 * on --resume, the checkpoint path's start-up checks, the configuration. */
#include "resume.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define PROG "seq2seq"

/* A resume must match these: they fix the model's shape, the training
 * pairs, what the data position points at, what the optimizer state means
 * and (seed) the --valid-frac split and every shard's dropout stream. The
 * data flags are in the file only for the corpus they apply to. */
static const char *const config_flags[] = {
    "cell",  "embed",       "hidden", "layers",     "dropout",    "feed-context",
    "reverse", "corpus-seed", "pairs", "lowercase", "max-tokens", "valid-frac",
    "min-count", "batch",   "shards", "optim",      "seed"};
/* Recorded and inherited, but a resume may change them. The stopping
 * rules (epochs, steps, seconds) are limits that all apply, each inherited
 * on its own. */
static const char *const setting_flags[] = {"lr", "clip", "epochs", "steps", "seconds",
                                            "test-pairs"};

#define COUNT(a) (sizeof(a) / sizeof((a)[0]))

int s2s_given(const s2s_cmdline *c, const char *name)
{
    return tg_cli_given(c->argc, c->argv, c->flags, c->n, name);
}

/* ------------------------------------------------------------------ inheritance */

static void check_program(const tg_checkpoint *c, const char *path)
{
    const char *prog = tg_checkpoint_meta(c, "trainckpt.program");
    if (!tg_checkpoint_meta(c, "trainckpt.version"))
        tg_cli_die(PROG, "%s: not a training checkpoint (no 'trainckpt.version' metadata): "
                   "--resume takes a file written by --checkpoint (a --save file goes to --load)",
                   path);
    if (!prog || strcmp(prog, PROG) != 0)
        tg_cli_die(PROG, "%s: a training checkpoint of '%.40s', not of '%s'", path,
                   prog ? prog : "(unknown program)", PROG);
}

/* "--flag=<the file's value>" into keep, when the file has prefix+flag. */
static void inherit(const tg_checkpoint *c, const char *prefix, const char *flag,
                    s2s_inherited *keep)
{
    char key[96];
    snprintf(key, sizeof key, "%s%s", prefix, flag);
    const char *v = tg_checkpoint_meta(c, key);
    if (!v) return; /* not this corpus's, or missing: the load names it */
    size_t len = strlen(flag) + strlen(v) + 4;
    char *arg = malloc(len);
    if (!arg || keep->n >= S2S_MAX_FLAGS) tg_cli_die(PROG, "out of memory");
    snprintf(arg, len, "--%s=%s", flag, v);
    keep->arg[keep->n++] = arg;
}

/* Inherits every flag of group (n names) when the command line gives none
 * of them: they are one choice. */
static void inherit_group(const tg_checkpoint *c, const s2s_cmdline *cl, const char *const *group,
                          size_t n, s2s_inherited *keep)
{
    for (size_t i = 0; i < n; i++)
        if (s2s_given(cl, group[i])) return;
    for (size_t i = 0; i < n; i++) inherit(c, "info.", group[i], keep);
}

void s2s_inherit_settings(const char *path, s2s_cmdline *cl, s2s_inherited *keep)
{
    static const char *const data[] = {"train", "test"};
    char err[1024];
    keep->n = 0;
    tg_checkpoint *c = tg_checkpoint_open(path, err, sizeof err);
    if (!c) tg_cli_die(PROG, "%s", err);
    check_program(c, path);
    for (size_t i = 0; i < COUNT(config_flags); i++)
        if (!s2s_given(cl, config_flags[i])) inherit(c, "config.", config_flags[i], keep);
    for (size_t i = 0; i < COUNT(setting_flags); i++)
        if (!s2s_given(cl, setting_flags[i])) inherit(c, "info.", setting_flags[i], keep);
    inherit_group(c, cl, data, COUNT(data), keep);
    tg_checkpoint_close(c);
    /* parsed like a command line: the same types, ranges and choices */
    char *argv[S2S_MAX_FLAGS + 1];
    argv[0] = cl->argv[0];
    memcpy(argv + 1, keep->arg, (size_t)keep->n * sizeof *argv);
    if (tg_cli_parse_args(keep->n + 1, argv, cl->flags, cl->n, NULL, err, sizeof err) != TG_CLI_OK)
        tg_cli_die(PROG, "%s: a stored setting is not valid: %s", path, err);
}

void s2s_inherited_free(s2s_inherited *keep)
{
    for (int i = 0; i < keep->n; i++) free(keep->arg[i]);
    keep->n = 0;
}

/* ------------------------------------------------------------------ configuration */

static uint64_t fnv1a(uint64_t h, const char *s, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        h ^= (unsigned char)s[i];
        h *= 0x100000001b3ull;
    }
    return h;
}

/* The training pairs as trained on (after reading, filtering, lowercasing
 * and the --valid-frac split), in order: an edited file with the same
 * vocabularies would move the data position. */
static uint64_t pairs_hash(const s2s_pairs *p)
{
    uint64_t h = 0xcbf29ce484222325ull;
    for (size_t i = 0; i < p->n; i++) {
        h = fnv1a(h, p->src[i], strlen(p->src[i]) + 1); /* the NUL separates the sides */
        h = fnv1a(h, p->tgt[i], strlen(p->tgt[i]) + 1);
    }
    return h;
}

static int info_double(tg_trainckpt *ck, const char *key, double x)
{
    char s[40];
    snprintf(s, sizeof s, "%.17g", x);
    return tg_trainckpt_info(ck, key, s);
}

static int info_int(tg_trainckpt *ck, const char *key, long long x)
{
    char s[32];
    snprintf(s, sizeof s, "%lld", x);
    return tg_trainckpt_info(ck, key, s);
}

/* The corpus and the flags that shape its pairs. */
static int register_corpus(tg_trainckpt *ck, const s2s_options *o)
{
    char seed[32];
    snprintf(seed, sizeof seed, "%llu", (unsigned long long)o->corpus_seed);
    int bad = tg_trainckpt_config(ck, "corpus", o->train ? "tsv" : "built-in");
    if (!o->train)
        bad = bad || tg_trainckpt_config(ck, "corpus-seed", seed) ||
              tg_trainckpt_config_int(ck, "pairs", o->pairs);
    else
        bad = bad || tg_trainckpt_config_int(ck, "lowercase", o->lowercase) ||
              tg_trainckpt_config_int(ck, "max-tokens", o->max_tokens) ||
              (!o->test && tg_trainckpt_config_double(ck, "valid-frac", o->valid_frac));
    return bad || tg_trainckpt_config_int(ck, "min-count", o->min_count);
}

static int register_settings(tg_trainckpt *ck, const s2s_options *o)
{
    int bad = info_double(ck, "lr", o->lr) || info_double(ck, "clip", o->clip) ||
              info_int(ck, "epochs", o->epochs) || info_int(ck, "steps", o->steps) ||
              info_double(ck, "seconds", o->seconds);
    if (!o->train) return bad || info_int(ck, "test-pairs", o->test_pairs);
    return bad || tg_trainckpt_info(ck, "train", o->train) ||
           (o->test && tg_trainckpt_info(ck, "test", o->test));
}

/* The words of v from id 4 on, space-separated (a word holds no white
 * space): one line, also in a mismatch message. */
static char *vocab_words(const s2s_vocab *v)
{
    char *s = s2s_vocab_join(v);
    for (char *p = s; p && *p; p++)
        if (*p == '\n') *p = ' ';
    return s;
}

int s2s_register_config(tg_trainckpt *ck, const s2s_options *o, const s2s_config *m,
                        const s2s_vocab *src, const s2s_vocab *tgt, const s2s_pairs *train)
{
    char seed[32], data[80];
    char *sv = vocab_words(src), *tv = vocab_words(tgt);
    snprintf(seed, sizeof seed, "%llu", (unsigned long long)o->seed);
    snprintf(data, sizeof data, "%zu pairs, fnv1a %016llx", train->n,
             (unsigned long long)pairs_hash(train));
    /* in the order a mismatch is reported: the model, the corpus, its
     * vocabularies, its pairs (the same vocabularies, edited pairs), the
     * batches and the optimizer */
    int bad = !sv || !tv || tg_trainckpt_config(ck, "cell", m->cell->name) ||
              tg_trainckpt_config_int(ck, "embed", m->embed) ||
              tg_trainckpt_config_int(ck, "hidden", m->hidden) ||
              tg_trainckpt_config_int(ck, "layers", m->layers) ||
              tg_trainckpt_config_double(ck, "dropout", m->dropout) ||
              tg_trainckpt_config_int(ck, "feed-context", m->feed_context) ||
              tg_trainckpt_config_int(ck, "reverse", m->reverse_source) ||
              register_corpus(ck, o) || tg_trainckpt_config(ck, "src-vocab", sv) ||
              tg_trainckpt_config(ck, "tgt-vocab", tv) || tg_trainckpt_config(ck, "data", data) ||
              tg_trainckpt_config_int(ck, "batch", o->batch) ||
              tg_trainckpt_config_int(ck, "shards", o->shards) ||
              tg_trainckpt_config(ck, "optim", o->optim) || tg_trainckpt_config(ck, "seed", seed) ||
              register_settings(ck, o);
    free(sv);
    free(tv);
    return bad ? -1 : 0;
}
