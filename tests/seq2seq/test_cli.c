/* The seq2seq program as a user runs it: exit codes and messages for bad
 * input, the result line, --save / --load / --translate, and results that
 * do not depend on --threads. The binary comes from $SEQ2SEQ. */
#include <criterion/criterion.h>
#include <poll.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include "tapegrad.h"
#include "tg_checkpoint.h"

typedef struct ran {
    int rc;
    char out[16384], err[4096];
} ran;

/* Runs "$SEQ2SEQ args" with in_len bytes of in on stdin; captures both
 * streams. */
static void run_input(ran *r, const char *args, const char *in, size_t in_len)
{
    const char *exe = getenv("SEQ2SEQ");
    cr_assert_not_null(exe, "SEQ2SEQ not set");
    char cmd[4096], errf[128], inf[128];
    snprintf(errf, sizeof errf, "/tmp/s2s_cli_err_%ld", (long)getpid());
    snprintf(inf, sizeof inf, "/tmp/s2s_cli_in_%ld", (long)getpid());
    FILE *f = fopen(inf, "wb");
    cr_assert_not_null(f);
    cr_assert_eq(fwrite(in, 1, in_len, f), in_len);
    fclose(f);
    snprintf(cmd, sizeof cmd, "%s %s <%s 2>%s", exe, args, inf, errf);
    FILE *p = popen(cmd, "r");
    cr_assert_not_null(p);
    size_t n = fread(r->out, 1, sizeof r->out - 1, p);
    r->out[n] = '\0';
    int st = pclose(p);
    r->rc = WIFEXITED(st) ? WEXITSTATUS(st) : -1;
    f = fopen(errf, "r");
    n = f ? fread(r->err, 1, sizeof r->err - 1, f) : 0;
    r->err[n] = '\0';
    if (f) fclose(f);
    remove(errf);
    remove(inf);
}

/* The same with in_text, if given, on stdin. */
static void run(ran *r, const char *args, const char *in_text)
{
    run_input(r, args, in_text ? in_text : "", in_text ? strlen(in_text) : 0);
}

/* The last line of s (without its newline). */
static const char *last_line(const char *s, char *buf, size_t n)
{
    size_t len = strlen(s);
    while (len > 0 && s[len - 1] == '\n') len--;
    size_t start = len;
    while (start > 0 && s[start - 1] != '\n') start--;
    snprintf(buf, n, "%.*s", (int)(len - start), s + start);
    return buf;
}

static void write_file(const char *path, const char *text)
{
    FILE *f = fopen(path, "wb");
    cr_assert_not_null(f);
    fputs(text, f);
    fclose(f);
}

Test(cli, bad_flags_exit_2)
{
    ran r;
    run(&r, "--hidden 12x", NULL);
    cr_assert_eq(r.rc, 2);
    cr_assert(strstr(r.err, "--hidden") != NULL, "%s", r.err);
    run(&r, "--translate", NULL);
    cr_assert_eq(r.rc, 2);
    run(&r, "--cell nosuch", NULL);
    cr_assert_eq(r.rc, 2);
    run(&r, "stray", NULL);
    cr_assert_eq(r.rc, 2);
    run(&r, "--help", NULL);
    cr_assert_eq(r.rc, 0);
    cr_assert(strstr(r.out, "--beam") != NULL && strstr(r.out, "--seconds") != NULL);
}

Test(cli, bad_data_exit_1_naming_file_and_line)
{
    char path[128];
    snprintf(path, sizeof path, "/tmp/s2s_cli_bad_%ld.tsv", (long)getpid());
    write_file(path, "a b\tc d\r\n\r\nno tab here\n");
    ran r;
    char args[256];
    snprintf(args, sizeof args, "--train %s", path);
    run(&r, args, NULL);
    cr_assert_eq(r.rc, 1);
    char want[160];
    snprintf(want, sizeof want, "%s:3: no TAB", path);
    cr_assert(strstr(r.err, want) != NULL, "%s", r.err);
    run(&r, "--train /nonexistent/pairs.tsv", NULL);
    cr_assert_eq(r.rc, 1);
    cr_assert(strstr(r.err, "/nonexistent/pairs.tsv") != NULL, "%s", r.err);
    /* a line that never ends: refused at S2S_LINE_MAX_BYTES, not read until
     * memory runs out */
    run(&r, "--train /dev/zero --subwords 0", NULL);
    cr_assert_eq(r.rc, 1);
    cr_assert(strstr(r.err, "/dev/zero:1: a line of more than 4194304 bytes") != NULL, "%s",
              r.err);
    snprintf(args, sizeof args, "--load %s --translate hello", path); /* not a checkpoint */
    run(&r, args, NULL);
    cr_assert_eq(r.rc, 1);
    cr_assert(strstr(r.err, path) != NULL, "%s", r.err);
    remove(path);
}

Test(cli, bad_attention_flags_exit_2)
{
    ran r;
    run(&r, "--attention nosuch", NULL);
    cr_assert_eq(r.rc, 2);
    cr_assert(strstr(r.err, "--attention") != NULL, "%s", r.err);
    run(&r, "--bidirectional --hidden 33", NULL);
    cr_assert_eq(r.rc, 2);
    cr_assert(strstr(r.err, "--bidirectional needs an even --hidden") != NULL, "%s", r.err);
}

#define TINY "--pairs 3000 --test-pairs 60 --hidden 64 --embed 16 --batch 32 --lr 0.01 --show 2"

/* stdout of SEQ2SEQ args with the file in on stdin, piped (`cat in |`) or
 * as the file itself (`<in`), with the result line (its seconds differ)
 * cut off. */
static void translations(char *out, size_t cap, const char *args, const char *in, int piped)
{
    char cmd[4096];
    const char *exe = getenv("SEQ2SEQ");
    if (piped)
        snprintf(cmd, sizeof cmd, "cat %s | %s %s 2>/dev/null", in, exe, args);
    else
        snprintf(cmd, sizeof cmd, "%s %s <%s 2>/dev/null", exe, args, in);
    FILE *p = popen(cmd, "r");
    cr_assert_not_null(p);
    size_t n = fread(out, 1, cap - 1, p);
    out[n] = '\0';
    cr_assert_eq(pclose(p), 0, "%s", cmd);
    char *result = strstr(out, "result: translated=");
    cr_assert_not_null(result, "%s", out);
    *result = '\0';
}

