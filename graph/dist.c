/* Data-parallel training across MPI ranks, bitwise the same as one process:
 * see tg_dist.h for the scheme and the calling sequence.
 *
 * The reduction, with N ranks, S shards, L = S/N local shards and n
 * gradient scalars: chunk c = [n*c/N, n*(c+1)/N) belongs to rank c.
 *   1. pack: for each destination c, this rank's L shard gradients' chunk c,
 *      in shard order (send buffer, L*n scalars);
 *   2. MPI_Alltoallv: rank c receives chunk c of all S shards, source rank
 *      q's block holding shards q*L .. q*L+L-1, so the receive buffer is in
 *      global shard order;
 *   3. g[i] = 0 + r_0[i]; g[i] += r_1[i]; ... over its chunk of the master
 *      gradient: the very additions, in the very order, of tg_workers_run
 *      (which sets the master gradient too: no zeroing before);
 *   4. MPI_Allgatherv in place: every rank's master gradient gets every
 *      chunk. Only copies after step 3, so the bits are the owner's.
 * Losses: the L local shard losses are allgathered and summed in shard order
 * from 0, as tg_workers_run sums them.
 *
 * Without TG_HAVE_MPI every function is its one-rank case. */
#include "tg_dist.h"

#include <limits.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#ifdef TG_HAVE_MPI
#include <mpi.h>
#endif

struct tg_dist {
    int rank, size;
    int own_mpi;          /* tg_dist_init called MPI_Init: finalize calls MPI_Finalize */
    double comm_seconds;  /* in tg_dist_reduce */
    tg_workers *w;        /* the attached workers */
    int shards, first, local;
    long n;               /* gradient scalars */
    tg_real *send, *recv; /* L*n scalars; S * (largest chunk) scalars */
    int *sendcounts, *sdispls, *recvcounts, *rdispls, *chunk_len, *chunk_lo; /* size each */
    double *losses;       /* S */
#ifdef TG_HAVE_MPI
    MPI_Comm comm;
#endif
};

#ifdef TG_HAVE_MPI
#ifdef TG_REAL_DOUBLE
#define MPI_TG_REAL MPI_DOUBLE
#else
#define MPI_TG_REAL MPI_FLOAT
#endif
#endif

int tg_dist_available(void)
{
#ifdef TG_HAVE_MPI
    return 1;
#else
    return 0;
#endif
}

