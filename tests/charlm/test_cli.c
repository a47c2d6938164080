/* The charlm and hello programs end to end: bad flags exit 2 with one line,
 * bad data exits 1 naming the file and line, a tiny Korean run trains,
 * saves, reloads and samples deterministically, and the last stdout line is
 * the result. CHARLM_EXE and HELLO_EXE are the programs (set by meson). */
#include <criterion/criterion.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "progtest.h"

static void setup(void) { pt_setup("CHARLM_EXE", "charlm_cli"); }

TestSuite(charlm_cli, .init = setup, .fini = pt_teardown, .timeout = 120);

static const char *last_line(const char *s)
{
    size_t n = strlen(s);
    cr_assert(n > 0 && s[n - 1] == '\n', "output does not end with a line: '%s'", s);
    const char *p = s + n - 1;
    while (p > s && p[-1] != '\n') p--;
    return p;
}

/* Korean and English, enough for 2 streams x 8 steps plus validation. */
static void write_korean(void)
{
    static const char line[] = "\xEA\xB0\x80\xEB\x82\x98\xEB\x8B\xA4 hello "
                               "\xEC\x95\x88\xEB\x85\x95\xED\x95\x98\xEC\x84\xB8\xEC\x9A\x94.\n";
    char text[4096] = "";
    for (int i = 0; i < 20; i++) strcat(text, line);
    pt_write("ko.txt", text, strlen(text));
}

Test(charlm_cli, help_lists_flags_with_defaults)
{
    cr_assert_eq(pt_run("--help"), 0);
    const char *want[] = {"--text STR", "--cell STR", "(default: lstm)", "--hidden N",
                          "(default: 256)", "--optim STR", "--seconds X", "--sample N",
                          "--prime STR", "--save STR", "--load STR", "--log STR", "--threads N",
                          "--seed N", "--valid-frac X", "(default: 0.05)"};
    for (size_t i = 0; i < sizeof want / sizeof want[0]; i++)
        cr_assert(strstr(pt_out, want[i]), "--help lacks '%s':\n%s", want[i], pt_out);
}

Test(charlm_cli, bad_flags_exit_2_with_one_line)
{
    cr_assert_eq(pt_run("--hidden 12x"), 2);
    pt_expect_one_line("charlm: --hidden: expected an integer, got '12x'");
    cr_assert_eq(pt_run("--cell transformer"), 2);
    pt_expect_one_line("--cell: expected one of rnn,lstm,gru,mgu,peephole, got 'transformer'");
    cr_assert_eq(pt_run("--frobnicate"), 2);
    pt_expect_one_line("--frobnicate: unknown flag");
    cr_assert_eq(pt_run("--schedule cosine --seconds 5"), 2);
    pt_expect_one_line("--schedule cosine needs --steps");
    cr_assert_eq(pt_run("--batch"), 2);
    pt_expect_one_line("--batch: missing value");
}

Test(charlm_cli, data_errors_exit_1_naming_the_file)
{
    cr_assert_eq(pt_run("--text missing.txt"), 1);
    pt_expect_one_line("missing.txt: No such file or directory");
    cr_assert_eq(pt_run("--text ."), 1);
    pt_expect_one_line(".: is a directory");
    pt_write("empty.txt", "", 0);
    cr_assert_eq(pt_run("--text empty.txt"), 1);
    pt_expect_one_line("empty.txt: empty text");
    pt_write("bad.txt", "fine\nstill fine\nbad \xFF here\n", 27);
    cr_assert_eq(pt_run("--text bad.txt"), 1);
    pt_expect_one_line("bad.txt:3: invalid UTF-8 at byte offset 20 (byte 0xFF)");
    write_korean();
    cr_assert_eq(pt_run("--text ko.txt --batch 2 --seq-len 8 --steps 1 --log /nonexistent-dir/x.csv"), 1);
    pt_expect_one_line("--log /nonexistent-dir/x.csv: directory '/nonexistent-dir': No such file or "
                       "directory"); /* before reading the text */
    cr_assert_eq(pt_run("--text ko.txt --batch 500"), 2);
    pt_expect_one_line("too short for --batch 500");
    /* a text over TG_TEXT_MAX_BYTES (1 GiB), refused by its size before a
     * byte is read (sparse: no disk used) */
    char big[1200];
    pt_path("big.txt", big, sizeof big);
    int fd = open(big, O_CREAT | O_WRONLY | O_TRUNC, 0644);
    cr_assert(fd >= 0 && ftruncate(fd, ((off_t)1 << 30) + 1) == 0);
    close(fd);
    cr_assert_eq(pt_run("--text big.txt --steps 1"), 1);
    pt_expect_one_line("big.txt: more than 1073741824 bytes, the most a text is read whole into "
                       "memory");
}