/* --translate decodes a pipe's lines in batches as they come (within the
 * rows the panels compute row by row; line by line without panels): the
 * translations each line gets alone (--eval-batch 1 on a file), in order,
 * over more lines than a batch holds, empty lines and a line cut to 1000
 * tokens among them. With file_too, a file's batches give them too: they
 * are not capped, so this holds where their products stay on the panels
 * (on the AVX2 kernel up to 191 rows, and an attention model's keys have a
 * row per padded source token), or where no near tie flips a word. */
static void check_batched_translation(const char *model, int file_too)
{
    static const char *const sentences[] = {"I study deeplearning", "yesterday we ate bread",
                                            "you like tea", "the teacher reads a book today",
                                            "tomorrow she will drink coffee at school"};
    char in[128], args[512];
    snprintf(in, sizeof in, "/tmp/s2s_cli_lines_%ld", (long)getpid());
    FILE *f = fopen(in, "wb");
    cr_assert_not_null(f);
    for (int i = 0; i < 150; i++) {
        if (i == 70)
            for (int w = 0; w < 1200; w++) fputs(w + 1 < 1200 ? "tea " : "tea", f);
        else if (i % 17 != 3)
            fputs(sentences[i % 5], f);
        fputc('\n', f);
    }
    fclose(f);
    static char file_out[65536], pipe_out[65536], single_out[65536];
    /* beams 1 and 2: a file's 64 lines are 64 and 128 decoder rows, within
     * the AVX2 kernel's limit (191), past which a product goes to BLAS,
     * whose bits depend on the rows; the encoder projects the batch's
     * distinct words (the lines repeat five sentences: about 20 rows), so
     * file_too holds there for a model without attention, whose products
     * all stay under 191 rows (an attention model's keys take a row per
     * padded source token: 64 lines are about 400) */
    for (int beam = 1; beam <= 2; beam++) {
        snprintf(args, sizeof args, "--load %s --translate --beam %d", model, beam);
        translations(pipe_out, sizeof pipe_out, args, in, 1);
        translations(file_out, sizeof file_out, args, in, 0);
        snprintf(args, sizeof args, "--load %s --translate --beam %d --eval-batch 1", model, beam);
        translations(single_out, sizeof single_out, args, in, 0);
        int lines = 0;
        for (const char *p = file_out; *p; p++) lines += *p == '\n';
        cr_assert_eq(lines, 150, "beam %d: one line out per line in:\n%s", beam, file_out);
        cr_assert_str_eq(pipe_out, single_out, "beam %d: a pipe and --eval-batch 1 differ", beam);
        if (file_too)
            cr_assert_str_eq(file_out, single_out, "beam %d: a file and --eval-batch 1 differ",
                             beam);
    }
    remove(in);
}

/* The next line a child wrote on fd into line (its newline cut), waiting
 * at most 30 s; 0 when none came. */
static int answer(int fd, char *line, size_t cap)
{
    size_t n = 0;
    while (n + 1 < cap) {
        struct pollfd p = {.fd = fd, .events = POLLIN};
        if (poll(&p, 1, 30000) <= 0 || read(fd, line + n, 1) != 1) return 0;
        if (line[n] == '\n') break;
        n++;
    }
    line[n] = '\0';
    return 1;
}

/* From a pipe, --translate batches the lines that came together and
 * translates them once no whole line is left to read, never waiting for
 * more input while it holds lines: a program may wait for every answer
 * before it writes on, and may have sent part of its next line. Three
 * lines and part of a fourth in one write: the three answers come with
 * stdin still open; then the fourth's rest. Each answer is the one the
 * line gets alone (--eval-batch 1 on a file): on an attention model every
 * product of a step runs on the held panels, where a row's bits do not
 * depend on its batch (in a build without panels a pipe goes line by
 * line). */
static void check_answers_as_lines_come(const char *model)
{
    static const char *const lines[] = {"I study deeplearning", "yesterday we ate bread",
                                        "you like tea", "the teacher reads a book today"};
    char in[128], args[512], want[4096], got[512];
    snprintf(in, sizeof in, "/tmp/s2s_cli_each_%ld", (long)getpid());
    FILE *f = fopen(in, "wb");
    cr_assert_not_null(f);
    for (int i = 0; i < 4; i++) fprintf(f, "%s\n", lines[i]);
    fclose(f);
    snprintf(args, sizeof args, "--load %s --translate --beam 2 --eval-batch 1", model);
    translations(want, sizeof want, args, in, 0);
    remove(in);
    int to[2], from[2];
    cr_assert(pipe(to) == 0 && pipe(from) == 0);
    pid_t pid = fork();
    cr_assert(pid >= 0);
    if (pid == 0) {
        dup2(to[0], 0);
        dup2(from[1], 1);
        close(to[1]);
        close(from[0]);
        execl(getenv("SEQ2SEQ"), "seq2seq", "--load", model, "--translate", "--beam", "2",
              (char *)NULL);
        _exit(127);
    }
    close(to[0]);
    close(from[1]);
    cr_assert(dprintf(to[1], "%s\n%s\n%s\n%.7s", lines[0], lines[1], lines[2], lines[3]) > 0);
    const char *w = want;
    for (int i = 0; i < 4; i++) {
        if (i == 3) cr_assert(dprintf(to[1], "%s\n", lines[3] + 7) > 0);
        int came = answer(from[0], got, sizeof got);
        const char *end = strchr(w, '\n');
        int same = came && end && strlen(got) == (size_t)(end - w) &&
                   strncmp(got, w, (size_t)(end - w)) == 0;
        if (!same) kill(pid, SIGKILL); /* its end of the pipes closes: no process left */
        cr_assert(came, "line %d: no answer within 30 s while stdin stays open", i + 1);
        cr_assert(same, "line %d: '%s', alone it is '%.*s'", i + 1, got,
                  end ? (int)(end - w) : 0, w);
        w = end + 1;
    }
    close(to[1]);
    int last = answer(from[0], got, sizeof got);
    close(from[0]);
    int st;
    waitpid(pid, &st, 0);
    cr_assert(last && strstr(got, "result: translated=4"), "%s", got);
    cr_assert(WIFEXITED(st) && WEXITSTATUS(st) == 0);
    /* the three whole lines of the first write were decoded together, where the
     * panels keep a row's bits (the program asks s2s_decode_keeps_rows: the
     * tiny model's narrowest product is 64 wide, its smallest inner size 16),
     * else each alone */
    const char *b = strstr(got, "windows=");
    int batched = tg_panels_max_rows(64, 16) > 0;
    cr_assert(b && atoi(b + 8) == (batched ? 2 : 4), "%s: want windows=%d", got, batched ? 2 : 4);
}

