/* comm.c — the processes of a data-parallel run (apical/comm.h): MPI when built with it
 * (APICAL_HAVE_MPI) and started by a launcher, one process otherwise.
 *
 * The sum over ranks is a reduce-scatter followed by an allgather, both written out so that
 * the order of the additions is fixed: the vector is cut into one chunk per rank; MPI_Alltoallv
 * gives rank r every rank's copy of chunk r, which it adds in rank order; MPI_Allgatherv hands
 * the summed chunks to everyone. Each rank sends and receives 2 (N - 1)/N of the vector, as a
 * ring allreduce does, and every rank ends with the same bits, whatever MPI's own reduction
 * algorithms would choose.
 *
 * The buffers of the sum (the packed gradient, the received chunks) are kept from one call to
 * the next, grown when a longer vector comes, and freed by ap_comm_finish: the gradient sum
 * runs at every minibatch. Only the main thread calls these functions. */
#include "apical/comm.h"

#include <stdlib.h>
#include <string.h>

#include "apical/error.h"

/* A buffer of doubles kept across calls. */
typedef struct scratch {
    double *p;
    size_t cap;
} scratch;

static scratch pack_buf; /* ap_comm_sum_grad's packed gradient */

/* At least n doubles in b (its contents not kept when it grows); NULL when out of memory. */
static double *scratch_get(scratch *b, size_t n) {
    if (n > b->cap) {
        free(b->p);
        b->p = malloc(n * sizeof *b->p);
        b->cap = b->p ? n : 0;
    }
    return b->p;
}

static void scratch_free(scratch *b) {
    free(b->p);
    b->p = NULL;
    b->cap = 0;
}

#ifdef APICAL_HAVE_MPI
#include <mpi.h>

static int started; /* MPI_Init called by us */
static int rank_, size_ = 1;
static scratch chunks_buf; /* sum_chunks' received chunks and their sum */
static int *counts;        /* sum_chunks' counts and displacements: 4 x size_ */

static int launched(void) {
    return getenv("OMPI_COMM_WORLD_SIZE") || getenv("PMI_SIZE") || getenv("PMIX_RANK");
}

int ap_comm_init(void) {
    if (started || !launched()) return AP_OK;
    int inited = 0;
    MPI_Initialized(&inited);
    if (!inited) {
        int provided = 0;
        /* only the main thread calls MPI (run_parallel's threads never do) */
        if (MPI_Init_thread(NULL, NULL, MPI_THREAD_FUNNELED, &provided) != MPI_SUCCESS)
            return ap_error(AP_EIO, "ap_comm_init: MPI_Init_thread failed");
    }
    started = 1;
    MPI_Comm_rank(MPI_COMM_WORLD, &rank_);
    MPI_Comm_size(MPI_COMM_WORLD, &size_);
    return AP_OK;
}

int ap_comm_has_mpi(void) {
    return 1;
}

/* chunk r of a vector of n values cut into `size` chunks: start and length */
static void chunk(size_t n, int size, int r, size_t *start, size_t *len) {
    size_t q = n / (size_t)size, extra = n % (size_t)size, k = (size_t)r;
    *start = k * q + (k < extra ? k : extra);
    *len = q + (k < extra ? 1 : 0);
}

static int sum_chunks(double *x, size_t n) {
    const int N = size_;
    if (n / (size_t)N > (size_t)0x7fffffff)
        return ap_error(AP_EINVAL, "ap_comm_sum: %zu values are too many for one message", n);
    size_t mine_start, mine;
    chunk(n, N, rank_, &mine_start, &mine);
    if (!counts) counts = malloc(4 * (size_t)N * sizeof *counts);
    double *in = scratch_get(&chunks_buf, mine * (size_t)N + mine + 1);
    if (!counts || !in) return ap_error(AP_ENOMEM, "ap_comm_sum: out of memory for %zu values", n);
    int *cnt = counts, *displ = cnt + N, *rcnt = cnt + 2 * N, *rdispl = cnt + 3 * N;
    for (int r = 0; r < N; r++) {
        size_t s, l;
        chunk(n, N, r, &s, &l);
        cnt[r] = (int)l;
        displ[r] = (int)s;
        rcnt[r] = (int)mine;
        rdispl[r] = (int)((size_t)r * mine);
    }
    int rc = MPI_Alltoallv(x, cnt, displ, MPI_DOUBLE, in, rcnt, rdispl, MPI_DOUBLE, MPI_COMM_WORLD);
    double *sum = in + mine * (size_t)N;
    if (rc == MPI_SUCCESS) {
        for (size_t i = 0; i < mine; i++) {
            double s = 0.0;
            for (int r = 0; r < N; r++)
                s += in[(size_t)r * mine + i];
            sum[i] = s;
        }
        rc = MPI_Allgatherv(sum, (int)mine, MPI_DOUBLE, x, cnt, displ, MPI_DOUBLE, MPI_COMM_WORLD);
    }
    if (rc != MPI_SUCCESS) return ap_error(AP_EIO, "ap_comm_sum: MPI failed (code %d)", rc);
    return AP_OK;
}