static const char *const SMALL = "--text ko.txt --hidden 16 --embed 8 --batch 2 --seq-len 8 "
                                 "--threads 1";

/* A loaded model samples without a text and without training (issue 16):
 * no training flag, no --text. */
Test(charlm_cli, loaded_model_samples_without_text_or_training)
{
    char args[1024];
    write_korean();
    snprintf(args, sizeof args, "%s --steps 5 --save m.safetensors", SMALL);
    cr_assert_eq(pt_run(args), 0, "stderr:\n%s", pt_err);
    cr_assert_eq(pt_run("--load m.safetensors --sample 20 --prime \xEC\x95\x88"), 0,
                 "stderr:\n%s", pt_err);
    cr_assert(strncmp(pt_out, "\xEC\x95\x88", 3) == 0, "starts with the prime:\n%s", pt_out);
    cr_assert(strstr(pt_out, "result: sampled=20 "), "%s", pt_out);
    cr_assert_null(strstr(pt_err, "vocabulary"), "read a text:\n%s", pt_err);
    cr_assert_null(strstr(pt_err, "step "), "trained:\n%s", pt_err);
    cr_assert_eq(pt_run("--load m.safetensors --sample 20"), 2);
    pt_expect_one_line("--sample with --load and no --text needs --prime TEXT");
}

Test(charlm_cli, korean_train_save_load_sample)
{
    char args[1024];
    write_korean();
    snprintf(args, sizeof args, "%s --steps 30 --lr 0.01 --save m.safetensors --log log.csv "
             "--sample 20 --prime \xEC\x95\x88", SMALL);
    cr_assert_eq(pt_run(args), 0, "stderr:\n%s", pt_err);
    const char *res = last_line(pt_out);
    cr_assert_eq(strncmp(res, "result: valid_bpc=", 18), 0, "%s", res);
    cr_assert(strstr(res, " tokens_per_s=") && strstr(res, " steps=30 ") && strstr(res, " seconds="),
              "%s", res);
    cr_assert(strncmp(pt_out, "\xEC\x95\x88", 3) == 0, "the sample starts with the prime:\n%s", pt_out);
    cr_assert_null(strchr(pt_err, '\r'), "progress redrawn on a non-terminal");
    cr_assert(strstr(pt_err, "step 30/30"), "no final progress line:\n%s", pt_err);

    char log[1 << 14], log_path[sizeof pt_dir + 16];
    pt_path("log.csv", log_path, sizeof log_path);
    pt_slurp(log_path, log, sizeof log);
    const char *header = "step,seconds,tokens,loss,bpc,lr,grad_norm,tokens_per_s,valid_bpc\n1,";
    cr_assert_eq(strncmp(log, header, strlen(header)), 0, "%s", log);
    int rows = 0;
    for (const char *p = log; *p; p++) rows += *p == '\n';
    cr_assert_eq(rows, 31, "header + 30 rows:\n%s", log);

    /* reload: no training, same sample twice for the same seed */
    cr_assert_eq(pt_run("--text ko.txt --batch 2 --seq-len 8 --load m.safetensors --steps 0 --sample 40 --seed 3"), 0,
                 "stderr:\n%s", pt_err);
    static char first[sizeof pt_out];
    memcpy(first, pt_out, sizeof pt_out);
    cr_assert(strstr(first, "result: ") && strstr(first, " steps=0 "), "%s", first);
    cr_assert_eq(pt_run("--text ko.txt --batch 2 --seq-len 8 --load m.safetensors --steps 0 --sample 40 --seed 3"), 0);
    const char *a = strstr(first, "result: "), *b = strstr(pt_out, "result: ");
    cr_assert(a - first == b - pt_out && strncmp(first, pt_out, (size_t)(a - first)) == 0,
              "samples differ:\n%s\n---\n%s", first, pt_out);

    /* the loaded model evaluates exactly as the saved one did */
    char valid_saved[64], valid_loaded[64];
    sscanf(strstr(res, "valid_bpc="), "valid_bpc=%63s", valid_saved);
    sscanf(strstr(a, "valid_bpc="), "valid_bpc=%63s", valid_loaded);
    cr_assert_str_eq(valid_saved, valid_loaded);

    /* explicit flags that contradict the checkpoint */
    cr_assert_eq(pt_run("--text ko.txt --batch 2 --load m.safetensors --hidden 17 --steps 0"), 2);
    pt_expect_one_line("--hidden 17 does not match the model m.safetensors (hidden=16)");
    cr_assert_eq(pt_run("--text ko.txt --batch 2 --load m.safetensors --cell gru --steps 0"), 2);
    pt_expect_one_line("--cell gru does not match the model m.safetensors (cell=lstm)");
    /* a text with a character the checkpoint has never seen */
    pt_write("other.txt", "hello\nhe \xE2\x82\xAC\n", 13);
    cr_assert_eq(pt_run("--text other.txt --batch 2 --seq-len 2 --load m.safetensors --steps 0"), 1);
    pt_expect_one_line("other.txt:2: character U+20AC is not in the vocabulary of checkpoint m.safetensors");
    /* a prime outside the vocabulary is a usage error */
    cr_assert_eq(pt_run("--text ko.txt --batch 2 --load m.safetensors --steps 0 --sample 3 --prime Q"), 2);
    pt_expect_one_line("--prime: character U+0051 is not in the model's vocabulary");
    /* a corrupt checkpoint */
    pt_write("junk.safetensors", "\x08\0\0\0\0\0\0\0{\"a\":1}  ", 16);
    cr_assert_eq(pt_run("--text ko.txt --batch 2 --load junk.safetensors --steps 0"), 1);
    pt_expect_one_line("junk.safetensors");
    /* evaluating only needs no training streams: a text shorter than --batch
     * streams of --seq-len is evaluated (was refused for a training check) */
    static const char few[] = "\xEC\x95\x88\xEB\x85\x95 hello.\n";
    pt_write("short.txt", few, strlen(few));
    cr_assert_eq(pt_run("--text short.txt --load m.safetensors"), 0, "%s", pt_err);
    cr_assert(strstr(pt_out, "result: valid_bpc=") && strstr(pt_out, " steps=0 "), "%s", pt_out);
    cr_assert_eq(pt_run("--text short.txt --load m.safetensors --steps 1"), 2);
    pt_expect_one_line("is too short for --batch 32 streams of --seq-len 64");
}

