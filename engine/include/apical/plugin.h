/* apical/plugin.h — finding and loading plugins (shared modules that register types). */
#ifndef APICAL_PLUGIN_H
#define APICAL_PLUGIN_H

#include <stddef.h>

#include "apical/export.h"
#include "apical/registry.h"

#ifdef __cplusplus
extern "C" {
#endif

/* Plugin `name` lives in a file `apical_<name>.so`. The search path is, in order: every
 * directory of the environment variable APICAL_PLUGIN_PATH (colon-separated), the build
 * tree's plugin directory, then the install prefix's lib/apical. A name containing '/' is
 * taken as a path to the file itself. */

/* Writes the path of the first match into path (size n). AP_ENOTFOUND (message lists the
 * directories searched) when there is none. */
AP_API int ap_plugin_find(const char *name, char *path, size_t n);

/* Loads plugin `name` into r: checks its ap_plugin_info_v1 (major ABI version, struct size,
 * name), then calls ap_plugin_init. Loading a plugin already loaded into r is a no-op that
 * returns AP_OK. On failure nothing stays registered from it: what its init registered before
 * failing is removed again and the module is unloaded; the message names the file and the
 * fault (AP_ENOTFOUND, AP_EPLUGIN for a missing symbol or failing init, AP_EABI). A module
 * loaded successfully stays loaded until ap_registry_free() releases r. If info is non-NULL
 * it receives the plugin's descriptor. */
AP_API int ap_plugin_load(ap_registry *r, const char *name, const ap_plugin_info **info);

/* Calls fn for every apical_*.so in the search path (first occurrence of a name wins), with
 * its info, or info == NULL and err describing why it cannot be loaded. */
AP_API void ap_plugin_scan(void (*fn)(void *ud, const char *path, const ap_plugin_info *info,
                                      const char *err),
                           void *ud);

#ifdef __cplusplus
}
#endif
#endif
