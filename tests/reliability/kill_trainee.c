/* The process kill_test.c kills: trains the resume_model.h run (adam) to
 * TOTAL steps, saving a training checkpoint to CKPT every EVERY steps, and
 * resuming from CKPT when it exists. Prints "done step=N hash=H" at the end,
 * H being a hash of the parameter bytes.
 *     kill_trainee CKPT TOTAL EVERY */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

#include "resume_model.h"

int main(int argc, char **argv)
{
    if (argc != 4) {
        fprintf(stderr, "usage: kill_trainee CKPT TOTAL EVERY\n");
        return 2;
    }
    const char *ckpt = argv[1];
    uint64_t total = strtoull(argv[2], NULL, 10), every = strtoull(argv[3], NULL, 10);
    char err[512] = "";
    rm_run r;
    if (rm_init(&r, "adam", 7, err, sizeof err) != 0) {
        fprintf(stderr, "kill_trainee: %s\n", err);
        return 1;
    }
    int rc = 0;
    if (access(ckpt, F_OK) == 0 && tg_trainckpt_load(r.ck, ckpt, err, sizeof err) != 0) {
        fprintf(stderr, "kill_trainee: %s\n", err);
        rc = 1;
    }
    while (rc == 0 && r.step < total) {
        double loss;
        if (rm_step(&r, &loss, err, sizeof err) != 0 ||
            (every && r.step % every == 0 && tg_trainckpt_save(r.ck, ckpt, err, sizeof err) != 0)) {
            fprintf(stderr, "kill_trainee: %s\n", err);
            rc = 1;
        }
    }
    if (rc == 0) printf("done step=%" PRIu64 " hash=%016" PRIx64 "\n", r.step, rm_params_hash(&r));
    rm_free(&r);
    return rc;
}
