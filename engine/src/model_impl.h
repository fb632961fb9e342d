/* model_impl.h — the model graph's storage, shared by model.c and the plan compiler. */
/* Names: apx_ / APX_ for what is internal to libapical; the public ap_ / AP_ names are
 * exactly those declared in engine/include/apical/. */
#ifndef APICAL_MODEL_IMPL_H
#define APICAL_MODEL_IMPL_H

#include "apical/model.h"

typedef enum { APX_OBJ_INPUT, APX_OBJ_POPULATION, APX_OBJ_BLOCK } apx_obj_kind;

typedef struct apx_input_obj {
    char *name, *origin;
    int size;
} apx_input_obj;

typedef struct apx_pop_obj {
    char *name, *origin;
    int size;
    const ap_neuron_type *type;
    const ap_activation *act;
    double *params; /* type->n_params */
    ap_start_mode start;
    double *start_value; /* per compartment */
} apx_pop_obj;

typedef struct apx_block_obj {
    char *name, *origin;
    const ap_block_type *type;
    double *params;
    char **inputs; /* signal name per input port */
} apx_block_obj;

typedef struct apx_proj_obj {
    char *name, *origin, *source, *target;
    ap_projection_kind kind;
    int rows, cols;
    double *W, *b;
    int plastic;
    const ap_rule_type *rule;
    double *rule_params;
    char *aux, *aux_origin; /* the rule's auxiliary signal and where it was set, or NULL */
} apx_proj_obj;

typedef struct apx_obj_ref {
    apx_obj_kind kind;
    int index;
} apx_obj_ref;

struct ap_model {
    ap_registry *reg;
    int batch;
    char *origin;
    int n_objects, cap_objects;
    apx_obj_ref *objects;
    int n_inputs, n_pops, n_blocks, n_projs;
    int cap_inputs, cap_pops, cap_blocks, cap_projs;
    apx_input_obj *inputs;
    apx_pop_obj *pops;
    apx_block_obj *blocks;
    apx_proj_obj *projs;
};

/* What a signal name denotes. */
typedef enum {
    APX_SIG_INPUT,
    APX_SIG_COMPARTMENT,
    APX_SIG_RATE,
    APX_SIG_BLOCK_OUTPUT,
    APX_SIG_BLOCK_STATE,
} apx_sig_kind;

typedef struct apx_sigref {
    apx_sig_kind kind;
    int obj;  /* index into inputs, pops or blocks */
    int port; /* compartment, output or state index */
    int size; /* per sample */
} apx_sigref;

/* Resolves a signal name; AP_ENOTFOUND with a message listing what the object offers. */
int apx_model_resolve(const ap_model *m, const char *name, apx_sigref *ref);
/* Size of block output/state `port` (needs the input sizes; fails on an inconsistent shape). */
int apx_block_sizes(const ap_model *m, int block, int *in_size, int *state_size, int *out_size);
/* "name" of the object behind a signal reference, for messages. */
const char *apx_sigref_object(const ap_model *m, const apx_sigref *ref);

#endif
