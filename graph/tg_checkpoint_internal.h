/* Private helpers shared by checkpoint.c, checkpoint_save.c and
 * optim/checkpoint_optim.c (not installed). */
#ifndef TG_CHECKPOINT_INTERNAL_H
#define TG_CHECKPOINT_INTERNAL_H

#include <stddef.h>

/* Formats a message into err (if any) and returns -1. */
int tg_ckpt_fail(char *err, size_t errlen, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
/* 0 on a little-endian host, else -1 with a message. */
int tg_ckpt_host_ok(char *err, size_t errlen);

#endif
