/* apical/comm.h — the processes of a data-parallel run: MPI ranks when apical is built with MPI
 * (CMake option APICAL_MPI) and started by an MPI launcher (mpirun, srun), one process
 * otherwise. Every sum is computed in rank order, the same bits on every rank, so that a run
 * is reproducible for a given number of ranks. */
#ifndef APICAL_COMM_H
#define APICAL_COMM_H

#include <stddef.h>

#include "apical/export.h"
#include "apical/optim.h"

#ifdef __cplusplus
extern "C" {
#endif

/* Initialises MPI if apical was built with it and an MPI launcher started this process
 * (OMPI_COMM_WORLD_SIZE, PMI_SIZE or PMIX_RANK in the environment); nothing otherwise.
 * Idempotent; the other functions call it. AP_EIO if MPI fails to start. */
AP_API int ap_comm_init(void);
/* This process's rank (0-based) and the number of ranks (1 without MPI). */
AP_API int ap_comm_rank(void);
AP_API int ap_comm_size(void);
/* 1 if this build has MPI, 0 otherwise. */
AP_API int ap_comm_has_mpi(void);
/* x[0..n-1] <- the sum over ranks of every rank's x, added in rank order (0 + x_0 + x_1 + ...),
 * bitwise the same on every rank; every rank must call it with the same n. One rank: nothing. */
AP_API int ap_comm_sum(double *x, size_t n);
/* The reductions of ap_comm_reduce. */
typedef enum { AP_COMM_SUM, AP_COMM_MAX, AP_COMM_MIN } ap_comm_op;
/* x[0..n-1] <- the sum (in rank order, from 0), maximum or minimum over ranks of every rank's
 * x, bitwise the same on every rank, by one allgather: for a few values (norms, dot products),
 * without allocation up to 512 values over all ranks. One rank: nothing. */
AP_API int ap_comm_reduce(double *x, size_t n, ap_comm_op op);
/* The same for every gradient buffer of an optimiser (the same optimiser on every rank). The
 * buffers of the sum are kept for the next call (grown as needed) until ap_comm_finish. */
AP_API int ap_comm_sum_grad(ap_optim *o);
/* Frees the sums' buffers and ends MPI, if it was started: MPI_Finalize for status 0,
 * MPI_Abort(status) otherwise (so that the other ranks do not wait for one that failed).
 * Returns status. */
AP_API int ap_comm_finish(int status);

#ifdef __cplusplus
}
#endif
#endif
