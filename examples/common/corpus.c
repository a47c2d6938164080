/* The default corpus for the character models (see corpus.h). */
#include "corpus.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "text.h"

#define KJV_COMMAND "bible 'gen1:1-rev22:21'"

/* "<cache>/tapegrad" into dir; 0 when a cache location is known. */
static int cache_dir(char *dir, size_t n)
{
    const char *xdg = getenv("XDG_CACHE_HOME"), *home = getenv("HOME");
    int w;
    if (xdg && xdg[0] == '/')
        w = snprintf(dir, n, "%s/tapegrad", xdg);
    else if (home && home[0])
        w = snprintf(dir, n, "%s/.cache/tapegrad", home);
    else
        return -1;
    return w > 0 && (size_t)w < n ? 0 : -1;
}

/* Runs the bible program and reads its output. */
static int dump_bible(char **bytes, size_t *len, char *err, size_t errlen)
{
    FILE *p = popen(KJV_COMMAND " 2>/dev/null", "r");
    if (!p) {
        snprintf(err, errlen, "cannot run `%s`: %s", KJV_COMMAND, strerror(errno));
        return -1;
    }
    size_t cap = 1 << 22, n = 0;
    char *buf = malloc(cap + 1);
    while (buf) {
        n += fread(buf + n, 1, cap - n, p);
        if (n < cap) break;
        char *bigger = realloc(buf, 2 * cap + 1);
        if (!bigger) free(buf);
        buf = bigger;
        cap *= 2;
    }
    int status = pclose(p);
    if (!buf) {
        snprintf(err, errlen, "out of memory reading `%s`", KJV_COMMAND);
        return -1;
    }
    if (status == -1 || !WIFEXITED(status) || WEXITSTATUS(status) != 0 || n == 0) {
        free(buf);
        if (WIFEXITED(status) && WEXITSTATUS(status) == 127)
            snprintf(err, errlen, "no --text given, and the default corpus needs the `bible` "
                     "program: install the Debian package bible-kjv (apt-get install bible-kjv) "
                     "or pass --text FILE");
        else
            snprintf(err, errlen, "`%s` failed (exit status %d, %zu bytes)", KJV_COMMAND,
                     WIFEXITED(status) ? WEXITSTATUS(status) : -1, n);
        return -1;
    }
    buf[n] = '\0';
    *bytes = buf;
    *len = n;
    return 0;
}

/* Best effort: a failure only means no cache next time. 0 when written. */
static int write_cache(const char *dir, const char *path, const char *bytes, size_t len)
{
    char parent[4096], tmp[4300];
    snprintf(parent, sizeof parent, "%s", dir);
    char *slash = strrchr(parent, '/');
    if (slash && slash != parent) {
        *slash = '\0';
        mkdir(parent, 0777);
    }
    mkdir(dir, 0777);
    snprintf(tmp, sizeof tmp, "%s.tmp.%ld", path, (long)getpid());
    FILE *f = fopen(tmp, "wb");
    if (!f) return -1;
    int ok = fwrite(bytes, 1, len, f) == len;
    ok = (fclose(f) == 0) && ok;
    if (ok && rename(tmp, path) == 0) return 0;
    remove(tmp);
    return -1;
}

int tg_corpus_kjv(char **bytes, size_t *len, char *name, size_t namelen, char *err, size_t errlen)
{
    char dir[4096], path[4200];
    int have_dir = cache_dir(dir, sizeof dir) == 0;
    if (have_dir) {
        snprintf(path, sizeof path, "%s/kjv.txt", dir);
        char ignored[256];
        if (tg_file_read_all(path, TG_TEXT_MAX_BYTES, bytes, len, ignored, sizeof ignored) == 0) {
            if (*len > 0) {
                snprintf(name, namelen, "%s", path);
                return 0;
            }
            free(*bytes);
        }
    }
    if (dump_bible(bytes, len, err, errlen) != 0) return -1;
    snprintf(name, namelen, "bible-kjv");
    if (have_dir && write_cache(dir, path, *bytes, *len) == 0) snprintf(name, namelen, "%s", path);
    return 0;
}
