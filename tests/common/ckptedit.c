/* tests/common/ckptedit.h */
#include "ckptedit.h"
#include "st_header.h"

#include <criterion/criterion.h>
#include <inttypes.h>
#include <jansson.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "checkpoint_header.h" /* the library's own: tests/checkpoint checks it */
#include "tg_checkpoint.h"

void pt_fix_header_crc(char **raw, size_t *len)
{
    cr_assert_geq(*len, 8, "no header length");
    uint64_t h = pt_header_len(*raw);
    cr_assert(h <= *len - 8, "the header length goes past the file");
    json_t *root = json_loadb(*raw + 8, (size_t)h, 0, NULL);
    cr_assert_not_null(root, "the edited header is not JSON");
    json_t *meta = json_object_get(root, "__metadata__");
    if (meta && json_object_get(meta, TG_CKPT_HEADER_CRC_KEY)) {
        uint32_t crc;
        cr_assert_eq(tg_ckpt_header_crc(root, &crc), 0);
        char hex[16];
        snprintf(hex, sizeof hex, "%08" PRIx32, crc);
        json_object_set_new(meta, TG_CKPT_HEADER_CRC_KEY, json_string(hex));
    }
    char *s = json_dumps(root, JSON_COMPACT | JSON_PRESERVE_ORDER);
    cr_assert_not_null(s);
    size_t hn = strlen(s), dn = *len - 8 - (size_t)h;
    char *out = malloc(8 + hn + dn);
    cr_assert_not_null(out);
    for (int k = 0; k < 8; k++) out[k] = (char)((uint64_t)hn >> (8 * k));
    memcpy(out + 8, s, hn);
    memcpy(out + 8 + hn, *raw + 8 + h, dn);
    free(s);
    json_decref(root);
    free(*raw);
    *raw = out;
    *len = 8 + hn + dn;
}
