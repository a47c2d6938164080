/* SIGKILL during training never costs more than the work since the last
 * checkpoint, and never a loadable checkpoint.
 *
 *     kill_test KILL_TRAINEE [KILLS]
 *
 * 1. Runs kill_trainee once without interruption (reference hash, and its
 *    duration D).
 * 2. KILLS times (default 30): starts kill_trainee on the same checkpoint
 *    path, waits a random time (on average the time the remaining steps
 *    need, over the kills left: kills spread over the run), SIGKILLs it. After each
 *    kill the checkpoint, if one exists yet, must load completely into a
 *    fresh model, its step must not go backwards, and at most one temporary
 *    file (the killed writer's) may lie beside it.
 * 3. Lets kill_trainee run to the end: it must resume from the last
 *    checkpoint and finish with parameters bitwise equal to the reference.
 * Prints the figures; exit 0 on success, 1 on any failure. */
#include <dirent.h>
#include <errno.h>
#include <inttypes.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "resume_model.h"

#define TOTAL "600"
#define EVERY "1" /* a save every step: most kills land in or near a save */

static double now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

/* Starts the trainee with stdout into a pipe (*out) and stderr inherited. */
static pid_t spawn(const char *exe, const char *ckpt, int *out)
{
    int fd[2];
    if (pipe(fd) != 0) return -1;
    pid_t pid = fork();
    if (pid == 0) {
        dup2(fd[1], 1);
        close(fd[0]);
        close(fd[1]);
        execl(exe, exe, ckpt, TOTAL, EVERY, (char *)NULL);
        _exit(127);
    }
    close(fd[1]);
    *out = fd[0];
    return pid;
}

/* Runs the trainee to the end; its "done ..." line into line. */
static int run_to_end(const char *exe, const char *ckpt, char *line, size_t n)
{
    int out = -1;
    pid_t pid = spawn(exe, ckpt, &out);
    if (pid < 0) return -1;
    FILE *f = fdopen(out, "r");
    line[0] = '\0';
    if (!f || !fgets(line, (int)n, f)) line[0] = '\0';
    if (f) fclose(f);
    int st;
    waitpid(pid, &st, 0);
    return WIFEXITED(st) && WEXITSTATUS(st) == 0 && strncmp(line, "done ", 5) == 0 ? 0 : -1;
}

static int count_temps(const char *dir, const char *base)
{
    DIR *d = opendir(dir);
    int n = 0;
    size_t bl = strlen(base);
    for (struct dirent *e; d && (e = readdir(d)) != NULL;)
        if (strncmp(e->d_name, base, bl) == 0 && strncmp(e->d_name + bl, ".tmp.", 5) == 0) n++;
    if (d) closedir(d);
    return n;
}

static void clean(const char *dir)
{
    DIR *d = opendir(dir);
    for (struct dirent *e; d && (e = readdir(d)) != NULL;) {
        if (e->d_name[0] == '.') continue;
        char p[1024];
        snprintf(p, sizeof p, "%s/%s", dir, e->d_name);
        unlink(p);
    }
    if (d) closedir(d);
    rmdir(dir);
}

/* The checkpoint loads into a fresh model; its step in *step. */
static int verify(const char *ckpt, uint64_t *step, char *err, size_t errlen)
{
    rm_run r;
    if (rm_init(&r, "adam", 1234, err, errlen) != 0) return -1;
    int rc = tg_trainckpt_load(r.ck, ckpt, err, errlen);
    *step = r.step;
    rm_free(&r);
    return rc;
}

