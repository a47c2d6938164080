/* Self-test of leak_check.c, run only in the sanitizer build: one test leaks
 * a block on purpose and must be reported as failed, the other frees what it
 * allocates and must pass. leak_selftest.sh checks both verdicts, so a broken
 * leak hook (leaks no longer failing tests) fails CI instead of going quiet. */
#include <criterion/criterion.h>
#include <stdlib.h>
#include <string.h>

/* The pointer goes through a volatile so the compiler cannot drop malloc. */
static void *volatile sink;

Test(leak_selftest, leaks)
{
    sink = malloc(64);
    cr_assert_not_null(sink);
    memset(sink, 1, 64);
    sink = NULL; /* last reference gone: a direct leak */
}

Test(leak_selftest, frees)
{
    sink = malloc(64);
    cr_assert_not_null(sink);
    free(sink);
    sink = NULL;
}