/* --translate from a pipe on an attention model (batched as lines come),
 * the model of the real-text default. */
Test(cli, translate_from_a_pipe_answers_each_line, .timeout = 120)
{
    char model[128], args[512];
    snprintf(model, sizeof model, "/tmp/s2s_cli_stream_%ld.safetensors", (long)getpid());
    ran r;
    snprintf(args, sizeof args, TINY " --attention general --epochs 1 --save %s", model);
    run(&r, args, NULL);
    cr_assert_eq(r.rc, 0, "%s", r.err);
    check_answers_as_lines_come(model);
    check_batched_translation(model, 0);
    remove(model);
}

/* A batch of unequal lines blends and masks its padded rows: a long line
 * beside a one-token one (1000 padded tokens) fits --translate's arena. On
 * a model of the default size the blends overran it (an abort, "step arena
 * exhausted"), where neither measured part of the arena has padding. */
Test(cli, translate_unequal_lines_fit_the_arena, .timeout = 60)
{
    char model[128], args[512];
    snprintf(model, sizeof model, "/tmp/s2s_cli_unequal_%ld.safetensors", (long)getpid());
    ran r;
    snprintf(args, sizeof args, "--pairs 3000 --test-pairs 60 --steps 1 --save %s", model);
    run(&r, args, NULL);
    cr_assert_eq(r.rc, 0, "%s", r.err);
    static char in[4096];
    size_t n = 0;
    for (int w = 0; w < 500; w++) n += (size_t)snprintf(in + n, sizeof in - n, "tea ");
    snprintf(in + n, sizeof in - n, "\ntea\n");
    snprintf(args, sizeof args, "--load %s --translate", model);
    run(&r, args, in); /* stdin a regular file: one batch of the two lines */
    remove(model);
    cr_assert_eq(r.rc, 0, "%s", r.err);
    cr_assert(strstr(r.out, "result: translated=2") != NULL, "%s", r.out);
}

/* Trains a tiny model, saves it; loading it gives the same scores, and
 * --translate prints one line per input. */
