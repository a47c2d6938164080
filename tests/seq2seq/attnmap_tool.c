/* Writes a fixed attention map for test_attnmap.py: two sentences whose
 * tokens hold XML's markup characters, a control character, Hangul,
 * invalid UTF-8, and weights 0, 1 and out of range (clamped).
 *   attnmap_tool FILE   exit 0, or 1 with the writer's message */
#include <stdio.h>

#include "attnmap.h"

int main(int argc, char **argv)
{
    if (argc != 2) {
        fprintf(stderr, "usage: attnmap_tool FILE\n");
        return 2;
    }
    static const char *const src1[] = {"a&b", "<tag>", "\"q\"", "it's", "x\x01y"};
    static const char *const out1[] = {"학생", "&amp;", "<eos>"};
    static const tg_real w1[] = {1, 0, 0, 0, 0,  0.25, 0.25, 0.5, 0, 0,  0, 0, 0, 2, -1};
    static const char *const src2[] = {"\xff" "bad", "caf\xc3\xa9"};
    static const char *const out2[] = {"]]>"};
    static const tg_real w2[] = {0.5, 0.5};
    /* the second numbered as an input line would be, the first by its place */
    const s2s_attnmap_block b[] = {{5, 3, src1, out1, w1, 0}, {2, 1, src2, out2, w2, 7}};
    char err[512];
    if (s2s_attnmap_write(argv[1], "map <&> \"test\"", b, 2, err, sizeof err) != 0) {
        fprintf(stderr, "attnmap_tool: %s\n", err);
        return 1;
    }
    return 0;
}
