/* Replays fuzz inputs without libFuzzer: the regression side of fuzzing.
 *
 * Linked with one harness (its LLVMFuzzerTestOneInput), this program feeds
 * it every file named on the command line, and every file inside every
 * directory named there (not recursive). The normal test suite runs it over
 * fuzz/corpus/<name>/ and fuzz/regressions/<name>/, so the seeds and every
 * crash input ever found are rerun by each build, sanitized or not. A
 * directory that does not exist counts as empty (regressions/<name>/ only
 * appears once a crash has been found).
 *
 * Exit 0 when every input ran (a bug shows as a crash, a sanitizer report or
 * a failed harness check, which abort); 1 when an input cannot be read. */
#include <dirent.h>
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static int read_whole(const char *path, uint8_t **buf, size_t *len)
{
    FILE *f = fopen(path, "rb");
    if (!f) return -1;
    size_t cap = 4096, n = 0;
    uint8_t *b = malloc(cap);
    while (b) {
        n += fread(b + n, 1, cap - n, f);
        if (n < cap) break;
        uint8_t *nb = realloc(b, cap * 2);
        if (!nb) { free(b); b = NULL; break; }
        b = nb;
        cap *= 2;
    }
    int bad = ferror(f);
    fclose(f);
    if (!b || bad) { free(b); return -1; }
    *buf = b;
    *len = n;
    return 0;
}

/* Runs one file through the harness from an exact-size heap copy, so ASan
 * sees a read one past the end as the overflow it is. */
static int run_file(const char *path)
{
    uint8_t *buf;
    size_t len;
    if (read_whole(path, &buf, &len) != 0) {
        fprintf(stderr, "replay: %s: %s\n", path, strerror(errno ? errno : EIO));
        return -1;
    }
    uint8_t *exact = malloc(len ? len : 1);
    if (!exact) { free(buf); return -1; }
    memcpy(exact, buf, len);
    free(buf);
    LLVMFuzzerTestOneInput(exact, len);
    free(exact);
    return 0;
}

static int cmp_str(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

/* Files of a directory in name order (stable logs). */
static int run_dir(const char *dir, size_t *count)
{
    DIR *d = opendir(dir);
    if (!d) return errno == ENOENT ? 0 : -1;
    char **names = NULL;
    size_t n = 0, cap = 0;
    int rc = 0;
    for (struct dirent *e; (e = readdir(d)) != NULL;) {
        if (e->d_name[0] == '.') continue; /* ., .., .gitkeep */
        if (n == cap) {
            cap = cap ? cap * 2 : 64;
            char **nn = realloc(names, cap * sizeof *names);
            if (!nn) { rc = -1; break; }
            names = nn;
        }
        size_t len = strlen(dir) + strlen(e->d_name) + 2;
        if (!(names[n] = malloc(len))) { rc = -1; break; }
        snprintf(names[n++], len, "%s/%s", dir, e->d_name);
    }
    closedir(d);
    if (n) qsort(names, n, sizeof *names, cmp_str);
    for (size_t i = 0; i < n; i++) {
        struct stat st;
        if (rc == 0 && stat(names[i], &st) == 0 && S_ISREG(st.st_mode)) {
            if (run_file(names[i]) != 0) rc = -1;
            else (*count)++;
        }
        free(names[i]);
    }
    free(names);
    return rc;
}

int main(int argc, char **argv)
{
    int rc = 0;
    for (int i = 1; i < argc; i++) {
        struct stat st;
        size_t count = 0;
        if (stat(argv[i], &st) == 0 && S_ISDIR(st.st_mode)) {
            if (run_dir(argv[i], &count) != 0) rc = 1;
        } else if (stat(argv[i], &st) != 0 && errno == ENOENT) {
            /* a regressions folder that was never needed */
        } else if (run_file(argv[i]) != 0) {
            rc = 1;
        } else {
            count = 1;
        }
        printf("replay: %s: %zu input(s)\n", argv[i], count);
    }
    return rc;
}
