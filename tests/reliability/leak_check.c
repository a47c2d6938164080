/* Makes a leak fail the Criterion test that made it (sanitizer build only).
 *
 * Why: Criterion runs each test in a forked worker and reports its verdict
 * over a pipe; LeakSanitizer's report at process exit comes after that and
 * changes nothing. So tests/meson.build links this file into every suite of
 * an address-sanitized build, with -Wl,--wrap=criterion_internal_test_main:
 * each test body then runs through run_body() below, which, once the body
 * returns, asks LeakSanitizer for a recoverable check and turns "leaks found"
 * into a failed assertion of that same test while it is still in its MAIN
 * phase (an assertion after that phase is printed but not counted).
 *
 * Memory still reachable from a fixture or a global is not a leak; a test
 * that fails an assertion skips the check (its verdict is already "failed").
 * Without a sanitizer runtime the weak symbol is NULL and nothing is checked. */
#include <criterion/criterion.h>
#include <stddef.h>
#include <string.h>

int __lsan_do_recoverable_leak_check(void) __attribute__((weak));

void __real_criterion_internal_test_main(void (*fn)(void));
void __wrap_criterion_internal_test_main(void (*fn)(void));

/* The body of the test being run. One test per worker process, so a static
 * is enough. */
static void (*body)(void);

/* Overwrites the dead stack below the caller: the leak check's own frames
 * land there, and a stale pointer left in one of their unused slots by the
 * finished test body would count as a reference and hide the leak. */
__attribute__((noinline)) static void scrub_stack(void)
{
    volatile char junk[64 * 1024];
    memset((char *)junk, 0, sizeof junk);
}

static void check_leaks(void)
{
    scrub_stack();
    if (__lsan_do_recoverable_leak_check && __lsan_do_recoverable_leak_check())
        cr_fail(CR_FAIL_CONTINUES_, "LeakSanitizer: this test leaked memory (report above)");
}

/* Called as fn() for plain tests and fn(param) for parameterized ones: the
 * extra argument is simply ignored in the first case (SysV calling
 * convention), and passed on in the second. */
static int body_is_parameterized(void)
{
    /* The worker's copy of the test record may be unaligned: read the field
     * with memcpy rather than through a misaligned struct pointer. */
    const char *data = (const char *)criterion_current_test->data;
    struct criterion_test_params (*param)(void);
    memcpy(&param, data + offsetof(struct criterion_test_extra_data, param_), sizeof param);
    return param != NULL;
}

static void run_body(void *param)
{
    if (body_is_parameterized())
        ((void (*)(void *))(void (*)(void))body)(param);
    else
        body();
    check_leaks();
}

void __wrap_criterion_internal_test_main(void (*fn)(void))
{
    body = fn;
    __real_criterion_internal_test_main((void (*)(void))run_body);
}
