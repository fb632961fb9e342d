/* registry_impl.h — the registry's internals, shared by registry.c and plugin.c (not installed).
 * Everything here has hidden visibility (the library's default): plugins see only registry.h. */
#ifndef APICAL_REGISTRY_IMPL_H
#define APICAL_REGISTRY_IMPL_H

#include <stddef.h>

#include "apical/registry.h"

/* The kinds of registered types, in the order ap_registry_each() walks them. */
typedef enum {
    AP_KIND_ACTIVATION,
    AP_KIND_INITIALIZER,
    AP_KIND_NEURON,
    AP_KIND_BLOCK,
    AP_KIND_RULE,
    AP_KIND_KERNEL,
    AP_KIND_PRECOND,
    AP_KIND_COUNT
} ap_kind;

/* The size of the fields a v1 descriptor has: from the start of `type` to the end of `last`.
 * The host reads no further than this in a descriptor whose struct_size is at least this. */
#define AP_V1_SIZE(type, last) (offsetof(type, last) + sizeof(((type *)0)->last))

/* One registered type. The descriptor is borrowed (static storage of the engine or a plugin);
 * the owner string is a copy. */
typedef struct ap_registry_entry {
    const void *desc;
    const char *name; /* the descriptor's name */
    const char *doc;  /* the descriptor's doc, or "" */
    char *owner;
} ap_registry_entry;

/* A plugin module loaded into the registry; dlclosed (in reverse order) by ap_registry_free. */
typedef struct ap_registry_module {
    void *handle; /* from dlopen */
    char *name;   /* the plugin's name (its info name) */
    char *path;   /* the file it was loaded from */
    const ap_plugin_info *info;
} ap_registry_module;

struct ap_registry {
    ap_registry_entry *entries[AP_KIND_COUNT]; /* in registration order */
    int count[AP_KIND_COUNT], cap[AP_KIND_COUNT];
    ap_registry_module *modules;
    int n_modules, cap_modules;
    /* The plugin whose ap_plugin_init is running (or NULL): the default owner of what it
     * registers with owner == NULL. */
    const char *loading;
    int closed;
};

/* How many types of each kind and how many modules the registry holds; ap_registry_rollback
 * returns to it. */
typedef struct ap_registry_mark {
    int count[AP_KIND_COUNT];
    int n_modules;
} ap_registry_mark;

/* "activation", "initializer", "neuron", "block", "rule", "kernel", "preconditioner" (the kind
 * names of ap_registry_each). */
const char *ap_kind_name(ap_kind k);

/* The entry named `name` of kind k, or NULL. Sets no error message. */
const ap_registry_entry *ap_registry_find(const ap_registry *r, ap_kind k, const char *name);

/* The module of the plugin named `name` loaded into r, or NULL. */
const ap_registry_module *ap_registry_module_find(const ap_registry *r, const char *name);

/* Records a loaded module: r takes over `handle` (dlclosed by ap_registry_free); name and path
 * are copied; info is borrowed from the module. AP_ENOMEM on failure (then r owns nothing). */
int ap_registry_module_add(ap_registry *r, void *handle, const char *name, const char *path,
                           const ap_plugin_info *info);

/* The current counts, and returning to them: every type registered since is forgotten and
 * every module loaded since is unloaded (used to undo what a failing plugin init registered, or
 * loaded, before its own module is unloaded). */
ap_registry_mark ap_registry_mark_now(const ap_registry *r);
void ap_registry_rollback(ap_registry *r, const ap_registry_mark *m);

#endif