Test(charlm_cli, every_cell_and_optimizer_runs)
{
    const char *cells[] = {"rnn", "gru", "mgu"}, *optims[] = {"sgd", "momentum", "adamw"};
    char args[1024];
    write_korean();
    for (int i = 0; i < 3; i++) {
        snprintf(args, sizeof args, "%s --steps 3 --cell %s --optim %s --layers 2 --dropout 0.1 "
                 "--shards 2 --threads 2 --schedule cosine --warmup 1", SMALL, cells[i], optims[i]);
        cr_assert_eq(pt_run(args), 0, "%s\n%s", args, pt_err);
        cr_assert(strstr(last_line(pt_out), " steps=3 "), "%s", pt_out);
    }
}

/* A step's arena is measured on a batch of many distinct characters: each
 * distinct one is projected (tg_rnn_forward), and a probe of repeated ids
 * measured one row. 3000 characters with wide embeddings and a small
 * hidden size aborted in the first step ("step arena exhausted", exit 134)
 * for every cell. */
Test(charlm_cli, many_distinct_characters_fit_the_measured_arena)
{
    char *text = malloc(3 * 3000 * 4 + 1), *at = text;
    cr_assert_not_null(text);
    for (int r = 0; r < 4; r++)
        for (int c = 0; c < 3000; c++) { /* U+4E00 .. U+5BB7, 3 bytes each */
            int cp = 0x4E00 + (c * 7 + r) % 3000;
            *at++ = (char)(0xE0 | cp >> 12);
            *at++ = (char)(0x80 | ((cp >> 6) & 0x3F));
            *at++ = (char)(0x80 | (cp & 0x3F));
        }
    pt_write("cjk.txt", text, (size_t)(at - text));
    free(text);
    /* wide embeddings: the distinct rows; a GRU with a wide state: its
     * gathers of the projected rows, every position (the probe's ids had
     * all been distinct, the one path without them) */
    const char *runs[] = {"--cell lstm --hidden 8 --embed 1024",
                          "--cell gru --hidden 8 --embed 1024",
                          "--cell gru --hidden 768 --embed 32"};
    for (int i = 0; i < 3; i++) {
        cr_assert_eq(pt_runf("--text cjk.txt --steps 2 --batch 32 --seq-len 64 --threads 1 %s",
                             runs[i]), 0, "%s: %s", runs[i], pt_err);
        cr_assert(strstr(last_line(pt_out), " steps=2 "), "%s", pt_out);
    }
}

