/* The seq2seq program's subword mode and keep-best, end to end (issue 13):
 * a small TSV with accented Latin and Hangul trained a few steps on
 * SentencePiece pieces, --save / --load --translate giving plain text,
 * --resume with the checkpoint's piece models, --eval-every keeping the
 * best model, and the tiny-corpus size note. The binary comes from
 * $SEQ2SEQ (tests/common/progtest.h runs it in a scratch folder). */
#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ckptedit.h"
#include "progtest.h"

static void setup(void) { pt_setup("SEQ2SEQ", "s2s_subwords"); }

TestSuite(seq2seq_subwords, .init = setup, .fini = pt_teardown, .timeout = 240);

/* 48 pairs: German with umlauts and ß, Korean, archaic spelling. */
static void write_pairs(const char *name)
{
    static const char *const src[] = {"Der Bär schläft im Wald.", "Die Straße ist naß.",
                                      "Thou art über alles.", "안녕하세요 친구",
                                      "Ich esse gern Brot.", "Wir gehen nach Hause."};
    static const char *const tgt[] = {"The bear sleeps in the forest.", "The street is wet.",
                                      "You are above all.", "Hello friend",
                                      "I like to eat bread.", "We are going home."};
    char path[sizeof pt_dir + 64];
    pt_path(name, path, sizeof path);
    FILE *f = fopen(path, "w");
    cr_assert_not_null(f);
    for (int r = 0; r < 8; r++)
        for (int i = 0; i < 6; i++) fprintf(f, "%s\t%s\n", src[i], tgt[i]);
    fclose(f);
}

/* A field "key=value" of the result line (last line of stdout). */
static double result_field(const char *key)
{
    const char *line = strstr(pt_out, "result: ");
    cr_assert_not_null(line, "%s", pt_out);
    char pat[64];
    snprintf(pat, sizeof pat, " %s=", key);
    const char *at = strstr(line, pat);
    cr_assert_not_null(at, "no %s in %s", key, line);
    return strtod(at + strlen(pat), NULL);
}

#define SMALL "--train p.tsv --test p.tsv --hidden 32 --embed 16 --batch 8 --lr 0.01 --show 1"

Test(seq2seq_subwords, train_save_load_translate_resume_with_pieces)
{
    write_pairs("p.tsv");
    /* default settings: subwords on for a TSV; the tiny text gives fewer
     * pieces than 8000, and the log says so */
    cr_assert_eq(pt_run(SMALL " --epochs 2 --save m.tg --checkpoint c.ck"), 0, "%s", pt_err);
    cr_assert(strstr(pt_err, "--subwords 8000: the training text gives"), "%s", pt_err);
    cr_assert(strstr(pt_err, "subwords: "), "%s", pt_err);
    /* a user's TSV gets the real-text model: attention, wide embeddings */
    cr_assert(strstr(pt_err, "attention general"), "%s", pt_err);
    cr_assert(strstr(pt_out, "chrf "), "%s", pt_out);
    double chrf = result_field("chrf"), bleu = result_field("bleu");
    cr_assert(chrf >= 0 && chrf <= 100, "%s", pt_out);
    /* the saved model needs nothing else: text in, detokenized text out (no
     * U+2581 piece marks, no piece-joining spaces) */
    cr_assert_eq(pt_run("--load m.tg --translate \"Der Bär schläft im Wald.\" \"안녕하세요\""), 0,
                 "%s", pt_err);
    cr_assert_null(strstr(pt_out, "\xe2\x96\x81"), "%s", pt_out);
    cr_assert(strstr(pt_out, "translated=2"), "%s", pt_out);
    /* the loaded model scores as the run's kept model did */
    cr_assert_eq(pt_run(SMALL " --load m.tg --epochs 0"), 0, "%s", pt_err);
    cr_assert(strstr(pt_err, "from --load"), "%s", pt_err);
    cr_assert_float_eq(result_field("bleu"), bleu, 1e-9, "%s", pt_out);
    /* --resume takes the piece models from the checkpoint */
    cr_assert_eq(pt_run("--resume c.ck --checkpoint c.ck --epochs 3"), 0, "%s", pt_err);
    cr_assert(strstr(pt_err, "from --resume"), "%s", pt_err);
    cr_assert(strstr(pt_out, "epoch 3:"), "%s", pt_out);
}