Test(cli, train_save_load_translate, .timeout = 100)
{
    char model[128], args[512], line[512], again[512];
    snprintf(model, sizeof model, "/tmp/s2s_cli_model_%ld.safetensors", (long)getpid());
    ran r;
    snprintf(args, sizeof args, TINY " --epochs 3 --save %s", model);
    run(&r, args, NULL);
    cr_assert_eq(r.rc, 0, "%s", r.err);
    last_line(r.out, line, sizeof line);
    double em, bleu, tps, secs;
    int n;
    cr_assert_eq(sscanf(line, "result: exact_match=%lf bleu=%lf test_pairs=%d tokens_per_s=%lf seconds=%lf",
                        &em, &bleu, &n, &tps, &secs), 5, "%s", line);
    cr_assert(em >= 0 && em <= 1 && bleu >= 0 && bleu <= 100 && n == 60 && tps > 0, "%s", line);
    cr_assert(strstr(r.out, "epoch 1: loss") && strstr(r.out, "epoch 3: loss"), "%s", r.out);
    cr_assert_gt(bleu, 20, "a tiny model learns something: %s", line);
    cr_assert(strstr(r.out, "src: I study deeplearning") != NULL, "%s", r.out);

    snprintf(args, sizeof args, "--pairs 3000 --test-pairs 60 --epochs 0 --load %s", model);
    run(&r, args, NULL);
    cr_assert_eq(r.rc, 0, "%s", r.err);
    last_line(r.out, again, sizeof again);
    double em2, bleu2;
    cr_assert_eq(sscanf(again, "result: exact_match=%lf bleu=%lf", &em2, &bleu2), 2, "%s", again);
    cr_assert_float_eq(em2, em, 1e-9, "%s vs %s", again, line);
    cr_assert_float_eq(bleu2, bleu, 1e-9, "%s vs %s", again, line);
    /* evaluated only, the loaded model is --save's: the same scores from it */
    char copy[160];
    snprintf(copy, sizeof copy, "%s.copy", model);
    snprintf(args, sizeof args, "--pairs 3000 --test-pairs 60 --epochs 0 --load %s --save %s",
             model, copy);
    run(&r, args, NULL);
    cr_assert_eq(r.rc, 0, "%s", r.err);
    cr_assert(strstr(r.out, "at step 0: saved") != NULL, "%s", r.out);
    snprintf(args, sizeof args, "--pairs 3000 --test-pairs 60 --load %s", copy);
    run(&r, args, NULL);
    cr_assert_eq(r.rc, 0, "--save wrote no model: %s", r.err);
    last_line(r.out, again, sizeof again);
    cr_assert_eq(sscanf(again, "result: exact_match=%lf bleu=%lf", &em2, &bleu2), 2, "%s", again);
    cr_assert_float_eq(bleu2, bleu, 1e-9, "%s vs %s", again, line);
    remove(copy);
    /* without a training flag --load only evaluates (as --epochs 0) */
    snprintf(args, sizeof args, "--pairs 3000 --test-pairs 60 --load %s", model);
    run(&r, args, NULL);
    cr_assert_eq(r.rc, 0, "%s", r.err);
    cr_assert(!strstr(r.out, "epoch 1: loss"), "trained:\n%s", r.out);
    last_line(r.out, again, sizeof again);
    cr_assert_eq(sscanf(again, "result: exact_match=%lf bleu=%lf", &em2, &bleu2), 2, "%s", again);
    cr_assert_float_eq(bleu2, bleu, 1e-9, "%s vs %s", again, line);

    snprintf(args, sizeof args, "--load %s --translate", model);
    run(&r, args, "I study deeplearning\n\nyesterday we ate bread\n");
    cr_assert_eq(r.rc, 0, "%s", r.err);
    int lines = 0;
    for (const char *p = r.out; *p; p++) lines += *p == '\n';
    cr_assert_eq(lines, 4, "three translations and the result line:\n%s", r.out);
    cr_assert(strstr(r.out, "result: translated=3") != NULL, "%s", r.out);
    snprintf(args, sizeof args, "--load %s --translate --beam 3 \"you like tea\"", model);
    run(&r, args, NULL);
    cr_assert_eq(r.rc, 0, "%s", r.err);
    cr_assert(strstr(r.out, "result: translated=1") != NULL, "%s", r.out);

    /* input that is not lines of text: a NUL byte would hide the rest of
     * its line; a line that never ends would take all memory */
    snprintf(args, sizeof args, "--load %s --translate", model);
    static const char nul_in[] = "I study deeplearning\nyou like\0 tea\n";
    run_input(&r, args, nul_in, sizeof nul_in - 1);
    cr_assert_eq(r.rc, 1, "%s", r.err);
    cr_assert(strstr(r.err, "<stdin>:2: NUL byte in line") != NULL, "%s", r.err);
    /* invalid UTF-8 named by its line and byte, as in a pair file: the
     * message gave the line alone */
    run(&r, args, "I study deeplearning\nyou \xC3\x28 tea\n");
    cr_assert_eq(r.rc, 1, "%s", r.err);
    cr_assert(strstr(r.err, "<stdin>:2: invalid UTF-8 at byte 5") != NULL, "%s", r.err);
    snprintf(args, sizeof args, "--load %s --translate \"you like tea\" \"tea \xFF\"", model);
    run(&r, args, NULL);
    cr_assert_eq(r.rc, 1, "%s", r.err);
    cr_assert(strstr(r.err, "argument 2: invalid UTF-8 at byte 5") != NULL, "%s", r.err);
    snprintf(args, sizeof args, "--load %s --translate", model);
    size_t big = ((size_t)4 << 20) + 1; /* S2S_LINE_MAX_BYTES + 1, newline included */
    char *line_in = malloc(big);
    cr_assert_not_null(line_in);
    for (size_t i = 0; i < big - 1; i++) line_in[i] = i % 2 ? ' ' : 'a';
    line_in[big - 1] = '\n';
    run_input(&r, args, line_in, big);
    cr_assert_eq(r.rc, 1, "%s", r.err);
    cr_assert(strstr(r.err, "<stdin>:1: a line of more than 4194304 bytes") != NULL, "%s", r.err);
    run_input(&r, args, line_in + 1, big - 1); /* exactly the limit: translated */
    cr_assert_eq(r.rc, 0, "%s", r.err);
    cr_assert(strstr(r.out, "result: translated=1") != NULL, "%s", r.out);
    free(line_in);
    check_batched_translation(model, 1);
    remove(model);
}

/* --steps (or --seconds) alone is the limit: the default --epochs 3 does
 * not cut it short; given, --epochs still stops first. 300 pairs in
 * batches of 50: 6 steps an epoch. */
Test(cli, a_step_budget_alone_is_the_limit, .timeout = 100)
{
    ran r;
    run(&r, "--pairs 300 --test-pairs 20 --hidden 8 --embed 4 --batch 50 --steps 25 --show 0",
        NULL);
    cr_assert_eq(r.rc, 0, "%s", r.err);
    cr_assert(strstr(r.out, "epoch 5:") && !strstr(r.out, "epoch 6:"), "%s", r.out);
    run(&r, "--pairs 300 --test-pairs 20 --hidden 8 --embed 4 --batch 50 --steps 25 --epochs 2 "
            "--show 0", NULL);
    cr_assert_eq(r.rc, 0, "%s", r.err);
    cr_assert(strstr(r.out, "epoch 2:") && !strstr(r.out, "epoch 3:"), "%s", r.out);
}

/* Shards fix the arithmetic; threads only run them. */
Test(cli, threads_do_not_change_results, .timeout = 100)
{
    ran a, b;
    char la[512], lb[512];
    run(&a, TINY " --epochs 1 --threads 1", NULL);
    run(&b, TINY " --epochs 1 --threads 2", NULL);
    cr_assert_eq(a.rc, 0, "%s", a.err);
    cr_assert_eq(b.rc, 0, "%s", b.err);
    last_line(a.out, la, sizeof la);
    last_line(b.out, lb, sizeof lb);
    /* compare everything before tokens_per_s (timings differ) */
    char *ta = strstr(la, " tokens_per_s"), *tb = strstr(lb, " tokens_per_s");
    cr_assert(ta && tb);
    *ta = *tb = '\0';
    cr_assert_str_eq(la, lb);
    const char *ea = strstr(a.out, "epoch 1: loss"), *eb = strstr(b.out, "epoch 1: loss");
    cr_assert(ea && eb);
    cr_assert_eq(strncmp(ea, eb, 24), 0, "%.40s vs %.40s", ea, eb);
}

/* An attention model (Luong general over a bidirectional encoder): trains,
 * saves a model that records both, and the loaded model scores the same
 * with no attention flags given, translates greedily and with a beam. */