Test(charlm_cli, hello_learns_o)
{
    cr_assert_eq(pt_run_prog("HELLO_EXE", "", ""), 0, "%s", pt_err);
    const char *res = last_line(pt_out);
    cr_assert(strstr(res, "result: next=o ok=1 "), "%s", pt_out);
    double seconds = -1;
    cr_assert_eq(sscanf(strstr(res, "seconds="), "seconds=%lf", &seconds), 1);
    cr_assert(seconds >= 0 && seconds < 1.0, "hello took %g s", seconds);
    cr_assert_eq(pt_run_prog("HELLO_EXE", "", "--hidden 0"), 2);
}

Test(charlm_cli, default_corpus_without_bible_says_which_package)
{
    char env[sizeof pt_dir + 64];
    snprintf(env, sizeof env, "env PATH=/nonexistent XDG_CACHE_HOME='%s/cache'", pt_dir);
    cr_assert_eq(pt_run_prog("CHARLM_EXE", env, "--steps 1"), 1);
    pt_expect_one_line("install the Debian package bible-kjv");
}

Test(charlm_cli, default_corpus_is_the_cached_kjv)
{
    if (system("command -v bible > /dev/null 2>&1") != 0) cr_skip_test("no bible program");
    char env[sizeof pt_dir + 64], path[sizeof pt_dir + 64];
    snprintf(env, sizeof env, "env XDG_CACHE_HOME='%s/cache'", pt_dir);
    const char *args = "--steps 0 --valid-frac 0 --batch 2 --seq-len 2 --hidden 4 --embed 2";
    for (int pass = 0; pass < 2; pass++) { /* dump and cache, then read the cache */
        cr_assert_eq(pt_run_prog("CHARLM_EXE", env, args), 0, "%s", pt_err);
        cr_assert(strstr(pt_err, "cache/tapegrad/kjv.txt: ") && strstr(pt_err, " characters, vocabulary "), "%s", pt_err);
        cr_assert(strstr(last_line(pt_out), "result: valid_bpc=nan "), "%s", pt_out);
    }
    pt_path("cache/tapegrad/kjv.txt", path, sizeof path);
    FILE *f = fopen(path, "rb");
    cr_assert_not_null(f, "no cache at %s", path);
    fclose(f);
}

/* An address-space limit (ulimit -v, a batch system's h_vmem) is memory
 * available too: a model too large for it is refused with the memory
 * check's message, where it ran out of memory half-way through building;
 * OpenBLAS's work buffers (128 MiB a thread, which it retries forever to
 * map) are kept out of it; a small run under the same limit trains. */
Test(charlm_cli, an_address_space_limit_is_memory_available)
{
#if defined(__SANITIZE_ADDRESS__)
    cr_skip_test("AddressSanitizer's shadow memory needs more address space than any limit");
#endif
    write_korean();
    const char *limit = "prlimit --as=1500000000";
    cr_assert_eq(pt_run_env(limit, "--text ko.txt --hidden 4096 --embed 8 --batch 2 --seq-len 8 "
                                   "--steps 1"), 1, "%s", pt_err);
    pt_expect_one_line("charlm: this configuration needs ");
    cr_assert(strstr(pt_err, "is available (the address-space limit, ulimit -v, less the space "
                             "mapped and BLAS's buffers): lower --hidden"), "%s", pt_err);
    cr_assert_eq(pt_run_env(limit, "--text ko.txt --hidden 16 --embed 8 --batch 2 --seq-len 8 "
                                   "--steps 3"), 0, "%s", pt_err);
}

/* A configuration that does not fit in memory is refused before training,
 * naming both figures and the flags that shrink it (issue 16); the cap
 * comes from TG_MAX_MEMORY here, so that nothing large is allocated. */