int main(int argc, char **argv)
{
    if (argc < 2) {
        fprintf(stderr, "usage: kill_test KILL_TRAINEE [KILLS]\n");
        return 2;
    }
    const char *exe = argv[1];
    int kills = argc > 2 ? atoi(argv[2]) : 30;
    const char *tmp = getenv("TMPDIR");
    char dir[512], ckpt[600], ref[600], line[256], ref_line[256], err[512];
    snprintf(dir, sizeof dir, "%s/tg_kill_XXXXXX", tmp && tmp[0] ? tmp : "/tmp");
    if (!mkdtemp(dir)) {
        perror("mkdtemp");
        return 1;
    }
    snprintf(ckpt, sizeof ckpt, "%s/run.ckpt", dir);
    snprintf(ref, sizeof ref, "%s/ref.ckpt", dir);

    double t0 = now();
    if (run_to_end(exe, ref, ref_line, sizeof ref_line) != 0) {
        fprintf(stderr, "kill_test: reference run failed\n");
        clean(dir);
        return 1;
    }
    double d = now() - t0;
    /* Steps per second, re-estimated after each kill: the speed of a step
     * (mostly its fsync) varies a lot, and the waits must spread the kills
     * over the whole run instead of landing after it has finished. */
    double rate = atof(TOTAL) / d;
    srand((unsigned)time(NULL) ^ (unsigned)getpid());
    printf("kill_test: reference run of " TOTAL " steps took %.2f s: %s", d, ref_line);

    int fails = 0, absent = 0, in_save = 0, finished = 0;
    uint64_t last = 0;
    for (int k = 0; k < kills && !fails; k++) {
        int out = -1;
        pid_t pid = spawn(exe, ckpt, &out);
        if (pid < 0) {
            perror("kill_test: fork");
            fails++;
            break;
        }
        double per_kill = (atof(TOTAL) - (double)last) / (kills - k + 1) / rate;
        double max_wait = per_kill < 0.4 ? per_kill : 0.4;
        double wait = 0.001 + 2 * max_wait * rand() / (double)RAND_MAX;
        struct timespec ts = {(time_t)wait, (long)((wait - (double)(time_t)wait) * 1e9)};
        nanosleep(&ts, NULL);
        kill(pid, SIGKILL);
        int st;
        waitpid(pid, &st, 0);
        close(out);
        finished += WIFEXITED(st); /* ended before the signal came */
        int temps = count_temps(dir, "run.ckpt");
        in_save += temps > 0;
        if (temps > 1) {
            fprintf(stderr, "kill %d: %d temporary files beside the checkpoint\n", k, temps);
            fails++;
        }
        if (access(ckpt, F_OK) != 0) {
            absent++; /* killed before its first save */
            continue;
        }
        uint64_t step = 0;
        if (verify(ckpt, &step, err, sizeof err) != 0) {
            fprintf(stderr, "kill %d (after %.3f s): checkpoint does not load: %s\n", k, wait, err);
            fails++;
        } else if (step < last) {
            fprintf(stderr, "kill %d: checkpoint went back from step %" PRIu64 " to %" PRIu64 "\n",
                    k, last, step);
            fails++;
        }
        if (step > last && wait > 0.005) rate = 0.5 * rate + 0.5 * (double)(step - last) / wait;
        printf("kill %2d after %5.1f ms: %s, checkpoint at step %" PRIu64 "%s\n", k, wait * 1e3,
               WIFEXITED(st) ? "had exited" : "killed", step, temps ? ", temp file left" : "");
        last = step;
    }
    if (!fails && run_to_end(exe, ckpt, line, sizeof line) != 0) {
        fprintf(stderr, "kill_test: the final resumed run failed\n");
        fails++;
    }
    if (!fails && strcmp(line, ref_line) != 0) {
        fprintf(stderr, "kill_test: resumed run ended with %s, the uninterrupted run with %s", line,
                ref_line);
        fails++;
    }
    printf("kill_test: %d SIGKILLs (%d came after the run had ended), %d landed during a save "
           "(temp file left), %d before the first checkpoint; checkpoint loaded after every "
           "other kill (last at step %" PRIu64 " of " TOTAL "); final run %s; %.1f s\n",
           kills, finished, in_save, absent, last,
           fails ? "FAILED" : "bitwise equal to the uninterrupted run", now() - t0);
    clean(dir);
    return fails ? 1 : 0;
}