/* x <- op over the ranks' x, every rank's values gathered and combined in rank order */
static int reduce_small(double *x, size_t n, ap_comm_op op) {
    enum { ON_STACK = 512 };
    double stack[ON_STACK];
    size_t total = n * (size_t)size_;
    if (n > (size_t)0x7fffffff)
        return ap_error(AP_EINVAL, "ap_comm_reduce: %zu values are too many for one message", n);
    double *all = total <= ON_STACK ? stack : malloc(total * sizeof *all);
    if (!all) return ap_error(AP_ENOMEM, "ap_comm_reduce: out of memory for %zu values", total);
    int rc = MPI_Allgather(x, (int)n, MPI_DOUBLE, all, (int)n, MPI_DOUBLE, MPI_COMM_WORLD);
    if (rc == MPI_SUCCESS) {
        for (size_t i = 0; i < n; i++) {
            double v = op == AP_COMM_SUM ? 0.0 : all[i];
            for (int r = 0; r < size_; r++) {
                double y = all[(size_t)r * n + i];
                if (op == AP_COMM_SUM)
                    v += y;
                else if (op == AP_COMM_MAX ? !(y <= v) : !(y >= v))
                    v = y; /* NaN wins, as it would in one process's loop */
            }
            x[i] = v;
        }
    }
    if (all != stack) free(all);
    if (rc != MPI_SUCCESS) return ap_error(AP_EIO, "ap_comm_reduce: MPI failed (code %d)", rc);
    return AP_OK;
}

int ap_comm_finish(int status) {
    scratch_free(&pack_buf);
    scratch_free(&chunks_buf);
    free(counts);
    counts = NULL;
    if (!started) return status;
    started = 0;
    if (status)
        MPI_Abort(MPI_COMM_WORLD, status);
    else
        MPI_Finalize();
    return status;
}

#else /* no MPI: one process */

static const int rank_ = 0, size_ = 1;

/* Started by an MPI launcher with several processes, a build without MPI would run that many
 * independent copies of the same training (each writing its own run directory): refused. */
int ap_comm_init(void) {
    const char *n = getenv("OMPI_COMM_WORLD_SIZE");
    if (!n) n = getenv("PMI_SIZE");
    if (n && atoi(n) > 1)
        return ap_error(AP_ESTATE,
                        "started by an MPI launcher with %s processes, but this apical was built "
                        "without MPI (each would train alone): rebuild with -DAPICAL_MPI=ON "
                        "(Debian: libopenmpi-dev)",
                        n);
    return AP_OK;
}

int ap_comm_has_mpi(void) {
    return 0;
}

static int sum_chunks(double *x, size_t n) {
    (void)x;
    (void)n;
    return AP_OK;
}

static int reduce_small(double *x, size_t n, ap_comm_op op) {
    (void)x;
    (void)n;
    (void)op;
    return AP_OK;
}

int ap_comm_finish(int status) {
    scratch_free(&pack_buf);
    return status;
}

#endif

int ap_comm_rank(void) {
    ap_comm_init();
    return rank_;
}

int ap_comm_size(void) {
    ap_comm_init();
    return size_;
}

int ap_comm_sum(double *x, size_t n) {
    int rc = ap_comm_init();
    if (rc) return rc;
    if (n && !x) return ap_error(AP_EINVAL, "ap_comm_sum: vector is NULL");
    if (size_ == 1 || n == 0) return AP_OK;
    return sum_chunks(x, n);
}

int ap_comm_reduce(double *x, size_t n, ap_comm_op op) {
    int rc = ap_comm_init();
    if (rc) return rc;
    if (n && !x) return ap_error(AP_EINVAL, "ap_comm_reduce: vector is NULL");
    if ((unsigned)op > AP_COMM_MIN) return ap_error(AP_EINVAL, "ap_comm_reduce: unknown op %d", op);
    if (size_ == 1 || n == 0) return AP_OK;
    return reduce_small(x, n, op);
}

int ap_comm_sum_grad(ap_optim *o) {
    int rc = ap_comm_init();
    if (rc) return rc;
    if (!o) return ap_error(AP_EINVAL, "ap_comm_sum_grad: optimiser is NULL");
    if (size_ == 1) return AP_OK;
    size_t n = ap_optim_grad_count(o);
    double *v = scratch_get(&pack_buf, n ? n : 1);
    if (!v) return ap_error(AP_ENOMEM, "ap_comm_sum_grad: out of memory for %zu values", n);
    rc = ap_optim_grad_pack(o, v);
    if (!rc) rc = sum_chunks(v, n);
    if (!rc) rc = ap_optim_grad_unpack(o, v);
    return rc;
}