Test(charlm_cli, refuses_a_configuration_larger_than_the_memory)
{
    char args[1024];
    write_korean();
    snprintf(args, sizeof args, "%s --steps 3 --save m.st", SMALL);
    cr_assert_eq(pt_run_env("TG_MAX_MEMORY=1M", args), 1);
    pt_expect_one_line("charlm: this configuration needs ");
    cr_assert(strstr(pt_err, " MiB (parameters ") && strstr(pt_err, ", gradients ") &&
                  strstr(pt_err, ", optimizer state ") && strstr(pt_err, ", step arenas ") &&
                  strstr(pt_err, ") but 1.0 MiB is available (TG_MAX_MEMORY): lower --hidden, "
                                 "--layers, --embed, --batch or --seq-len\n"),
              "%s", pt_err);
    cr_assert_eq(pt_out[0], '\0', "trained or printed a result:\n%s", pt_out);
    cr_assert_not(pt_exists("m.st"), "--save written by a refused run");
    /* the same run fits a larger cap, and the figure shrinks with --batch */
    cr_assert_eq(pt_run_env("TG_MAX_MEMORY=1G", args), 0, "%s", pt_err);
    cr_assert_null(strstr(pt_err, "not measured"), "%s", pt_err);
    double big, small;
    /* 32 steps against 4: the arenas' per-step part shows at 0.1 MiB */
    cr_assert_eq(pt_run_env("TG_MAX_MEMORY=1M", "--text ko.txt --hidden 16 --embed 8 --batch 2 "
                            "--seq-len 32 --threads 1 --steps 3"), 1);
    cr_assert_eq(sscanf(strstr(pt_err, "needs "), "needs %lf", &big), 1, "%s", pt_err);
    cr_assert_eq(pt_run_env("TG_MAX_MEMORY=1M", "--text ko.txt --hidden 16 --embed 8 --batch 2 "
                            "--seq-len 4 --threads 1 --steps 3"), 1);
    cr_assert_eq(sscanf(strstr(pt_err, "needs "), "needs %lf", &small), 1, "%s", pt_err);
    cr_assert(small < big, "--seq-len 4 needs %g, --seq-len 32 %g", small, big);
    /* a cap below the parameters alone: refused before the model is built;
     * the text's characters and ids (8 bytes each, 2.7 KiB here) count */
    cr_assert_eq(pt_run_env("TG_MAX_MEMORY=8K", args), 1);
    pt_expect_one_line("step arenas not measured yet, training data 2.7 KiB) but 8.0 KiB is "
                       "available (TG_MAX_MEMORY)");
    /* a cap below what the text alone takes: refused before it is decoded
     * (660 bytes: at most 660 characters) */
    cr_assert_eq(pt_run_env("TG_MAX_MEMORY=1K", args), 1);
    pt_expect_one_line("charlm: ko.txt: holding this text takes 5.2 KiB (8 bytes a character: "
                       "its code point and its id, at most one character a byte) but 1.0 KiB is "
                       "available (TG_MAX_MEMORY): train on a shorter text\n");
    cr_assert_eq(pt_run_env("TG_MAX_MEMORY=12x", args), 2);
    pt_expect_one_line("charlm: TG_MAX_MEMORY: expected bytes (or with a K, M or G suffix), more "
                       "than 0, got '12x'");
    /* 0 read as "nothing known" switched the check off: a run that did not
     * fit was killed by the kernel */
    cr_assert_eq(pt_run_env("TG_MAX_MEMORY=0", args), 2);
    pt_expect_one_line("charlm: TG_MAX_MEMORY: expected bytes (or with a K, M or G suffix), more "
                       "than 0, got '0'");
}

/* A validation part too small to predict one character from another says
 * so where it is counted: valid_bpc came out nan without a word. */
Test(charlm_cli, a_validation_part_too_small_is_said)
{
    pt_write("t30.txt", "abcabcabcabcabcabcabcabcabcabc", 30);
    cr_assert_eq(pt_run("--text t30.txt --hidden 8 --embed 4 --batch 2 --seq-len 4 --steps 2"), 0,
                 "%s", pt_err);
    cr_assert(strstr(pt_err, "29 train / 1 valid (too few to predict one from another: valid_bpc "
                             "is nan; raise --valid-frac)\n"), "%s", pt_err);
    cr_assert_eq(pt_run("--text t30.txt --hidden 8 --embed 4 --batch 2 --seq-len 4 --steps 2 "
                        "--valid-frac 0.1"), 0, "%s", pt_err);
    cr_assert(strstr(pt_err, "27 train / 3 valid\n"), "%s", pt_err);
}
