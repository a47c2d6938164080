/* rowseq's data: the IDX files of a split (rowseq.h), and the confusion
 * matrix printed at the end. */
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "cli.h"
#include "rowseq.h"
#include "trainckpt.h"
#include "trainrun.h" /* tgx_memory_check_data */

#define PROG "rowseq"

static const char *const class_names[ROWSEQ_CLASSES] = {
    "T-shirt/top", "Trouser", "Pullover", "Dress",   "Coat",
    "Sandal",      "Shirt",   "Sneaker",  "Bag",     "Ankle boot",
};

/* A data error; when the folder came from --resume's checkpoint (resume
 * != NULL, no --data) the message names the checkpoint too. */
static _Noreturn void data_error(const char *resume, const char *msg)
{
    if (resume) tg_trainckpt_die_inherited(PROG, resume, "data", "--data DIR", msg);
    tg_cli_die(PROG, "%s", msg);
}

/* DIR/name, or DIR/name.gz when only that exists. A DIR too long for out is
 * refused: cut short, it could name another file. */
static void data_path(const char *dir, const char *name, const char *resume, char *out, size_t n)
{
    char msg[4096 + 256];
    if ((size_t)snprintf(out, n, "%s/%s.gz", dir, name) >= n) {
        snprintf(msg, sizeof msg, "--data path is %zu bytes long; at most %zu are supported",
                 strlen(dir), n - strlen(name) - 5);
        data_error(resume, msg);
    }
    static const char *const suffixes[] = {"", ".gz"};
    for (int k = 0; k < 2; k++) {
        snprintf(out, n, "%s/%s%s", dir, name, suffixes[k]);
        if (access(out, F_OK) == 0) return;
        if (errno != ENOENT) { /* there, but not reachable: a link loop, a folder's rights */
            snprintf(msg, sizeof msg, "%s: %s", out, strerror(errno));
            data_error(resume, msg);
        }
    }
    snprintf(msg, sizeof msg, "%s: neither %s nor %s.gz found (set --data to the folder holding "
             "the IDX files)", dir, name, name);
    data_error(resume, msg);
}

/* Refuses (exit 1), before it is read, an IDX file whose reading would not
 * fit in memory: it holds the file and its pixels at once, a gzip file the
 * file and its inflated bytes, then those and the pixels (the inflated
 * size from gzip's trailer; measured on Fashion-MNIST's training images,
 * 25 MiB inflating to 45: 96 MiB resident at the peak, estimate 90). Linux
 * would grant the memory and kill the run when it is touched. Only regular
 * files: a pipe's size is not known before it is read. held: the bytes
 * other splits already hold; limit: the flag that does not shrink it. */
static void check_idx_memory(const char *path, size_t held, const char *limit)
{
    struct stat st;
    if (stat(path, &st) != 0 || !S_ISREG(st.st_mode)) return; /* the reader says why */
    size_t size = (size_t)st.st_size, inflated = 0;
    unsigned char head[2], tail[4];
    FILE *f = fopen(path, "rb");
    if (!f) return;
    if (size >= 18 && fread(head, 1, 2, f) == 2 && head[0] == 0x1f && head[1] == 0x8b &&
        fseek(f, -4, SEEK_END) == 0 && fread(tail, 1, 4, f) == 4)
        inflated = (size_t)tail[0] | (size_t)tail[1] << 8 | (size_t)tail[2] << 16 |
                   (size_t)tail[3] << 24;
    fclose(f);
    char what[ROWSEQ_PATH_BYTES + 32];
    snprintf(what, sizeof what, "%s: reading it", path);
    size_t need = held + (inflated ? inflated + (size > inflated ? size : inflated) : 2 * size);
    char how[128];
    snprintf(how, sizeof how, "%s%s", inflated ? "its inflated bytes, and the file or the pixels"
                                               : "the file and its pixels",
             held ? ", beside the training images held" : "");
    char advice[96];
    snprintf(advice, sizeof advice, "the whole file is read whatever %s says", limit);
    tgx_memory_check_data(PROG, what, need, how, advice);
}

/* The IDX file name of a split's images or labels. */
static void idx_name(const char *prefix, int labels, char *out, size_t n)
{
    snprintf(out, n, "%s-%s", prefix, labels ? "labels-idx1-ubyte" : "images-idx3-ubyte");
}

void rowseq_data_files(const char *dir, char paths[ROWSEQ_DATA_FILES][ROWSEQ_PATH_BYTES])
{
    static const char *const splits[] = {"train", "t10k"};
    char name[64];
    for (int i = 0; i < ROWSEQ_DATA_FILES; i++) {
        idx_name(splits[i / 4], i / 2 % 2, name, sizeof name);
        snprintf(paths[i], ROWSEQ_PATH_BYTES, "%s/%s%s", dir, name, i % 2 ? ".gz" : "");
    }
}

size_t rowseq_split_bytes(const rowseq_split *s)
{
    return (size_t)s->im.count * s->im.rows * s->im.cols + s->lb.count;
}

void rowseq_load_split(const char *dir, const char *prefix, int limit, const char *resume,
                       size_t held, rowseq_split *s)
{
    char ip[ROWSEQ_PATH_BYTES], lp[ROWSEQ_PATH_BYTES], msg[4096 + 256], name[64];
    idx_name(prefix, 0, name, sizeof name);
    data_path(dir, name, resume, ip, sizeof ip);
    idx_name(prefix, 1, name, sizeof name);
    data_path(dir, name, resume, lp, sizeof lp);
    check_idx_memory(ip, held, strcmp(prefix, "train") ? "--limit-test" : "--limit-train");
    if (idx_read_images(ip, &s->im, msg, sizeof msg) != IDX_OK) data_error(resume, msg);
    if (idx_read_labels(lp, ROWSEQ_CLASSES, &s->lb, msg, sizeof msg) != IDX_OK) data_error(resume, msg);
    if (idx_check_pair(ip, &s->im, lp, &s->lb, msg, sizeof msg) != IDX_OK)
        data_error(resume, msg);
    s->d.count = (int)s->im.count;
    if (limit > 0 && limit < s->d.count) s->d.count = limit;
    s->d.rows = (int)s->im.rows;
    s->d.cols = (int)s->im.cols;
    s->d.pixels = s->im.pixels;
    s->d.labels = s->lb.labels;
}

void rowseq_print_confusion(const long *cm)
{
    printf("\nconfusion matrix (rows: true class, columns: predicted)\n%-12s", "");
    for (int j = 0; j < ROWSEQ_CLASSES; j++) printf(" %5d", j);
    printf("  recall\n");
    for (int i = 0; i < ROWSEQ_CLASSES; i++) {
        long row = 0;
        printf("%d %-10s", i, class_names[i]);
        for (int j = 0; j < ROWSEQ_CLASSES; j++) {
            printf(" %5ld", cm[i * ROWSEQ_CLASSES + j]);
            row += cm[i * ROWSEQ_CLASSES + j];
        }
        printf("  %.3f\n", row ? (double)cm[i * ROWSEQ_CLASSES + i] / row : 0.0);
    }
}

void rowseq_split_free(rowseq_split *s)
{
    idx_images_free(&s->im);
    idx_labels_free(&s->lb);
}
