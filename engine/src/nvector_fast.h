/* nvector_fast.h — faster reductions for SUNDIALS serial vectors (internal). */
/* Names: apx_ / APX_ for what is internal to libapical; the public ap_ / AP_ names are
 * exactly those declared in engine/include/apical/. */
#ifndef APICAL_NVECTOR_FAST_H
#define APICAL_NVECTOR_FAST_H

#include <sundials/sundials_nvector.h>

/* Replaces the reductions (dot product, weighted RMS norm, max norm) and the linear sum of a
 * serial N_Vector by versions with independent partial sums, which the compiler vectorises,
 * and the fused scale-add-multi and linear combination (the Nordsieck history's updates) by
 * blocked, vectorised ones with the same arithmetic per value; clones made afterwards inherit
 * them. The serial library's loops carry one dependency chain
 * per reduction and run at one addition per floating-point latency, which for batch-sized
 * states costs more than the right-hand side. Results differ from the serial library's only
 * by the order of the summation (deterministic for a given length). */
void apx_nvector_speedup(N_Vector v);

/* Makes v (a serial vector with the speedup above) this rank's part of one vector across the MPI
 * ranks (apical/comm.h): every operation that reduces (dot product, the norms, min, the tests)
 * and the length become global, combined in rank order so that every rank gets the same bits;
 * the element-wise operations stay local. Clones made afterwards inherit it; every rank must
 * then call each reduction at the same point. One process: nothing. */
void apx_nvector_global(N_Vector v);

#endif
