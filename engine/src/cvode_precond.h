/* cvode_precond.h — preconditioners of the Newton systems (I - gamma J) x = r that CVODE's
 * Krylov solver meets, built from the batch's structure: samples never interact, so J is
 * block-diagonal over samples (internal to libapical). */
/* Names: apx_ / APX_ for what is internal to libapical; the public ap_ / AP_ names are
 * exactly those declared in engine/include/apical/. */
#ifndef APICAL_CVODE_PRECOND_H
#define APICAL_CVODE_PRECOND_H

#include <stddef.h>

#include "apical/sim.h"

typedef struct apx_precond apx_precond;

/* State variables of one sample (the state vector holds batch x this many). */
size_t apx_precond_sample_size(const ap_sim *s);
/* The generic kind a run gets when it asks for none in particular and no registered type
 * applies (apx_precond_new_default): the per-sample block
 * where a sample's state is small enough for its dense Jacobian to be cheap (at most 128
 * variables, at most 256 MB of blocks over the batch), else none (measured: on the DFC circuits the
 * diagonal one needs more steps and evaluations than plain GMRES with 20 Krylov vectors;
 * docs/solvers.md). */
ap_precond_kind apx_precond_default(const ap_sim *s);
/* Allocates everything the preconditioner needs (nothing is allocated by setup or solve).
 * kind: AP_PREC_DIAGONAL or AP_PREC_BLOCK. Fails (AP_EINVAL) naming the sizes when a
 * sample's block is too large. */
int apx_precond_new(ap_sim *s, ap_precond_kind kind, const char *who, apx_precond **out);
void apx_precond_free(apx_precond **p);
/* The default of a run that asks for none: the first registered type that applies (in
 * registration order: built from the model's structure, it beats finite differences), else
 * apx_precond_default's choice, else none (*out = NULL). */
int apx_precond_new_default(ap_sim *s, const char *who, apx_precond **out);
/* "diagonal", "block" or a registered type's name; an unknown name or a type that does not
 * apply is an error naming why. */
int apx_precond_new_named(ap_sim *s, const char *name, const char *who, apx_precond **out);
/* 1 when the solve is exact for the last setup's Jacobian (a registered type saying so). */
int apx_precond_exact(const apx_precond *p);
/* Builds P = I - gamma J~ at (t, y) with fy = f(t, y). jok != 0 lets it reuse the Jacobian
 * of the last setup (only gamma changed); *jcur tells whether the Jacobian is new. Returns 0,
 * >0 when an evaluation failed recoverably, <0 on a fatal failure. */
int apx_precond_setup(apx_precond *p, double t, const double *y, const double *fy, int jok,
                      int *jcur, double gamma);
/* z = P^-1 r (z may be r); gamma: CVODE's current one (registered types use it, the diagonal
 * and block ones the setup's). 0, > 0 recoverable failure, < 0 fatal. */
int apx_precond_solve(const apx_precond *p, double gamma, const double *r, double *z);
/* Right-hand-side evaluations the setups have made (finite differences). */
long apx_precond_evals(const apx_precond *p);

#endif