Test(cli, attention_train_save_load_translate, .timeout = 100)
{
    char model[128], args[512], line[512], again[512], want_map[300];
    snprintf(model, sizeof model, "/tmp/s2s_cli_attn_%ld.safetensors", (long)getpid());
    ran r;
    snprintf(args, sizeof args, TINY " --epochs 2 --attention general --bidirectional --save %s",
             model);
    run(&r, args, NULL);
    cr_assert_eq(r.rc, 0, "%s", r.err);
    last_line(r.out, line, sizeof line);
    double em, bleu;
    cr_assert_eq(sscanf(line, "result: exact_match=%lf bleu=%lf", &em, &bleu), 2, "%s", line);
    cr_assert_gt(bleu, 20, "a tiny attention model learns something: %s", line);

    snprintf(args, sizeof args, "--pairs 3000 --test-pairs 60 --epochs 0 --load %s", model);
    run(&r, args, NULL);
    cr_assert_eq(r.rc, 0, "%s", r.err);
    last_line(r.out, again, sizeof again);
    double em2, bleu2;
    cr_assert_eq(sscanf(again, "result: exact_match=%lf bleu=%lf", &em2, &bleu2), 2, "%s", again);
    cr_assert_float_eq(em2, em, 1e-9, "%s vs %s", again, line);
    cr_assert_float_eq(bleu2, bleu, 1e-9, "%s vs %s", again, line);

    snprintf(args, sizeof args, "--load %s --translate \"I study deeplearning\" \"you like tea\"",
             model);
    run(&r, args, NULL);
    cr_assert_eq(r.rc, 0, "%s", r.err);
    cr_assert(strstr(r.out, "result: translated=2") != NULL, "%s", r.out);
    char greedy[sizeof r.out];
    memcpy(greedy, r.out, sizeof greedy);
    snprintf(args, sizeof args, "--load %s --translate --beam 1 \"I study deeplearning\" \"you like tea\"",
             model);
    run(&r, args, NULL);
    /* the translations, not the result line (it holds the seconds taken) */
    char *end_greedy = strstr(greedy, "result: "), *end_again = strstr(r.out, "result: ");
    cr_assert(end_greedy && end_again, "%s", r.out);
    *end_greedy = *end_again = '\0';
    cr_assert_str_eq(r.out, greedy, "greedy decoding is deterministic");
    snprintf(args, sizeof args, "--load %s --translate --beam 4 \"I study deeplearning\" \"you like tea\"",
             model);
    run(&r, args, NULL);
    cr_assert_eq(r.rc, 0, "%s", r.err);
    cr_assert(strstr(r.out, "result: translated=2") != NULL, "%s", r.out);
    /* a long stdin: the map keeps its first 1000 sentences, not every line
     * until memory ends; every line is still translated */
    char map[128];
    snprintf(map, sizeof map, "/tmp/s2s_cli_map_%ld.svg", (long)getpid());
    static char lines[1002 * 16];
    size_t len = 0;
    for (int i = 0; i < 1002; i++) len += (size_t)sprintf(lines + len, "you like tea\n");
    snprintf(args, sizeof args, "--load %s --translate --attention-map %s >/dev/null", model, map);
    run_input(&r, args, lines, len);
    cr_assert_eq(r.rc, 0, "%s", r.err);
    snprintf(want_map, sizeof want_map, "seq2seq: attention map of the first 1000 of 1002 "
             "sentences (it keeps at most 1000, and 524288 weights in all; greedy decode) "
             "written to %s\n", map);
    cr_assert(strstr(r.err, want_map), "%s", r.err);
    FILE *svg = fopen(map, "r");
    cr_assert_not_null(svg);
    int blocks = 0;
    char row[4096];
    while (fgets(row, sizeof row, svg)) blocks += strstr(row, "<g class=\"sentence\">") != NULL;
    fclose(svg);
    cr_assert_eq(blocks, 1000);
    remove(map);
    remove(model);
}

/* Translations of the one line text (written to a file) by model. */
static void translation_of(char *out, size_t cap, const char *model, const char *text)
{
    char in[128], args[256];
    snprintf(in, sizeof in, "/tmp/s2s_cli_bom_%ld", (long)getpid());
    FILE *f = fopen(in, "wb");
    cr_assert_not_null(f);
    fputs(text, f);
    fclose(f);
    snprintf(args, sizeof args, "--load %s --translate", model);
    translations(out, cap, args, in, 1);
    remove(in);
}

/* A byte-order mark before stdin's first line is dropped, as before
 * --train's: read as text, it made the first word unknown. */
Test(cli, translate_drops_a_byte_order_mark, .timeout = 60)
{
    char model[128], args[512], plain[256], unknown[256], marked[256];
    snprintf(model, sizeof model, "/tmp/s2s_cli_bommodel_%ld.safetensors", (long)getpid());
    ran r;
    snprintf(args, sizeof args, TINY " --epochs 2 --save %s", model);
    run(&r, args, NULL);
    cr_assert_eq(r.rc, 0, "%s", r.err);
    translation_of(plain, sizeof plain, model, "I study deeplearning\n");
    translation_of(unknown, sizeof unknown, model, "zzz study deeplearning\n");
    cr_assert_str_neq(plain, unknown, "the first word changes nothing in this model");
    translation_of(marked, sizeof marked, model, "\xEF\xBB\xBFI study deeplearning\n");
    cr_assert_str_eq(marked, plain);
    remove(model);
}

/* A model with attention in a few seconds, saved to model. */
static void tiny_attention_model(char *model, size_t n)
{
    char args[512];
    snprintf(model, n, "/tmp/s2s_cli_tiny_%ld.safetensors", (long)getpid());
    ran r;
    snprintf(args, sizeof args, "--pairs 200 --test-pairs 10 --hidden 8 --embed 4 --steps 2 "
             "--attention general --show 0 --save %s", model);
    run(&r, args, NULL);
    cr_assert_eq(r.rc, 0, "%s", r.err);
}

/* An --attention-map that cannot be written whole (here a file-size limit,
 * as a full disk) leaves the previous map as it was, and no temporary: it
 * was written in place, a truncated SVG where the map had been. */
