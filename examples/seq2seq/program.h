/* The seq2seq program's pieces beside main.c: its command line
 * (options.c) and its data as the trainer reads it, pairs as id sequences
 * and length-bucketed batches (batches.c). */
#ifndef S2S_PROGRAM_H
#define S2S_PROGRAM_H

#include <stddef.h>
#include <stdint.h>

#include "decode.h"
#include "model.h"
#include "pairs.h"
#include "pieces.h"
#include "resume.h"

#define S2S_PROG "seq2seq"
/* --epochs's largest value, set when only --seconds or --steps limits a run */
#define S2S_EPOCHS_UNLIMITED 1000000
/* --dropout's default on a user's pairs: without it a model of the default
 * size learns the de-en recipe's 18 598 pairs by heart within 5 epochs and
 * its test BLEU stops rising (examples/seq2seq/README.md, "Choosing the
 * defaults") */
#define S2S_DROPOUT_TRAIN 0.3

/* Parses argv into o (defaults first; --resume's settings inherited into
 * inh); exits 2 on a bad command line. *first: the first sentence of
 * --translate (argc if none). */
void s2s_parse_options(int argc, char **argv, s2s_options *o, tg_cmdline *c, tg_inherited *inh,
                       int *first);
/* The defaults that depend on the data: --attention, --embed, --subwords
 * (-1: 8000 with --train, else 0) and --dropout (-1: S2S_DROPOUT_TRAIN
 * with --train, else 0), then --max-tokens and --max-len (0: 60 words, 200
 * pieces). Called by s2s_parse_options, or with --load once the model is
 * read (o->subwords and o->dropout set from it). */
void s2s_resolve_defaults(s2s_options *o);
/* The run's checkpoint and output files. */
tg_run_files s2s_run_files(const s2s_options *o);

/* Pairs as id sequences. */
typedef struct s2s_id_set {
    size_t n;
    int **src, **tgt;
    int *src_len, *tgt_len;
    int max_src, max_tgt;
    long tokens; /* source + target tokens */
} s2s_id_set;

/* Encodes pairs; target words the vocabulary lacks become tgt_oov (<unk>
 * for training, -1 for references so they never match). 0, or -1 on out
 * of memory. */
int s2s_encode_set(s2s_id_set *s, const s2s_pairs *p, const s2s_vocab *vs, const s2s_vocab *vt,
                   int tgt_oov);
void s2s_free_set(s2s_id_set *s);
/* The memory s holds (s2s_heap_bytes). */
size_t s2s_id_set_bytes(const s2s_id_set *s);
/* The share of s's target (or source) tokens that are <unk>. */
double s2s_unknown_share(const s2s_id_set *s, int target);

/* The training and test pairs of the run (the built-in corpus, or --train
 * and --test / --valid-frac); exits 1 naming the file, or the line where
 * the pairs outgrow their share of the memory (half, a quarter with
 * subwords: the rest is for what training makes of them). from_ckpt:
 * --resume's checkpoint when it gave the pair files, else NULL. */
void s2s_load_pairs(const s2s_options *o, const char *from_ckpt, int subwords, s2s_pairs *train,
                    s2s_pairs *test, s2s_tokenize_options *tok);
/* The longest path of a file seq2seq writes beside another's name. */
#define S2S_PATH_MAX 4096
/* --write-corpus DIR's two files, DIR/train.tsv and DIR/test.tsv, into
 * train and test; a DIR empty or too long for them (cut short, a name
 * could be another file's) exits 2. */
void s2s_write_corpus_paths(const char *dir, char train[S2S_PATH_MAX], char test[S2S_PATH_MAX]);
/* --write-corpus DIR. */
void s2s_write_corpus(const char *dir, const s2s_pairs *train, const s2s_pairs *test);

typedef struct s2s_keyed {
    uint64_t key;
    size_t index;
} s2s_keyed;

/* Batches of similar lengths in a random order, one epoch at a time. */
typedef struct s2s_batcher {
    size_t n, nb, B;
    size_t *order;  /* pair indices, grouped by length */
    size_t *starts; /* first index into order of each batch, in training order */
    s2s_keyed *tmp;
} s2s_batcher;

int s2s_batcher_init(s2s_batcher *b, size_t n, int B);
void s2s_batcher_free(s2s_batcher *b);
/* Buckets by length: sort by (source length, target length, random), cut
 * into batches of similar length, and shuffle the batches. */
void s2s_batcher_epoch(s2s_batcher *b, const s2s_id_set *s, tg_rng *r);

/* Scores on text as people read it (README: "Scores"): BLEU (sacreBLEU's
 * default: 13a tokens, exp smoothing) and chrF on the output as text
 * against the reference text, and the share of outputs whose 13a tokens
 * equal the reference's. */
typedef struct s2s_scores {
    double exact, bleu, chrf;
} s2s_scores;

/* Decodes every source of s (beam 1: greedy) into out/out_len and scores
 * its text (s2s_pieces_output_text over pc and vt) against refs->tgt[i],
 * the references as text. Exits 1 on out of memory, and on logits that are
 * not finite when the model is as loaded (s2s_check_decoded); a model
 * trained in this run says so on stderr and scores what was decoded (the
 * training goes on to its checkpoint, and its guard stops a NaN loss). */
