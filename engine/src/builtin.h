/* builtin.h — registration of the engine's built-in types (internal to libapical). */
/* Names: apx_ / APX_ for what is internal to libapical; the public ap_ / AP_ names are
 * exactly those declared in engine/include/apical/. */
#ifndef APICAL_BUILTIN_H
#define APICAL_BUILTIN_H

#include "apical/registry.h"

/* Activations: linear (alias identity), tanh, logistic (alias sigmoid), relu, softplus. */
int apx_builtin_activations_register(ap_registry *r);
/* Initialisers: zeros, constant, normal, uniform, xavier_normal, xavier_uniform, identity. */
int apx_builtin_initializers_register(ap_registry *r);
/* Neuron "rate", block "lowpass", rule "hebb" (engine/src/builtin_models.c). */
int apx_builtin_models_register(ap_registry *r);
/* Kernel "axpy" (engine/src/builtin_kernels.c): the example of a kernel, y += a x. */
int apx_builtin_kernels_register(ap_registry *r);

#endif