Test(cli, a_failed_attention_map_keeps_the_previous_one, .timeout = 60)
{
    char model[128], map[128], cmd[1024], old[64] = "";
    tiny_attention_model(model, sizeof model);
    snprintf(map, sizeof map, "/tmp/s2s_cli_amap_%ld.svg", (long)getpid());
    FILE *f = fopen(map, "w");
    cr_assert_not_null(f);
    fputs("<old/>\n", f);
    fclose(f);
    /* 8 blocks (512 bytes each under dash's ulimit, 1 KiB under bash's):
     * the map of one sentence is larger; SIGXFSZ ignored, so the write
     * fails with EFBIG as on a full disk */
    snprintf(cmd, sizeof cmd, "trap '' XFSZ; ulimit -f 8; %s --load %s --attention-map %s "
             "--translate 'you like tea' >/dev/null 2>/dev/null", getenv("SEQ2SEQ"), model, map);
    int st = system(cmd);
    cr_assert(WIFEXITED(st) && WEXITSTATUS(st) == 1, "status %d", st);
    f = fopen(map, "r");
    cr_assert_not_null(f);
    cr_assert_not_null(fgets(old, sizeof old, f));
    fclose(f);
    cr_assert_str_eq(old, "<old/>\n", "the previous map was overwritten");
    char tmp[160];
    snprintf(tmp, sizeof tmp, "%s.tmp.", map);
    cmd[0] = '\0';
    snprintf(cmd, sizeof cmd, "ls %s* 2>/dev/null | grep -q .", tmp);
    cr_assert_neq(system(cmd), 0, "a temporary %s* was left", tmp);
    /* through a link: its target gets the map, the link stays a link (the
     * rename had put a file in its place) */
    char link[160], first[8] = "";
    snprintf(link, sizeof link, "%s.link.svg", map);
    cr_assert_eq(symlink(map, link), 0);
    snprintf(cmd, sizeof cmd, "%s --load %s --attention-map %s --translate 'you like tea' "
             ">/dev/null 2>/dev/null", getenv("SEQ2SEQ"), model, link);
    cr_assert_eq(system(cmd), 0);
    struct stat ls;
    cr_assert(lstat(link, &ls) == 0 && S_ISLNK(ls.st_mode), "the link was replaced");
    f = fopen(map, "r");
    cr_assert_not_null(f);
    cr_assert_not_null(fgets(first, sizeof first, f));
    fclose(f);
    cr_assert_str_eq(first, "<?xml v", "the link's target kept the old map");
    remove(link);
    remove(map);
    remove(model);
}

/* The map keeps at most S2S_ATTNMAP_MAX_CELLS weights: a line of 1000
 * tokens decoded to 1000 rows (this model ends no sentence early) is a
 * million, an SVG of 131 MB; the map ends at the first sentence that does
 * not fit, and every line is still translated. */
Test(cli, the_attention_map_keeps_a_bounded_number_of_weights, .timeout = 60)
{
    char model[128], map[128], args[512], want[400];
    tiny_attention_model(model, sizeof model);
    snprintf(map, sizeof map, "/tmp/s2s_cli_cells_%ld.svg", (long)getpid());
    static char lines[2 * 4 * 1000 + 32];
    size_t len = (size_t)sprintf(lines, "you like tea\n");
    for (int l = 0; l < 2; l++) {
        for (int i = 0; i < 1000; i++) len += (size_t)sprintf(lines + len, "%s", i ? " tea" : "tea");
        lines[len++] = '\n';
    }
    ran r;
    snprintf(args, sizeof args, "--load %s --max-len 1000 --translate --attention-map %s "
             ">/dev/null", model, map);
    run_input(&r, args, lines, len);
    cr_assert_eq(r.rc, 0, "%s", r.err);
    snprintf(want, sizeof want, "seq2seq: attention map of the first 1 of 3 sentences (it keeps "
             "at most 1000, and 524288 weights in all; greedy decode) written to %s\n", map);
    cr_assert(strstr(r.err, want), "%s", r.err);
    struct stat st;
    cr_assert_eq(stat(map, &st), 0);
    cr_assert_lt(st.st_size, 1 << 20, "the map of one short sentence is %lld bytes",
                 (long long)st.st_size);
    remove(map);
    remove(model);
}

/* A reader that leaves, with SIGPIPE ignored (a shell's trap '' PIPE):
 * the endless stdin ends with exit 1 and "stdout: write error", where it
 * was translated for ever into the closed pipe. */
Test(cli, translating_into_a_pipe_whose_reader_left_ends, .timeout = 60)
{
    char model[128], cmd[1024], rcf[64], errf[64], got[16] = "", err[512] = "";
    tiny_attention_model(model, sizeof model);
    snprintf(rcf, sizeof rcf, "/tmp/s2s_cli_rc_%ld", (long)getpid());
    snprintf(errf, sizeof errf, "/tmp/s2s_cli_perr_%ld", (long)getpid());
    snprintf(cmd, sizeof cmd, "yes 'you like tea' | (trap '' PIPE; timeout 30 %s --load %s "
             "--translate 2>%s; echo $? >%s) | head -n 1 >/dev/null", getenv("SEQ2SEQ"), model,
             errf, rcf);
    cr_assert_eq(system(cmd), 0);
    FILE *f = fopen(rcf, "r");
    cr_assert_not_null(f);
    cr_assert_not_null(fgets(got, sizeof got, f));
    fclose(f);
    f = fopen(errf, "r");
    cr_assert_not_null(f);
    size_t n = fread(err, 1, sizeof err - 1, f);
    err[n] = '\0';
    fclose(f);
    cr_assert_str_eq(got, "1\n", "exit %s (124: still translating after 30 s): %s", got, err);
    cr_assert(strstr(err, "seq2seq: stdout: write error: Broken pipe"), "%s", err);
    remove(rcf);
    remove(errf);
    remove(model);
}

/* The default model's evaluation over sources of unequal lengths fits its
 * arena (the decoding probe once measured equal lengths only, and a default
 * --threads 2 run died at its first evaluation: "step arena exhausted"). */
