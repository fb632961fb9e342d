/* registry_impl.h — the registry's internals, shared by registry.c and plugin.c (not installed).
 * Everything here has hidden visibility (the library's default): plugins see only registry.h. */
/* Names: apx_ / APX_ for what is internal to libapical; the public ap_ / AP_ names are
 * exactly those declared in engine/include/apical/. */
#ifndef APICAL_REGISTRY_IMPL_H
#define APICAL_REGISTRY_IMPL_H

#include <stddef.h>

#include "apical/registry.h"

/* The kinds of registered types, in the order ap_registry_each() walks them. */
typedef enum {
    APX_KIND_ACTIVATION,
    APX_KIND_INITIALIZER,
    APX_KIND_NEURON,
    APX_KIND_BLOCK,
    APX_KIND_RULE,
    APX_KIND_KERNEL,
    APX_KIND_PRECOND,
    APX_KIND_COUNT
} apx_kind;

/* The size of the fields a v1 descriptor has: from the start of `type` to the end of `last`.
 * The host reads no further than this in a descriptor whose struct_size is at least this. */
#define APX_V1_SIZE(type, last) (offsetof(type, last) + sizeof(((type *)0)->last))

/* One registered type. The descriptor is borrowed (static storage of the engine or a plugin);
 * the owner string is a copy. */
typedef struct apx_registry_entry {
    const void *desc;
    const char *name; /* the descriptor's name */
    const char *doc;  /* the descriptor's doc, or "" */
    char *owner;
} apx_registry_entry;

/* A plugin module loaded into the registry; dlclosed (in reverse order) by ap_registry_free. */
typedef struct apx_registry_module {
    void *handle; /* from dlopen */
    char *name;   /* the plugin's name (its info name) */
    char *path;   /* the file it was loaded from */
    const ap_plugin_info *info;
} apx_registry_module;

struct ap_registry {
    apx_registry_entry *entries[APX_KIND_COUNT]; /* in registration order */
    int count[APX_KIND_COUNT], cap[APX_KIND_COUNT];
    apx_registry_module *modules;
    int n_modules, cap_modules;
    /* The plugin whose ap_plugin_init is running (or NULL): the default owner of what it
     * registers with owner == NULL. */
    const char *loading;
    int closed;
};

/* How many types of each kind and how many modules the registry holds; apx_registry_rollback
 * returns to it. */
typedef struct apx_registry_mark {
    int count[APX_KIND_COUNT];
    int n_modules;
} apx_registry_mark;

/* "activation", "initializer", "neuron", "block", "rule", "kernel", "preconditioner" (the kind
 * names of ap_registry_each). */
const char *apx_kind_name(apx_kind k);

/* The entry named `name` of kind k, or NULL. Sets no error message. */
const apx_registry_entry *apx_registry_find(const ap_registry *r, apx_kind k, const char *name);

/* The module of the plugin named `name` loaded into r, or NULL. */
const apx_registry_module *apx_registry_module_find(const ap_registry *r, const char *name);

/* Records a loaded module: r takes over `handle` (dlclosed by ap_registry_free); name and path
 * are copied; info is borrowed from the module. AP_ENOMEM on failure (then r owns nothing). */
int apx_registry_module_add(ap_registry *r, void *handle, const char *name, const char *path,
                            const ap_plugin_info *info);

/* The current counts, and returning to them: every type registered since is forgotten and
 * every module loaded since is unloaded (used to undo what a failing plugin init registered, or
 * loaded, before its own module is unloaded). */
apx_registry_mark apx_registry_mark_now(const ap_registry *r);
void apx_registry_rollback(ap_registry *r, const apx_registry_mark *m);

#endif
