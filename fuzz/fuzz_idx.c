/* Fuzz target: the IDX reader of rowseq (examples/rowseq/idx.c).
 *
 * The input is a whole file as it would sit on disk, plain or gzip. It is
 * decoded (inflated or copied) and parsed both as an image file and as a
 * label file. Each step either fails with a one-line message or yields data
 * whose sizes agree with its header. */
#include "fuzz_check.h"
#include "idx.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char msg[512];
    uint8_t *dec = NULL;
    size_t n = 0;
    msg[0] = '\0';
    if (idx_decode("fuzz.idx", data, size, &dec, &n, msg, sizeof msg) != IDX_OK) {
        FUZZ_CHECK_MSG(msg, sizeof msg);
        return 0;
    }
    FUZZ_CHECK(n <= IDX_MAX_BYTES + 64, "decoded %zu bytes, above the cap", n);

    idx_images im = {0};
    msg[0] = '\0';
    if (idx_parse_images("fuzz.idx", dec, n, &im, msg, sizeof msg) == IDX_OK) {
        size_t want = (size_t)im.count * im.rows * im.cols;
        FUZZ_CHECK(im.count > 0 && im.rows > 0 && im.cols > 0, "empty dimension accepted");
        FUZZ_CHECK(16 + want == n, "images: %zu header+payload bytes, file has %zu", 16 + want, n);
        /* touch every pixel: ASan checks the buffer really is that long */
        unsigned sum = 0;
        for (size_t i = 0; i < want; i++) sum += im.pixels[i];
        (void)sum;
        idx_images_free(&im);
    } else {
        FUZZ_CHECK_MSG(msg, sizeof msg);
    }

    idx_labels lb = {0};
    msg[0] = '\0';
    if (idx_parse_labels("fuzz.idx", dec, n, 10, &lb, msg, sizeof msg) == IDX_OK) {
        FUZZ_CHECK(lb.count > 0 && 8 + (size_t)lb.count == n, "labels: count %u, %zu bytes",
                   lb.count, n);
        for (uint32_t i = 0; i < lb.count; i++)
            FUZZ_CHECK(lb.labels[i] < 10, "label %u at %u accepted", lb.labels[i], i);
        idx_labels_free(&lb);
    } else {
        FUZZ_CHECK_MSG(msg, sizeof msg);
    }
    free(dec);
    return 0;
}
