/* apical/noise.h — the seeded standard-normal stream that euler-maruyama draws its increments
 * from, exposed so that tests and tools can reproduce a run's noise. */
#ifndef APICAL_NOISE_H
#define APICAL_NOISE_H

#include <stddef.h>
#include <stdint.h>

#include "apical/export.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct ap_noise ap_noise;

/* A stream of N(0, 1) draws determined by seed alone (all 64 bits count): four xoshiro256**
 * generators seeded by splitmix64, turned into normals by a 256-layer ziggurat, in blocks.
 * euler-maruyama with run option seed = s draws from the stream of seed s, in state order
 * (components in declared order, each sample-major), one step after another. Returns AP_OK,
 * or AP_ENOMEM with *out = NULL. The caller frees the stream with ap_noise_free. */
AP_API int ap_noise_new(ap_noise **out, uint64_t seed);
/* Frees the stream and sets *g = NULL; NULL and *g == NULL are fine. */
AP_API void ap_noise_free(ap_noise **g);
/* Writes the stream's next n draws to z[0..n-1]. How a stream is split into calls does not
 * change the values. */
AP_API void ap_noise_normal(ap_noise *g, double *z, size_t n);

#ifdef __cplusplus
}
#endif
#endif