Test(cli, default_model_evaluates_in_its_arena, .timeout = 300)
{
    ran r;
    run(&r, "--threads 2 --pairs 2000 --test-pairs 200 --steps 1 --show 0", NULL);
    cr_assert_eq(r.rc, 0, "%s", r.err);
    cr_assert(strstr(r.out, "result: exact_match=") != NULL, "%s", r.out);
    run(&r, "--threads 2 --pairs 1000 --test-pairs 100 --steps 1 --show 0 --attention dot --cell mgu --beam 2", NULL);
    cr_assert_eq(r.rc, 0, "%s", r.err);
    cr_assert(strstr(r.out, "result: exact_match=") != NULL, "%s", r.out);
}

/* Pair files count in the memory: a file past its share (half of what is
 * available with words, a quarter with subwords) is refused at the line
 * that crosses it, exit 1, before the kernel would kill the run; what the
 * pairs and their ids hold counts in the run's plan as training data. */
Test(cli, pairs_larger_than_their_share_of_the_memory_are_refused, .timeout = 100)
{
    char path[128], args[512];
    snprintf(path, sizeof path, "/tmp/s2s_cli_mem_%ld.tsv", (long)getpid());
    FILE *f = fopen(path, "wb");
    cr_assert_not_null(f);
    for (int i = 0; i < 400; i++) fprintf(f, "the cat %d sat\tle chat %d\n", i, i);
    fclose(f);
    ran r;
    snprintf(args, sizeof args, "--train %s --subwords 0 --steps 1 --show 0", path);
    setenv("TG_MAX_MEMORY", "16K", 1);
    run(&r, args, NULL);
    cr_assert_eq(r.rc, 1, "%s", r.err);
    char want[400];
    snprintf(want, sizeof want, "seq2seq: %s:", path);
    cr_assert(strncmp(r.err, want, strlen(want)) == 0, "%s", r.err);
    cr_assert(strstr(r.err, ": holding the pairs read up to this line takes ") &&
                  strstr(r.err, ", more than half of the 16.0 KiB available (TG_MAX_MEMORY), the "
                                "rest kept for their ids and vocabularies: train on a shorter "
                                "corpus\n"),
              "%s", r.err);
    snprintf(args, sizeof args, "--train %s --steps 1 --show 0", path); /* subwords */
    run(&r, args, NULL);
    cr_assert_eq(r.rc, 1, "%s", r.err);
    cr_assert(strstr(r.err, ", more than a quarter of the 16.0 KiB available (TG_MAX_MEMORY), "
                            "the rest kept for their pieces, ids and vocabularies"),
              "%s", r.err);
    /* under a cap the pairs fit but the step arenas do not: the plan names
     * the data too */
    setenv("TG_MAX_MEMORY", "1M", 1);
    snprintf(args, sizeof args, "--train %s --subwords 0 --steps 1 --show 0 --hidden 8 --embed 8 "
             "--batch 4 --eval-batch 4", path);
    run(&r, args, NULL);
    unsetenv("TG_MAX_MEMORY");
    cr_assert_eq(r.rc, 1, "%s", r.err);
    cr_assert(strstr(r.err, "seq2seq: this configuration needs ") &&
                  strstr(r.err, " KiB) but 1.0 MiB is available (TG_MAX_MEMORY): lower --hidden, "
                                "--embed, --layers, --batch or --eval-batch, or train on fewer "
                                "pairs\n"),
              "%s", r.err);
    double data_kib;
    const char *d = strstr(r.err, ", training data ");
    cr_assert(d && sscanf(d, ", training data %lf KiB", &data_kib) == 1, "%s", r.err);
    cr_assert(data_kib > 20 && data_kib < 200, "400 short pairs and their ids: %g KiB", data_kib);
    remove(path);
}

/* A batch holds at most every training pair: --batch 65536 over a corpus of
 * 3 pairs measures and takes steps of 3 (it measured 65536 rows and ended
 * on "out of memory (2 shards)"). */
Test(cli, batch_larger_than_the_corpus_trains_on_every_pair)
{
    char path[128], args[512];
    snprintf(path, sizeof path, "/tmp/s2s_cli_tiny_%ld.tsv", (long)getpid());
    write_file(path, "a b\tc d\ne f\tg h\ni j\tk l\n");
    snprintf(args, sizeof args, "--train %s --test %s --subwords 0 --batch 65536 --hidden 256 "
             "--steps 2 --show 0", path, path);
    ran r;
    run(&r, args, NULL);
    remove(path);
    cr_assert_eq(r.rc, 0, "%s", r.err);
    cr_assert(strstr(r.out, "result: ") && strstr(r.out, "test_pairs=3"), "%s", r.out);
}

/* pairs of 10 source and tgt target words drawn from 6000 (xorshift64),
 * the first pair of one word a side when short_first. */
static void write_words(const char *path, int pairs, int tgt, int short_first)
{
    FILE *f = fopen(path, "wb");
    cr_assert_not_null(f);
    uint64_t x = 88172645463325252ull;
    for (int i = 0; i < pairs; i++)
        for (int side = 0; side < 2; side++)
            for (int w = 0, n = short_first && i == 0 ? 1 : side ? tgt : 10; w < n; w++) {
                x ^= x << 13, x ^= x >> 7, x ^= x << 17;
                fprintf(f, "w%d%s", (int)(x % 6000), w < n - 1 ? " " : side ? "\n" : "\t");
            }
    fclose(f);
}

/* The step arenas are measured on batches of many distinct words: each
 * distinct one is projected, and a probe of one repeated id measured one
 * row (6000 words with wide embeddings and a small hidden size aborted in
 * the first step, "step arena exhausted", exit 134); and on a batch with
 * one short pair, as a length-sorted batch has: its masks, all its logit
 * rows and distinct ids at once, which neither probe had (a GRU with a
 * wide state and narrow embeddings overflowed). */
