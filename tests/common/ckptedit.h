/* For the end-to-end suites that edit a program's files to reach one check
 * (tests/common/ckptedit.c; linked with the library, unlike progtest.c). */
#ifndef TG_TEST_CKPTEDIT_H
#define TG_TEST_CKPTEDIT_H

#include <stddef.h>

/* *raw, a safetensors file of *len bytes whose header a test edited, with
 * its header checksum (TG_CKPT_HEADER_CRC_KEY, where it has one) made to
 * match, as a tool that writes consistent files would, so that the edit
 * reaches the check it is about: the header is written again (compact, in
 * its order); *raw is reallocated. */
void pt_fix_header_crc(char **raw, size_t *len);

#endif
