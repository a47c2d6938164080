/* Always-on misuse reports. */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>

#include "tapegrad.h"

_Noreturn void tg_misuse(tg_src at, const char *op, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    fprintf(stderr, "tapegrad: %s: ", op);
    vfprintf(stderr, fmt, ap);
    fprintf(stderr, " (%s:%d)\n", at.file, at.line);
    va_end(ap);
    abort();
}
