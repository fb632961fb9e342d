/* model_impl.h — the model graph's storage, shared by model.c and the plan compiler. */
#ifndef APICAL_MODEL_IMPL_H
#define APICAL_MODEL_IMPL_H

#include "apical/model.h"

typedef enum { AP_OBJ_INPUT, AP_OBJ_POPULATION, AP_OBJ_BLOCK } ap_obj_kind;

typedef struct ap_input_obj {
    char *name, *origin;
    int size;
} ap_input_obj;

typedef struct ap_pop_obj {
    char *name, *origin;
    int size;
    const ap_neuron_type *type;
    const ap_activation *act;
    double *params; /* type->n_params */
    ap_start_mode start;
    double *start_value; /* per compartment */
} ap_pop_obj;

typedef struct ap_block_obj {
    char *name, *origin;
    const ap_block_type *type;
    double *params;
    char **inputs; /* signal name per input port */
} ap_block_obj;

typedef struct ap_proj_obj {
    char *name, *origin, *source, *target;
    ap_projection_kind kind;
    int rows, cols;
    double *W, *b;
    int plastic;
    const ap_rule_type *rule;
    double *rule_params;
    char *aux, *aux_origin; /* the rule's auxiliary signal and where it was set, or NULL */
} ap_proj_obj;

typedef struct ap_obj_ref {
    ap_obj_kind kind;
    int index;
} ap_obj_ref;

struct ap_model {
    ap_registry *reg;
    int batch;
    char *origin;
    int n_objects, cap_objects;
    ap_obj_ref *objects;
    int n_inputs, n_pops, n_blocks, n_projs;
    int cap_inputs, cap_pops, cap_blocks, cap_projs;
    ap_input_obj *inputs;
    ap_pop_obj *pops;
    ap_block_obj *blocks;
    ap_proj_obj *projs;
};

/* What a signal name denotes. */
typedef enum {
    AP_SIG_INPUT,
    AP_SIG_COMPARTMENT,
    AP_SIG_RATE,
    AP_SIG_BLOCK_OUTPUT,
    AP_SIG_BLOCK_STATE,
} ap_sig_kind;

typedef struct ap_sigref {
    ap_sig_kind kind;
    int obj;  /* index into inputs, pops or blocks */
    int port; /* compartment, output or state index */
    int size; /* per sample */
} ap_sigref;

/* Resolves a signal name; AP_ENOTFOUND with a message listing what the object offers. */
int ap_model_resolve(const ap_model *m, const char *name, ap_sigref *ref);
/* Size of block output/state `port` (needs the input sizes; fails on an inconsistent shape). */
int ap_block_sizes(const ap_model *m, int block, int *in_size, int *state_size, int *out_size);
/* "name" of the object behind a signal reference, for messages. */
const char *ap_sigref_object(const ap_model *m, const ap_sigref *ref);

#endif
