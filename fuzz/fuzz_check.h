/* Shared by the fuzz harnesses: a property that must hold for every input.
 * A violation aborts, which libFuzzer records as a crash and the replay
 * program (replay.c) turns into a failed test. */
#ifndef TG_FUZZ_CHECK_H
#define TG_FUZZ_CHECK_H

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define FUZZ_CHECK(cond, ...)                                                          \
    do {                                                                               \
        if (!(cond)) {                                                                 \
            fprintf(stderr, "%s:%d: fuzz property failed: %s: ", __FILE__, __LINE__, #cond); \
            fprintf(stderr, __VA_ARGS__);                                              \
            fputc('\n', stderr);                                                       \
            abort();                                                                   \
        }                                                                              \
    } while (0)

/* Every error path must leave a one-line, NUL-terminated message. */
#define FUZZ_CHECK_MSG(err, errlen)                                                    \
    do {                                                                               \
        FUZZ_CHECK((err)[0] != '\0' && memchr((err), '\0', (errlen)) != NULL &&       \
                       strchr((err), '\n') == NULL,                                    \
                   "error message empty, unterminated or multi-line: '%.200s'", (err)); \
        fuzz_note(err);                                                                \
    } while (0)

/* FUZZ_VERBOSE=1 in the environment prints every rejection message (to see
 * what a seed or a regression input exercises). */
static inline void fuzz_note(const char *msg)
{
    static int verbose = -1;
    if (verbose < 0) verbose = getenv("FUZZ_VERBOSE") != NULL;
    if (verbose) fprintf(stderr, "  rejected: %s\n", msg);
}

#endif