/* The best of a CSV log's rows (test_bleu, its step) after skip rows. */
static double log_best(const char *name, int skip, unsigned long long *best_step, int *rows)
{
    char path[sizeof pt_dir + 16], row[256];
    pt_path(name, path, sizeof path);
    FILE *f = fopen(path, "r");
    cr_assert_not_null(f);
    double best = -1;
    *rows = 0;
    cr_assert_not_null(fgets(row, sizeof row, f));
    cr_assert(strstr(row, "test_bleu,test_chrf"), "%s", row);
    while (fgets(row, sizeof row, f)) {
        int epoch;
        unsigned long long step;
        double loss, exact, bleu;
        cr_assert_eq(sscanf(row, "%d,%llu,%lf,%lf,%lf", &epoch, &step, &loss, &exact, &bleu), 5);
        if ((*rows)++ < skip) continue;
        if (bleu > best) best = bleu, *best_step = step;
    }
    fclose(f);
    return best;
}

/* --eval-every with --save: the kept model is the best evaluation's and
 * the log says so; then a resume with a learning rate that wrecks the
 * model (lr is free to change on resume) evaluates worse: the kept model
 * is not replaced, the checkpoint's best stands, and the run's final
 * scores are the kept model's, read back. */
Test(seq2seq_subwords, eval_every_keeps_the_best_model)
{
    write_pairs("p.tsv");
    cr_assert_eq(pt_run(SMALL " --epochs 4 --eval-every 2 --save m.tg --log l.csv --lr 0.05 "
                        "--checkpoint c.ck"), 0, "%s", pt_err);
    unsigned long long best_step = 0, later_step = 0;
    int rows, rows2;
    double best = log_best("l.csv", 0, &best_step, &rows);
    cr_assert_geq(rows, 12, "an evaluation every 2 of 24 steps and each epoch's end");
    cr_assert_gt(best, 0, "the first part learns something (else the test proves nothing)");
    char want[128];
    snprintf(want, sizeof want, "at step %llu: saved m.tg", best_step);
    cr_assert(strstr(pt_out, want), "the log's best step %llu:\n%s", best_step, pt_out);
    cr_assert_eq((unsigned long long)result_field("best_step"), best_step, "%s", pt_out);
    /* the kept model is that evaluation's: loaded, it scores the best BLEU */
    cr_assert_eq(pt_run(SMALL " --load m.tg --epochs 0"), 0, "%s", pt_err);
    cr_assert_float_eq(result_field("bleu"), best, 0.006, "%s", pt_out);

    size_t n0, n1;
    char *before = pt_read("m.tg", &n0);
    cr_assert_eq(pt_run("--resume c.ck --checkpoint c.ck --epochs 6 --lr 10 --save m.tg "
                        "--log l.csv"), 0, "%s", pt_err);
    double later = log_best("l.csv", rows, &later_step, &rows2);
    cr_assert_gt(rows2, rows, "the resumed part evaluated");
    cr_assert_lt(later, best, "the wrecked model evaluates worse (else the test proves nothing)");
    cr_assert_null(strstr(pt_out, ": saved m.tg"), "%s", pt_out);
    char *after = pt_read("m.tg", &n1);
    cr_assert(n0 == n1 && memcmp(before, after, n0) == 0, "m.tg replaced: %s", pt_out);
    free(before);
    free(after);
    cr_assert_eq((unsigned long long)result_field("best_step"), best_step, "%s", pt_out);
    cr_assert(strstr(pt_out, "final scores of the kept model"), "%s", pt_out);
    cr_assert_float_eq(result_field("bleu"), best, 0.006, "%s", pt_out);
}

/* A damaged piece model inside a saved model is refused by name. */
Test(seq2seq_subwords, damaged_piece_model_is_refused)
{
    write_pairs("p.tsv");
    cr_assert_eq(pt_run(SMALL " --epochs 1 --steps 1 --save m.tg --checkpoint c.ck"), 0, "%s",
                 pt_err);
    size_t n;
    char *raw = pt_read("m.tg", &n);
    char *at = NULL;
    for (size_t i = 0; i + 5 <= n && !at; i++)
        if (memcmp(raw + i, "spm1:", 5) == 0) at = raw + i;
    cr_assert_not_null(at);
    at[40] = at[40] == 'A' ? 'B' : 'A'; /* one base64 character of the source model */
    pt_fix_header_crc(&raw, &n);
    pt_write("bad.tg", raw, n);
    free(raw);
    pt_expect_refused("--load bad.tg --translate x",
                      "bad.tg: metadata 's2s.src_pieces': piece model is damaged");
}

