/* Default corpora: the King James Bible from Debian's bible-kjv package. */
#ifndef TG_EXAMPLES_CORPUS_H
#define TG_EXAMPLES_CORPUS_H

#include <stddef.h>

#ifdef __cplusplus
extern "C" {
#endif

/* The whole King James Bible as UTF-8 bytes (malloc'd, NUL-terminated), as
 * `bible 'gen1:1-rev22:21'` prints it (about 4.3 MB). The dump is cached in
 * $XDG_CACHE_HOME/tapegrad/kjv.txt (or ~/.cache/tapegrad/kjv.txt) and read
 * from there next time; the cache is written atomically and is optional.
 * name receives the file name to use in messages (the cache path, or
 * "bible-kjv"). 0 ok; -1 with a message in err (e.g. which package to install
 * when the `bible` program is missing). */
int tg_corpus_kjv(char **bytes, size_t *len, char *name, size_t namelen, char *err,
                  size_t errlen);

#ifdef __cplusplus
}
#endif
#endif