Test(cli, many_distinct_words_fit_the_measured_arena)
{
    const char *runs[] = {"--embed 2048 --hidden 8 --steps 3",
                          "--cell gru --embed 8 --hidden 512 --attention none --epochs 1"};
    char path[128], args[512];
    snprintf(path, sizeof path, "/tmp/s2s_cli_words_%ld.tsv", (long)getpid());
    for (int k = 0; k < 2; k++) {
        write_words(path, k ? 700 : 3000, k ? 11 : 10, k);
        snprintf(args, sizeof args, "--train %s --subwords 0 %s --show 0 --threads 1 --shards 2",
                 path, runs[k]);
        ran r;
        run(&r, args, NULL);
        remove(path);
        cr_assert_eq(r.rc, 0, "%s: %s", runs[k], r.err);
        cr_assert(strstr(r.out, "result: "), "%s", r.out);
    }
}

/* --train of another corpus on a --load'ed model: the share of its tokens
 * the model's vocabularies lack is said (they train as <unk>; a corpus of
 * another language trained on nothing else, silently). */
Test(cli, a_loaded_models_unknown_words_are_counted, .timeout = 100)
{
    char model[128], tsv[128], args[512];
    snprintf(model, sizeof model, "/tmp/s2s_cli_unk_%ld.st", (long)getpid());
    snprintf(tsv, sizeof tsv, "/tmp/s2s_cli_unk_%ld.tsv", (long)getpid());
    FILE *f = fopen(tsv, "wb");
    cr_assert_not_null(f);
    for (int i = 0; i < 30; i++) fputs("ein Haus\tune maison\nzwei Hunde\tdeux chiens\n", f);
    fclose(f);
    ran r;
    snprintf(args, sizeof args, "--pairs 200 --test-pairs 20 --hidden 8 --embed 4 --steps 1 "
             "--show 0 --threads 1 --save %s", model);
    run(&r, args, NULL);
    cr_assert_eq(r.rc, 0, "%s", r.err);
    snprintf(args, sizeof args, "--load %s --train %s --steps 1 --show 0 --threads 1", model, tsv);
    run(&r, args, NULL);
    cr_assert_eq(r.rc, 0, "%s", r.err);
    char want[256];
    snprintf(want, sizeof want, "seq2seq: %s: 100.0%% of the source and 100.0%% of the target "
             "tokens are not in the loaded model's vocabularies: they train as <unk>\n", tsv);
    cr_assert(strstr(r.err, want), "%s", r.err);
    remove(model);
    remove(tsv);
}

/* --show's sentences are for a person at a terminal: a control character
 * from the data (and so from the vocabulary) is shown escaped, not sent
 * raw (an ESC [2J in a pair cleared the screen). */
Test(cli, shown_sentences_escape_control_characters, .timeout = 60)
{
    char tsv[128], args[512];
    snprintf(tsv, sizeof tsv, "/tmp/s2s_cli_esc_%ld.tsv", (long)getpid());
    FILE *f = fopen(tsv, "wb");
    cr_assert_not_null(f);
    for (int i = 0; i < 20; i++) fputs("go \x1B[2J now\tva \x1B[2J\n", f);
    fclose(f);
    snprintf(args, sizeof args, "--train %s --subwords 0 --hidden 8 --embed 4 --steps 1 "
             "--show 1 --threads 1", tsv);
    ran r;
    run(&r, args, NULL);
    remove(tsv);
    cr_assert_eq(r.rc, 0, "%s", r.err);
    cr_assert(strstr(r.out, "  src: go \\x1B [ 2J now\n  ref: va \\x1B [ 2J\n"), "%s", r.out);
    cr_assert_null(memchr(r.out, 0x1B, strlen(r.out)), "a raw ESC in:\n%s", r.out);
}

/* The model file's s2s.dropout. */
static double saved_dropout(const char *path)
{
    char v[64];
    cr_assert(tg_checkpoint_peek_meta(path, "s2s.dropout", v, sizeof v), "%s: no s2s.dropout",
              path);
    return strtod(v, NULL);
}

/* --dropout's default depends on the data: 0.3 on a user's pairs (without
 * it the default model learns a small corpus by heart and its test BLEU
 * stops rising), 0 on the built-in corpus; a given 0 is kept, and a
 * --load'ed model trains on with its own. */
Test(cli, the_dropout_default_depends_on_the_data, .timeout = 100)
{
    char tsv[128], m[4][128], args[1024];
    long pid = (long)getpid();
    snprintf(tsv, sizeof tsv, "/tmp/s2s_cli_drop_%ld.tsv", pid);
    for (int i = 0; i < 4; i++) snprintf(m[i], sizeof m[i], "/tmp/s2s_cli_drop_%ld_%d.st", pid, i);
    write_file(tsv, "ein Haus\ta house\nzwei Katzen\ttwo cats\nein Hund\ta dog\n");
    const char *small = "--hidden 8 --embed 4 --subwords 0 --steps 2 --show 0";
    ran r;
    snprintf(args, sizeof args, "--train %s --test %s %s --save %s", tsv, tsv, small, m[0]);
    run(&r, args, NULL);
    cr_assert_eq(r.rc, 0, "%s", r.err);
    cr_assert_float_eq(saved_dropout(m[0]), 0.3, 1e-12);
    snprintf(args, sizeof args, "--pairs 50 --test-pairs 5 %s --save %s", small, m[1]);
    run(&r, args, NULL);
    cr_assert_eq(r.rc, 0, "%s", r.err);
    cr_assert_eq(saved_dropout(m[1]), 0.0);
    snprintf(args, sizeof args, "--train %s --test %s %s --dropout 0 --save %s", tsv, tsv, small,
             m[2]);
    run(&r, args, NULL);
    cr_assert_eq(r.rc, 0, "%s", r.err);
    cr_assert_eq(saved_dropout(m[2]), 0.0, "--dropout 0 given on --train pairs");
    snprintf(args, sizeof args, "--train %s --test %s --load %s --steps 1 --show 0 --save %s", tsv,
             tsv, m[2], m[3]);
    run(&r, args, NULL);
    cr_assert_eq(r.rc, 0, "%s", r.err);
    cr_assert_eq(saved_dropout(m[3]), 0.0, "a loaded model without dropout trains on without");
    remove(tsv);
    for (int i = 0; i < 4; i++) remove(m[i]);
}