/* A side of millions of one character: SentencePiece's encoder merges such
 * a run (of characters the pieces do not cover) in time quadratic in its
 * length (a million took 34 s, the 3.9 MB here would take minutes): a
 * training pair that long is skipped without being encoded, and a line to
 * translate is cut to the bytes 1000 pieces can come from before its
 * pieces, so both runs end at once (before this, past the suite's
 * timeout). */
Test(seq2seq_subwords, a_side_of_millions_of_characters_is_not_encoded)
{
    write_pairs("p.tsv");
    size_t n = 3900000;
    char *line = malloc(n + 2);
    cr_assert_not_null(line);
    memset(line, 'q', n);
    line[n] = '\n';
    line[n + 1] = '\0';
    char path[sizeof pt_dir + 16];
    pt_path("p.tsv", path, sizeof path);
    FILE *f = fopen(path, "a");
    cr_assert_not_null(f);
    fprintf(f, "x\t%s", line);
    fclose(f);
    pt_write("long.txt", line, n + 1);
    free(line);
    cr_assert_eq(pt_run(SMALL " --epochs 1 --steps 2 --save m.tg"), 0, "%s", pt_err);
    cr_assert(strstr(pt_err, "p.tsv: skipped 1 pairs longer than 200 pieces"), "%s", pt_err);
    cr_assert_eq(pt_run("--load m.tg --translate < long.txt"), 0, "%s", pt_err);
    cr_assert(strstr(pt_err, "input of 3900000 bytes cut to its first 64000 before its pieces"),
              "%s", pt_err);
    cr_assert(strstr(pt_out, "translated=1"), "%s", pt_out);
}

/* A side that our reader sees as text but SentencePiece's normalization
 * (nmt_nfkc) turns into no pieces (a line separator, a zero-width space,
 * control bytes) is refused as an empty side is, naming the file and line,
 * in the training and the test pairs (before, an empty source reached the
 * model and aborted the run, exit 134). */
Test(seq2seq_subwords, a_side_of_no_pieces_is_refused_naming_its_line)
{
    write_pairs("p.tsv");
    char path[sizeof pt_dir + 16];
    pt_path("p.tsv", path, sizeof path);
    FILE *f = fopen(path, "a");
    cr_assert_not_null(f);
    fprintf(f, "\xe2\x80\xa8\tfoo\n"); /* U+2028 LINE SEPARATOR */
    fclose(f);
    cr_assert_eq(pt_run(SMALL " --epochs 1 --steps 1"), 1, "%s", pt_err);
    cr_assert(strstr(pt_err, "p.tsv:49: the source side is empty after SentencePiece's "
                             "normalization"), "%s", pt_err);
    write_pairs("p.tsv");
    pt_write("t.tsv", "ok\t\xe2\x80\x8b\n", 7); /* U+200B ZERO WIDTH SPACE */
    cr_assert_eq(pt_run("--train p.tsv --test t.tsv --hidden 32 --embed 16 --steps 1 --show 0"), 1,
                 "%s", pt_err);
    cr_assert(strstr(pt_err, "t.tsv:1: the target side is empty"), "%s", pt_err);
}

/* Test pairs that --max-tokens leaves none of end the run (exit 1), as the
 * training pairs do and as the word reader's do: there is nothing to score
 * (before, the run ended on exit 0 and saved a "best" model scored on no
 * pair). */
Test(seq2seq_subwords, no_test_pair_within_max_tokens_exits_1)
{
    write_pairs("p.tsv");
    char line[4096] = "";
    for (int i = 0; i < 50; i++) strcat(line, "Donaudampfschifffahrtsgesellschaftskapit\xc3\xa4n ");
    strcat(line, "\tThe captain\n"); /* 50 words, a few hundred pieces of the 48 pairs' model */
    pt_write("t.tsv", line, strlen(line));
    cr_assert_eq(pt_run("--train p.tsv --test t.tsv --hidden 32 --embed 16 --steps 1 --show 0 "
                        "--save m.tg"),
                 1, "%s", pt_err);
    cr_assert(strstr(pt_err, "t.tsv: skipped 1 pairs longer than 200 pieces"), "%s", pt_err);
    cr_assert(strstr(pt_err, "t.tsv: no sentence pairs within --max-tokens 200 pieces"), "%s",
              pt_err);
    cr_assert(!pt_exists("m.tg"));
}

/* --subwords below the text's character count is raised (every character
 * needs a piece), with a note; the run goes on. */
