/* The 8-byte little-endian header length that starts a safetensors file,
 * read one way by every test that opens a file's bytes (header only: the
 * suites that include it link different libraries). */
#ifndef TG_TEST_ST_HEADER_H
#define TG_TEST_ST_HEADER_H

#include <stdint.h>

static inline uint64_t pt_header_len(const void *file)
{
    const unsigned char *b = file;
    uint64_t n = 0;
    for (int k = 7; k >= 0; k--) n = n << 8 | b[k];
    return n;
}

#endif
