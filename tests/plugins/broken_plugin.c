/* broken_plugin.c — the faulty plugins the loader must refuse, one per build of this file:
 *     BROKEN_BADABI    apical_badabi.so    info says ABI major AP_ABI_MAJOR + 1
 *     BROKEN_NOSYM     apical_nosym.so     no ap_plugin_init
 *     BROKEN_NOINFO    apical_noinfo.so    no ap_plugin_info_v1
 *     BROKEN_FAILINIT  apical_failinit.so  init registers an activation, then fails
 * (tests/unit/test_plugin.c checks the code and message of each refusal). */
#include <stddef.h>

#include "apical/error.h"
#include "apical/registry.h"

#if defined(BROKEN_BADABI)
#define PLUGIN_NAME "badabi"
#define PLUGIN_ABI (((AP_ABI_MAJOR + 1u) << 16) | 3u)
#elif defined(BROKEN_NOSYM)
#define PLUGIN_NAME "nosym"
#elif defined(BROKEN_NOINFO)
#define PLUGIN_NAME "noinfo"
#elif defined(BROKEN_FAILINIT)
#define PLUGIN_NAME "failinit"
#else
#error "define one of BROKEN_BADABI, BROKEN_NOSYM, BROKEN_NOINFO, BROKEN_FAILINIT"
#endif

#ifndef PLUGIN_ABI
#define PLUGIN_ABI AP_ABI_VERSION
#endif

#ifndef BROKEN_NOINFO
AP_API const ap_plugin_info ap_plugin_info_v1 = {
    .abi_version = PLUGIN_ABI,
    .struct_size = sizeof(ap_plugin_info),
    .name = PLUGIN_NAME,
    .version = "0",
    .doc = "a broken plugin for the loader's tests",
};
#endif

#ifdef BROKEN_FAILINIT
static void half_f(size_t n, const double *x, double *y) {
    for (size_t i = 0; i < n; i++)
        y[i] = 0.5 * x[i];
}

static void half_df(size_t n, const double *x, double *d) {
    (void)x;
    for (size_t i = 0; i < n; i++)
        d[i] = 0.5;
}

/* Registered before init fails: the host must forget it before unloading this module. */
static const ap_activation half = {
    .abi_version = AP_ABI_VERSION,
    .struct_size = sizeof(ap_activation),
    .name = "failinit.half",
    .doc = "f(x) = x / 2",
    .f = half_f,
    .df = half_df,
};
#endif

#ifndef BROKEN_NOSYM
AP_API int ap_plugin_init(ap_registry *r, uint32_t host_abi) {
    (void)host_abi;
#ifdef BROKEN_FAILINIT
    int rc = ap_registry_add_activation(r, &half, PLUGIN_NAME);
    if (rc) return rc;
    return ap_error(AP_EINVAL, "failinit: the test plugin refuses to start (setting = %d)", 42);
#else
    (void)r;
    return 0;
#endif
}
#endif