Test(seq2seq_subwords, too_few_pieces_are_raised_with_a_note)
{
    write_pairs("p.tsv");
    cr_assert_eq(pt_run(SMALL " --epochs 1 --steps 1 --subwords 8"), 0, "%s", pt_err);
    cr_assert(strstr(pt_err, "--subwords 8: the training text gives"), "%s", pt_err);
    cr_assert(strstr(pt_err, "every character needs one"), "%s", pt_err);
}

/* --subword-sample: the pieces of a corpus larger than the sample are
 * learned from that many pairs, and stderr says so; a sample as large as
 * the corpus changes nothing (the same pieces, so the same run); where no
 * pieces are learned the flag is refused. */
Test(seq2seq_subwords, subword_sample_learns_from_part_of_the_pairs)
{
    write_pairs("p.tsv");
    cr_assert_eq(pt_run(SMALL " --epochs 1 --steps 2 --subword-sample 24 --save s.tg"), 0, "%s",
                 pt_err);
    cr_assert(strstr(pt_err, "learned from 24 of the 48 training pairs (--subword-sample)"), "%s",
              pt_err);
    cr_assert_eq(pt_run(SMALL " --epochs 1 --steps 2 --subword-sample 48 --save a.tg"), 0, "%s",
                 pt_err);
    cr_assert_null(strstr(pt_err, "--subword-sample)"), "%s", pt_err);
    cr_assert_eq(pt_run(SMALL " --epochs 1 --steps 2 --subword-sample 0 --save b.tg"), 0, "%s",
                 pt_err);
    pt_expect_same_bytes("a.tg", "b.tg");
    cr_assert_eq(pt_run("--load s.tg --subword-sample 10"), 2, "%s", pt_err);
    pt_expect_one_line("seq2seq: --subword-sample applies when pieces are learned on --train");
    cr_assert_eq(pt_run("--train p.tsv --subwords 0 --subword-sample 10"), 2, "%s", pt_err);
    pt_expect_one_line("seq2seq: --subword-sample applies when pieces are learned on --train");
}

/* Learning the pieces is refused before SentencePiece takes memory that is
 * not there (the kernel would kill the run half-way), and a smaller
 * --subword-sample needs less: 40 pairs of 300 characters a side need
 * about 40 x 300 x S2S_PIECES_BYTES_PER_CHAR (28) = 328 KiB, 10 of them a
 * quarter of that; the pairs themselves (52 KiB with the test file) fit in
 * their quarter of the 256 KiB cap. */
Test(seq2seq_subwords, learning_the_pieces_is_refused_past_the_memory)
{
    char path[sizeof pt_dir + 64], side[301];
    pt_path("long.tsv", path, sizeof path);
    FILE *f = fopen(path, "w");
    cr_assert_not_null(f);
    for (int i = 0; i < 40; i++) {
        for (int k = 0; k < 300; k++) side[k] = k % 7 == 6 ? ' ' : (char)('a' + (i + k) % 26);
        side[300] = '\0';
        fprintf(f, "%s\t%s\n", side, side);
    }
    fclose(f);
    const char *args = "--train long.tsv --test long.tsv --subwords 100 --hidden 8 --embed 4 "
                       "--steps 1 --show 0";
    cr_assert_eq(pt_run_env("TG_MAX_MEMORY=256K", args), 1, "%s", pt_err);
    pt_expect_one_line("seq2seq: learning the pieces from 40 pairs takes ");
    cr_assert(strstr(pt_err, " KiB (the pairs, and SentencePiece's trainer at about 28 bytes a "
                             "character of a side) but 256.0 KiB is available (TG_MAX_MEMORY): "
                             "lower --subword-sample, or --subwords 0 for words\n"),
              "%s", pt_err);
    double need;
    cr_assert_eq(sscanf(strstr(pt_err, " takes "), " takes %lf KiB", &need), 1, "%s", pt_err);
    cr_assert(need > 328 && need < 420, "%g KiB", need);
    char sampled[256];
    snprintf(sampled, sizeof sampled, "%s --subword-sample 10", args);
    cr_assert_eq(pt_run_env("TG_MAX_MEMORY=256K", sampled), 1, "%s", pt_err);
    cr_assert_null(strstr(pt_err, "learning the pieces"), "%s", pt_err); /* the model's turn */
    pt_expect_one_line("seq2seq: this configuration needs ");
    cr_assert_eq(pt_run(sampled), 0, "%s", pt_err);
}
