/* The header checksum shared by the checkpoint writer and reader
 * (graph/checkpoint.c, graph/checkpoint_save.c): private to graph/, and
 * used by tests/common/ckptedit.c to write edited files consistently. */
#ifndef TG_CHECKPOINT_HEADER_H
#define TG_CHECKPOINT_HEADER_H

#include <jansson.h>
#include <stdint.h>

/* TG_CKPT_HEADER_CRC_KEY's CRC-32 of a header object whose tensors hold
 * "dtype" strings and "shape" and "data_offsets" integer lists and whose
 * "__metadata__" values are strings (as tg_checkpoint_parse has checked):
 * the canonical bytes tg_checkpoint.h describes. 0, or -1 out of memory. */
int tg_ckpt_header_crc(json_t *root, uint32_t *crc);

/* 1 when key is TG_CKPT_HEADER_CRC_KEY damaged by one byte, as its decoded
 * JSON string: one byte changed, or two adjacent bytes turned into one (a
 * byte changed to '\\' makes an escape of it and the next: "\\r"). The
 * reader refuses such a key as damage, so the writer refuses it as a name. */
int tg_ckpt_near_header_crc_key(const char *key);

#endif