static double now_seconds(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

long tg_dist_launcher_size(int *at_least)
{
    const char *names[] = {"OMPI_COMM_WORLD_SIZE", "PMI_SIZE"};
    *at_least = 0;
    for (size_t i = 0; i < sizeof names / sizeof names[0]; i++) {
        const char *v = getenv(names[i]);
        if (v && *v) return strtol(v, NULL, 10);
    }
    const char *rank = getenv("PMIX_RANK");
    if (rank && *rank && strtol(rank, NULL, 10) > 0) {
        *at_least = 1;
        return 2;
    }
    return 1;
}

int tg_dist_world(int *rank, int *size)
{
#ifdef TG_HAVE_MPI
    int inited = 0, finalized = 0;
    MPI_Initialized(&inited);
    MPI_Finalized(&finalized);
    if (inited && !finalized) {
        MPI_Comm_rank(MPI_COMM_WORLD, rank);
        MPI_Comm_size(MPI_COMM_WORLD, size);
        return 1;
    }
#endif
    *rank = 0;
    *size = 1;
    return 0;
}

tg_dist *tg_dist_init(int *argc, char ***argv, char *err, size_t errlen)
{
    tg_dist *d = calloc(1, sizeof *d);
    if (!d) {
        snprintf(err, errlen, "out of memory");
        return NULL;
    }
    d->size = 1;
#ifdef TG_HAVE_MPI
    int inited = 0;
    MPI_Initialized(&inited);
    if (!inited) {
        int provided = 0;
        if (MPI_Init_thread(argc, argv, MPI_THREAD_FUNNELED, &provided) != MPI_SUCCESS) {
            snprintf(err, errlen, "MPI_Init_thread failed");
            free(d);
            return NULL;
        }
        d->own_mpi = 1;
        if (provided < MPI_THREAD_FUNNELED) {
            snprintf(err, errlen, "MPI gives thread level %d, need MPI_THREAD_FUNNELED", provided);
            MPI_Finalize();
            free(d);
            return NULL;
        }
    }
    MPI_Comm_dup(MPI_COMM_WORLD, &d->comm);
    MPI_Comm_set_errhandler(d->comm, MPI_ERRORS_ARE_FATAL);
    MPI_Comm_rank(d->comm, &d->rank);
    MPI_Comm_size(d->comm, &d->size);
#else
    (void)argc;
    (void)argv;
    int at_least;
    long n = tg_dist_launcher_size(&at_least);
    if (n > 1) {
        snprintf(err, errlen,
                 "started as one of %s%ld ranks, but this build has no MPI (rebuild with "
                 "-Dmpi=enabled and Open MPI installed): each rank would train alone",
                 at_least ? "at least " : "", n);
        free(d);
        return NULL;
    }
#endif
    return d;
}

static void detach(tg_dist *d)
{
    free(d->send);
    free(d->recv);
    free(d->sendcounts);
    free(d->sdispls);
    free(d->recvcounts);
    free(d->rdispls);
    free(d->chunk_len);
    free(d->chunk_lo);
    free(d->losses);
    d->send = d->recv = NULL;
    d->sendcounts = d->sdispls = d->recvcounts = d->rdispls = d->chunk_len = d->chunk_lo = NULL;
    d->losses = NULL;
    d->w = NULL;
}

void tg_dist_finalize(tg_dist *d)
{
    if (!d) return;
    detach(d);
#ifdef TG_HAVE_MPI
    MPI_Comm_free(&d->comm);
    if (d->own_mpi) MPI_Finalize();
#endif
    free(d);
}

int tg_dist_rank(const tg_dist *d) { return d->rank; }
int tg_dist_size(const tg_dist *d) { return d->size; }
double tg_dist_comm_seconds(const tg_dist *d) { return d->comm_seconds; }

int tg_dist_shards(const tg_dist *d, int shards, int *first, int *count, char *err,
                   size_t errlen)
{
    if (shards < 1 || shards % d->size != 0) {
        snprintf(err, errlen, "--shards %d is not a multiple of the %d ranks: each rank runs an "
                 "equal share of the shards (use a multiple of %d, or a number of ranks that "
                 "divides %d; a resumed run keeps its checkpoint's --shards)", shards, d->size,
                 d->size, shards);
        return -1;
    }
    *count = shards / d->size;
    *first = d->rank * *count;
    return 0;
}

/* Chunk c of n scalars over size ranks, and the Alltoallv / Allgatherv
 * counts (in scalars) that follow from it. */
static void set_counts(tg_dist *d)
{
    int L = d->local;
    for (int c = 0; c < d->size; c++) {
        long lo = d->n * c / d->size, hi = d->n * (c + 1) / d->size;
        d->chunk_lo[c] = (int)lo;
        d->chunk_len[c] = (int)(hi - lo);
        d->sendcounts[c] = L * d->chunk_len[c];
        d->sdispls[c] = (int)(L * lo);
    }
    int mine = d->chunk_len[d->rank];
    for (int q = 0; q < d->size; q++) {
        d->recvcounts[q] = L * mine;
        d->rdispls[q] = q * L * mine;
    }
}

int tg_dist_attach(tg_dist *d, tg_workers *w, char *err, size_t errlen)
{
    detach(d);
    int S = tg_workers_shards(w);
    if (tg_dist_shards(d, S, &d->first, &d->local, err, errlen) != 0) return -1;
    d->shards = S;
    d->n = (long)tg_params_numel(tg_workers_master(w));
    if ((double)d->n * d->local > (double)INT_MAX) {
        snprintf(err, errlen, "%ld gradient scalars x %d shards per rank is past MPI's int "
                 "counts: use more ranks", d->n, d->local);
        return -1;
    }
    size_t ranks = (size_t)d->size, biggest = (size_t)(d->n / d->size + 1);
    d->send = malloc((size_t)d->n * (size_t)d->local * sizeof *d->send + 1);
    d->recv = malloc(biggest * (size_t)S * sizeof *d->recv);
    d->sendcounts = malloc(ranks * sizeof(int));
    d->sdispls = malloc(ranks * sizeof(int));
    d->recvcounts = malloc(ranks * sizeof(int));
    d->rdispls = malloc(ranks * sizeof(int));
    d->chunk_len = malloc(ranks * sizeof(int));
    d->chunk_lo = malloc(ranks * sizeof(int));
    d->losses = malloc((size_t)S * sizeof *d->losses);
    if (!d->send || !d->recv || !d->sendcounts || !d->sdispls || !d->recvcounts || !d->rdispls ||
        !d->chunk_len || !d->chunk_lo || !d->losses) {
        detach(d);
        snprintf(err, errlen, "out of memory for the gradient exchange (%ld scalars)", d->n);
        return -1;
    }
    set_counts(d);
    d->w = w;
    return 0;
}

/* Shard s's part r of n values into g: set by shard 0 (0 + r: the bits of
 * adding to zero), added by the others, as tg_workers_run does. */
static void add_part(tg_real *restrict g, const tg_real *restrict r, long n, int s)
{
    if (s == 0)
        for (long i = 0; i < n; i++) g[i] = (tg_real)0 + r[i];
    else
        for (long i = 0; i < n; i++) g[i] += r[i];
}

#ifdef TG_HAVE_MPI
/* Step 1: this rank's shards' chunk c, shard after shard, for every c. */
static void pack(tg_dist *d)
{
    for (int c = 0; c < d->size; c++)
        for (int l = 0; l < d->local; l++) {
            const tg_real *g = tg_params_grad(tg_workers_params(d->w, d->first + l));
            memcpy(d->send + d->sdispls[c] + (long)l * d->chunk_len[c], g + d->chunk_lo[c],
                   (size_t)d->chunk_len[c] * sizeof *g);
        }
}

/* Step 3: the master chunk is set to shard 0's part, then gets shard 1's,
 * ...: the same additions as graph/parallel.c's reduce_grads, element by
 * element. */
static void add_in_shard_order(tg_dist *d)
{
    int len = d->chunk_len[d->rank];
    tg_real *g = tg_params_grad(tg_workers_master(d->w)) + d->chunk_lo[d->rank];
    for (int s = 0; s < d->shards; s++) add_part(g, d->recv + (long)s * len, len, s);
}

static double reduce_mpi(tg_dist *d)
{
    double t0 = MPI_Wtime();
    pack(d);
    MPI_Alltoallv(d->send, d->sendcounts, d->sdispls, MPI_TG_REAL, d->recv, d->recvcounts,
                  d->rdispls, MPI_TG_REAL, d->comm);
    add_in_shard_order(d);
    MPI_Allgatherv(MPI_IN_PLACE, 0, MPI_DATATYPE_NULL, tg_params_grad(tg_workers_master(d->w)),
                   d->chunk_len, d->chunk_lo, MPI_TG_REAL, d->comm);
    double *local = d->losses + d->first;
    for (int l = 0; l < d->local; l++) local[l] = tg_workers_loss(d->w, d->first + l);
    MPI_Allgather(MPI_IN_PLACE, 0, MPI_DATATYPE_NULL, d->losses, d->local, MPI_DOUBLE, d->comm);
    d->comm_seconds += MPI_Wtime() - t0;
    double total = 0;
    for (int s = 0; s < d->shards; s++) total += d->losses[s];
    return total;
}
#endif

double tg_dist_reduce(tg_dist *d, tg_workers *w)
{
    if (w != d->w) tg_dist_abort(d, 70, "tg_dist_reduce: these workers are not the attached ones");
#ifdef TG_HAVE_MPI
    if (d->size > 1) return reduce_mpi(d);
#endif
    /* one rank: nothing to exchange; tg_dist_run uses tg_workers_run */
    double t0 = now_seconds(), total = 0;
    tg_real *g = tg_params_grad(tg_workers_master(w));
    for (int s = 0; s < d->shards; s++) {
        add_part(g, tg_params_grad(tg_workers_params(w, s)), d->n, s);
        total += tg_workers_loss(w, s);
    }
    d->comm_seconds += now_seconds() - t0;
    return total;
}

double tg_dist_run(tg_dist *d, tg_workers *w, int threads, tg_shard_fn fn, void *ctx)
{
    if (w != d->w) tg_dist_abort(d, 70, "tg_dist_run: these workers are not the attached ones");
    if (d->size == 1) return tg_workers_run(w, threads, fn, ctx);
    tg_workers_run_range(w, threads, d->first, d->local, fn, ctx);
    return tg_dist_reduce(d, w);
}

int tg_dist_max(tg_dist *d, int value)
{
#ifdef TG_HAVE_MPI
    if (d->size > 1) MPI_Allreduce(MPI_IN_PLACE, &value, 1, MPI_INT, MPI_MAX, d->comm);
#else
    (void)d;
#endif
    return value;
}

int tg_dist_any(tg_dist *d, int flag) { return tg_dist_max(d, flag != 0); }

double tg_dist_sum_shards(tg_dist *d, const double *values, int count)
{
    if (count < 1 || count * d->size > d->shards || !d->losses)
        tg_dist_abort(d, 70, "tg_dist_sum_shards: %d values per rank, attach workers of %d x %d "
                      "shards first", count, count, d->size);
    double total = 0;
#ifdef TG_HAVE_MPI
    if (d->size > 1) {
        MPI_Allgather(values, count, MPI_DOUBLE, d->losses, count, MPI_DOUBLE, d->comm);
        values = d->losses;
    }
#endif
    for (int s = 0; s < count * d->size; s++) total += values[s];
    return total;
}

#ifdef TG_HAVE_MPI
/* n bytes from root to every rank, in pieces (MPI counts are ints). */
static void bcast_bytes(tg_dist *d, void *bytes, size_t n, int root)
{
    enum { PIECE = 1 << 30 };
    for (size_t off = 0; d->size > 1 && off < n; off += PIECE) {
        size_t len = n - off < PIECE ? n - off : PIECE;
        MPI_Bcast((unsigned char *)bytes + off, (int)len, MPI_BYTE, root, d->comm);
    }
}
#endif

void tg_dist_share_shard(tg_dist *d, int s, void *bytes, size_t n)
{
    if (!d->w || s < 0 || s >= d->shards)
        tg_dist_abort(d, 70, "tg_dist_share_shard: shard %d of %d (attach the workers first)", s,
                      d->shards);
#ifdef TG_HAVE_MPI
    bcast_bytes(d, bytes, n, s / d->local); /* from the rank that runs shard s */
#else
    (void)bytes;
    (void)n;
#endif
}

void tg_dist_broadcast(tg_dist *d, void *bytes, size_t n)
{
#ifdef TG_HAVE_MPI
    bcast_bytes(d, bytes, n, 0);
#else
    (void)d;
    (void)bytes;
    (void)n;
#endif
}

#ifdef TG_HAVE_MPI
/* How rank's copy differs from rank 0's: 0 same, 1 length, 2 content at
 * byte `at`. Rank 0's bytes are broadcast in pieces (MPI counts are ints). */
static void compare_with_root(tg_dist *d, const unsigned char *bytes, size_t n, long long out[2])
{
    unsigned long long n0 = n;
    MPI_Bcast(&n0, 1, MPI_UNSIGNED_LONG_LONG, 0, d->comm);
    out[0] = n0 != n ? 1 : 0;
    out[1] = (long long)n;
    enum { PIECE = 1 << 24 };
    unsigned char *buf = malloc(PIECE);
    if (!buf) tg_dist_abort(d, 71, "out of memory comparing with rank 0");
    for (size_t off = 0; off < n0; off += PIECE) {
        size_t len = n0 - off < PIECE ? n0 - off : PIECE;
        if (d->rank == 0) memcpy(buf, bytes + off, len);
        MPI_Bcast(buf, (int)len, MPI_BYTE, 0, d->comm);
        for (size_t i = 0; out[0] == 0 && i < len; i++)
            if (buf[i] != bytes[off + i]) {
                out[0] = 2;
                out[1] = (long long)(off + i);
            }
    }
    free(buf);
}
#endif

int tg_dist_check_same(tg_dist *d, const void *bytes, size_t n, const char *what, char *err,
                       size_t errlen)
{
#ifdef TG_HAVE_MPI
    if (d->size == 1) return 0;
    long long mine[2], *all = malloc((size_t)d->size * 2 * sizeof *all);
    if (!all) tg_dist_abort(d, 71, "out of memory comparing with rank 0");
    compare_with_root(d, bytes, n, mine);
    MPI_Allgather(mine, 2, MPI_LONG_LONG, all, 2, MPI_LONG_LONG, d->comm);
    int bad = 0;
    for (int q = 1; q < d->size && !bad; q++) {
        if (all[2 * q] == 1)
            snprintf(err, errlen, "rank %d differs from rank 0 in its %s: %lld bytes against "
                     "rank 0's %lld (every rank must be started with the same flags and data)", q, what,
                     all[2 * q + 1], all[1]);
        else if (all[2 * q] == 2 && n <= sizeof(uint64_t)) /* a hash: no byte to name */
            snprintf(err, errlen, "rank %d differs from rank 0 in its %s", q, what);
        else if (all[2 * q] == 2)
            snprintf(err, errlen, "rank %d differs from rank 0 in its %s, first at byte %lld "
                     "(every rank must be started with the same flags, seed and data)", q, what,
                     all[2 * q + 1]);
        bad = all[2 * q] != 0;
    }
    free(all);
    return bad ? -1 : 0;
#else
    (void)d;
    (void)bytes;
    (void)n;
    (void)what;
    (void)err;
    (void)errlen;
    return 0;
#endif
}

void tg_dist_abort(tg_dist *d, int code, const char *fmt, ...)
{
    /* one write for the whole line: stderr is unbuffered, and mpirun
     * forwards each write as it comes, so a prefix written apart from its
     * message could land on another line (MPI_Abort's banner in between) */
    char line[2048];
    int k = d && d->size > 1 ? snprintf(line, sizeof line, "rank %d: ", d->rank) : 0;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(line + k, sizeof line - (size_t)k - 1, fmt, ap);
    va_end(ap);
    size_t n = strlen(line);
    line[n] = '\n';
    fwrite(line, 1, n + 1, stderr);
    fflush(stderr);
#ifdef TG_HAVE_MPI
    int inited = 0;
    MPI_Initialized(&inited);
    if (inited) MPI_Abort(d ? d->comm : MPI_COMM_WORLD, code);
#endif
    exit(code);
}
