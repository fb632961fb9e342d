/* apical/precond.h — preconditioners that a plugin (or the engine) registers for the Newton
 * systems (I - gamma J) z = r of CVODE runs, built from what the type knows of its model's
 * structure (docs/solvers.md, "Structured preconditioners"). A type binds to a compiled
 * simulation, or says why it does not apply; the engine then calls setup when CVODE asks for a
 * new Newton matrix and solve for every linear system. With exact = 1 the solve is exact for
 * the Jacobian of the last setup and the current gamma, and the engine uses it as the linear
 * solver itself (no GMRES) unless linear_solver = "krylov" asks for GMRES around it. */
#ifndef APICAL_PRECOND_H
#define APICAL_PRECOND_H

#include <stddef.h>
#include <stdint.h>

#include "apical/export.h"
#include "apical/registry.h"
#include "apical/sim.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct ap_precond_type {
    uint32_t abi_version;
    uint32_t struct_size;
    const char *name;
    const char *doc;
    int exact; /* 1: solve is exact (see above) */
    /* Binds to s (its model, batch and state layout) and allocates everything setup and solve
     * need. AP_OK with *data set; AP_EINVAL with a message naming why the type does not apply
     * to this model (the default choice then passes it over); other codes are failures. */
    int (*create)(ap_sim *s, void **data);
    /* The Jacobian at (t, y), fy = f(t, y): jok != 0 allows reusing the last one (only gamma
     * changed); *jcur = 1 when it was recomputed. 0, > 0 recoverable failure, < 0 fatal. */
    int (*setup)(void *data, double t, const double *y, const double *fy, int jok, int *jcur,
                 double gamma);
    /* z = P^-1 r for the current gamma (z may be r). 0, > 0 recoverable, < 0 fatal. */
    int (*solve)(void *data, double gamma, const double *r, double *z);
    void (*destroy)(void *data);
} ap_precond_type;

/* Registers a preconditioner type (name as for other types: "plugin.name"). */
AP_API int ap_registry_add_precond(ap_registry *r, const ap_precond_type *d, const char *owner);
/* The type named `name`, or NULL with `unknown preconditioner "name" (known: ...)`. */
AP_API const ap_precond_type *ap_registry_precond(const ap_registry *r, const char *name);

/* Where a dynamic signal ("pop.compartment" or "block.state") lies in the state vector: its
 * batch x size values start at *off, sample-major (sample b, unit k at *off + b * size + k).
 * AP_ENOTFOUND when the name is not a dynamic variable of s. */
AP_API int ap_sim_state_offset(const ap_sim *s, const char *name, size_t *off, int *size);

/* Solves (I - gamma J~) z = r with the preconditioner `name` ("diagonal", "block" or a
 * registered type) set up at state y and time t, as a run would (for tests and external
 * integrators; the signals are left at y). */
AP_API int ap_sim_precond_solve_named(ap_sim *s, const char *name, double t, const double *y,
                                      double gamma, const double *r, double *z);

#ifdef __cplusplus
}
#endif

#endif