s2s_scores s2s_evaluate(tg_tape *tape, const s2s_model *m, const s2s_options *o,
                        const s2s_id_set *s, int beam, int trained, int **out, int *out_len,
                        const s2s_pairs *refs, const s2s_pieces *pc, const s2s_vocab *vt);
/* After s2s_translate (rc its answer, fault its opt->fault): nothing when
 * rc is 0, else exit 1 for out of memory, or for logits that are not
 * finite in the programs' wording (tg_cli_die_nonfinite, naming --load or
 * --import-torch), at the output token of the sentence, called `unit`
 * and numbered by number[sentence] (NULL: from 1 in the order given):
 * "... (NaN or infinite logits at output token 1 of sentence 3) ...". */
void s2s_check_decoded(const s2s_options *o, int rc, const s2s_decode_fault *fault,
                       const char *unit, const long *number);
/* The file the model came from (--load, --import-torch), for messages;
 * NULL for one this run made. */
const char *s2s_model_file(const s2s_options *o);
/* Output buffers for n sentences of max_len ids (exits 1 on out of memory). */
int **s2s_alloc_outputs(size_t n, int max_len, int **lens);
void s2s_free_outputs(int **out, size_t n, int *lens);

/* The model of the options and vocabularies (exits 1 on out of memory);
 * --load FILE (exits 1 naming it; a training checkpoint gets a pointer to
 * --resume), or --import-torch FILE (torch_s2s.h); the optimizer of --optim and --lr (setup.c). */
void s2s_build_model(const s2s_options *o, s2s_model *m, const s2s_vocab *vs,
                     const s2s_vocab *vt);
/* Refuses (exit 1, both figures) a run whose parameters, gradients,
 * optimizer state, arenas and data (bytes: the pairs and their ids) exceed
 * the memory available (tgx_memory_check); s2s_build_model checks the
 * config before building. */
void s2s_check_memory(const s2s_model *m, const s2s_options *o, const tg_optim *opt,
                      size_t arenas, size_t data);
/* The same for --translate, before its decoding arena (bytes) is taken:
 * the loaded model's parameters and that arena (training's check counts
 * its evaluation arena with the rest; --translate's went unchecked). */
void s2s_check_translate_memory(const s2s_model *m, size_t arena);
/* The dropout of a run on a loaded model: --dropout when given (the model
 * is rebuilt with it, its weights copied in: the layers take their rate
 * when built), else the model's, in o too. Training read the flag (0 when
 * not given) and recorded the model's in its checkpoint: a resumed run
 * took the model's and went another way; --dropout 0.9 changed nothing. */
void s2s_take_dropout(s2s_options *o, const tg_cmdline *cl, s2s_model *m);
/* --load (or --import-torch): the model, its vocabularies, tokenizer and
 * piece models; a model flag given on the command line (cl) that the file
 * contradicts is refused (exit 2), as charlm does. */
void s2s_load_model(const s2s_options *o, const tg_cmdline *cl, s2s_model *m, s2s_vocab *vs,
                    s2s_vocab *vt, s2s_tokenize_options *tok, s2s_pieces *pc);
tg_optim *s2s_make_optim(const s2s_options *o, const s2s_model *m);
/* --export-torch FILE (nothing without it): m in the names of
 * scripts/torch_models.py's Seq2Seq (torch_s2s.h) with its vocabularies,
 * tokenizer options and piece models; exits 1 naming the problem. With
 * --load (or --import-torch) and --translate, s2s_load_model calls it. */
void s2s_export_torch(const s2s_options *o, const s2s_model *m, const s2s_vocab *vs,
                      const s2s_vocab *vt, const s2s_tokenize_options *tok, const s2s_pieces *pc);

/* Step arenas by measurement (setup.c): a training step of rows pairs of
 * up to max_src and max_tgt tokens (on one shard's tape), and decoding
 * batches of up to `sentences` sources of max_src tokens with o's beam
 * and max-len. Exit 1 when not even a probe could run. */
size_t s2s_train_arena(const s2s_model *m, const s2s_options *o, int rows, int max_src,
                       int max_tgt);
size_t s2s_decode_arena(const s2s_model *m, const s2s_options *o, int sentences, int max_src);

/* The first --show test sentences as text: source, reference, the model's
 * output (marked "out!" when it differs). */
void s2s_show_examples(const s2s_options *o, const s2s_pairs *test, const s2s_vocab *vt,
                       const s2s_pieces *pc, int **out, const int *lens);
/* --attention-map FILE (nothing without it): the attention weights of the
 * first --show sentences of s, greedy decode (attnmap.h); exits 1 naming
 * the problem. */
void s2s_attention_map_show(const s2s_options *o, tg_tape *tape, const s2s_model *m,
                            const s2s_vocab *vs, const s2s_vocab *vt, const s2s_id_set *s);
/* --translate: the loaded model over the arguments from first on, or stdin
 * lines (text in, text out: pieces both ways for a subword model); frees
 * m, the vocabularies and the piece models. Returns the exit status. */
int s2s_translate_main(const s2s_options *o, s2s_model *m, int argc, char **argv, int first,
                       s2s_vocab *vs, s2s_vocab *vt, const s2s_tokenize_options *tok,
                       s2s_pieces *pc);

#endif
