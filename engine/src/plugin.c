/* plugin.c — finding plugin modules on the search path, checking their ap_plugin_info_v1 and
 * loading them into a registry (dlopen/dlsym); listing what the search path offers. */
#include "apical/plugin.h"

#include <dirent.h>
#include <dlfcn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "apical/error.h"
#include "elf_check.h"
#include "registry_impl.h"

#ifndef APICAL_PLUGIN_BUILD_DIR
#define APICAL_PLUGIN_BUILD_DIR ""
#endif
#ifndef APICAL_PLUGIN_INSTALL_DIR
#define APICAL_PLUGIN_INSTALL_DIR ""
#endif

#define PREFIX "apical_"
#define SUFFIX ".so"

/* ---- the search path ---------------------------------------------------------------------- */

/* The directories to search, in order, without repeats or empty entries. */
typedef struct search_path {
    char **dir;
    int n, cap;
} search_path;

static void search_path_free(search_path *sp) {
    for (int i = 0; i < sp->n; i++)
        free(sp->dir[i]);
    free(sp->dir);
    sp->dir = NULL;
    sp->n = sp->cap = 0;
}

static int search_path_add(search_path *sp, const char *dir, size_t len) {
    while (len > 1 && dir[len - 1] == '/')
        len--; /* "a/" and "a" are the same directory */
    if (len == 0) return AP_OK;
    for (int i = 0; i < sp->n; i++)
        if (strlen(sp->dir[i]) == len && strncmp(sp->dir[i], dir, len) == 0) return AP_OK;
    if (sp->n == sp->cap) {
        int cap = sp->cap ? 2 * sp->cap : 8;
        char **d = realloc(sp->dir, (size_t)cap * sizeof *d);
        if (!d) return ap_error(AP_ENOMEM, "plugin search path: out of memory");
        sp->dir = d;
        sp->cap = cap;
    }
    char *copy = malloc(len + 1);
    if (!copy) return ap_error(AP_ENOMEM, "plugin search path: out of memory");
    memcpy(copy, dir, len);
    copy[len] = '\0';
    sp->dir[sp->n++] = copy;
    return AP_OK;
}

/* APICAL_PLUGIN_PATH (colon-separated), the build tree's plugin directory, the installed one. */
static int search_path_get(search_path *sp) {
    *sp = (search_path){0};
    const char *env = getenv("APICAL_PLUGIN_PATH");
    int rc = AP_OK;
    if (env) {
        for (const char *s = env; !rc;) {
            const char *e = strchr(s, ':');
            size_t len = e ? (size_t)(e - s) : strlen(s);
            rc = search_path_add(sp, s, len);
            if (!e) break;
            s = e + 1;
        }
    }
    if (!rc) rc = search_path_add(sp, APICAL_PLUGIN_BUILD_DIR, strlen(APICAL_PLUGIN_BUILD_DIR));
    if (!rc) rc = search_path_add(sp, APICAL_PLUGIN_INSTALL_DIR, strlen(APICAL_PLUGIN_INSTALL_DIR));
    if (rc) search_path_free(sp);
    return rc;
}

/* "a, b, c" into buf. */
static void search_path_list(const search_path *sp, char *buf, size_t n) {
    size_t used = 0;
    buf[0] = '\0';
    for (int i = 0; i < sp->n && used < n; i++) {
        int w = snprintf(buf + used, n - used, "%s%s", i ? ", " : "", sp->dir[i]);
        if (w < 0) break;
        used += (size_t)w;
    }
    if (sp->n == 0) snprintf(buf, n, "(no directories)");
}

static int is_regular_file(const char *path) {
    struct stat st;
    return stat(path, &st) == 0 && S_ISREG(st.st_mode);
}

int ap_plugin_find(const char *name, char *path, size_t n) {
    if (!name || !name[0]) return ap_error(AP_EINVAL, "ap_plugin_find: empty plugin name");
    if (!path || n == 0) return ap_error(AP_EINVAL, "ap_plugin_find: no output buffer");
    path[0] = '\0';
    if (strchr(name, '/')) {
        if (!is_regular_file(name))
            return ap_error(AP_ENOTFOUND, "plugin file \"%s\" does not exist", name);
        if (strlen(name) >= n)
            return ap_error(AP_ESIZE, "plugin file \"%s\": path longer than the buffer (%zu)", name,
                            n);
        strcpy(path, name);
        return AP_OK;
    }
    search_path sp;
    int rc = search_path_get(&sp);
    if (rc) return rc;
    char candidate[4096];
    for (int i = 0; i < sp.n; i++) {
        int w = snprintf(candidate, sizeof candidate, "%s/" PREFIX "%s" SUFFIX, sp.dir[i], name);
        if (w < 0 || (size_t)w >= sizeof candidate || !is_regular_file(candidate)) continue;
        if ((size_t)w >= n) {
            rc = ap_error(AP_ESIZE, "plugin \"%s\": path \"%s\" longer than the buffer (%zu)", name,
                          candidate, n);
        } else {
            memcpy(path, candidate, (size_t)w + 1);
        }
        search_path_free(&sp);
        return rc;
    }
    char dirs[768];
    search_path_list(&sp, dirs, sizeof dirs);
    search_path_free(&sp);
    return ap_error(AP_ENOTFOUND,
                    "plugin \"%s\" not found: no " PREFIX "%s" SUFFIX " in %s (searched "
                    "APICAL_PLUGIN_PATH, then the build and install directories)",
                    name, name, dirs);
}

/* ---- opening and checking a module --------------------------------------------------------- */

/* Checks the plugin info in of the module at path: major ABI version, struct size, a name
 * (equal to want_name unless that is NULL). */
static int check_plugin_info(const char *path, const char *want_name, const ap_plugin_info *in) {
    uint32_t major = in->abi_version >> 16, minor = in->abi_version & 0xffffu;
    if (major != AP_ABI_MAJOR)
        return ap_error(AP_EABI,
                        "plugin file \"%s\" was built for ABI %u.%u, this host has ABI %u.%u "
                        "(rebuild the plugin against this version of apical)",
                        path, (unsigned)major, (unsigned)minor, (unsigned)AP_ABI_MAJOR,
                        (unsigned)AP_ABI_MINOR);
    size_t v1_size = APX_V1_SIZE(ap_plugin_info, doc);
    if (in->struct_size < v1_size)
        return ap_error(AP_EABI,
                        "plugin file \"%s\": " AP_PLUGIN_INFO_SYMBOL ".struct_size = %u is "
                        "smaller than the %zu bytes of ABI %u",
                        path, (unsigned)in->struct_size, v1_size, (unsigned)AP_ABI_MAJOR);
    if (!in->name || !in->name[0])
        return ap_error(AP_EPLUGIN, "plugin file \"%s\": " AP_PLUGIN_INFO_SYMBOL ".name is empty",
                        path);
    if (want_name && strcmp(in->name, want_name) != 0)
        return ap_error(AP_EPLUGIN,
                        "plugin file \"%s\" calls itself \"%s\", not \"%s\" (its info name must "
                        "match its file name " PREFIX "<name>" SUFFIX ")",
                        path, in->name, want_name);
    return AP_OK;
}

/* checks that path is a complete ELF shared object for this host (apx_elf_check), dlopens it and
 * checks its ap_plugin_info_v1: present, major ABI version, struct size, a
 * name (equal to want_name unless that is NULL), and the presence of ap_plugin_init. On success
 * the caller owns *handle; on failure the module is closed and ap_error says why. */
static int plugin_open(const char *path, const char *want_name, void **handle,
                       const ap_plugin_info **info, ap_plugin_init_fn *init) {
    *handle = NULL;
    *info = NULL;
    *init = NULL;
    char why[256];
    if (apx_elf_check(path, why, sizeof why) != 0)
        return ap_error(AP_EPLUGIN, "plugin file \"%s\" cannot be loaded: %s", path, why);
    dlerror();
    void *h = dlopen(path, RTLD_NOW | RTLD_LOCAL);
    if (!h) {
        const char *why = dlerror();
        return ap_error(AP_EPLUGIN, "plugin file \"%s\" cannot be loaded: %s", path,
                        why ? why : "unknown dlopen error");
    }
    int rc = AP_OK;
    dlerror();
    const ap_plugin_info *in = dlsym(h, AP_PLUGIN_INFO_SYMBOL);
    void *sym = NULL;
    if (!in)
        rc = ap_error(AP_EPLUGIN,
                      "plugin file \"%s\" lacks the symbol \"" AP_PLUGIN_INFO_SYMBOL "\" (is it an "
                      "apical plugin? was the symbol exported?)",
                      path);
    else
        rc = check_plugin_info(path, want_name, in);
    if (!rc) {
        dlerror();
        sym = dlsym(h, AP_PLUGIN_INIT_SYMBOL);
        if (!sym)
            rc = ap_error(AP_EPLUGIN, "plugin \"%s\" (file \"%s\") lacks the symbol \"%s\"",
                          in->name, path, AP_PLUGIN_INIT_SYMBOL);
    }
    if (rc) {
        dlclose(h);
        return rc;
    }
    *handle = h;
    *info = in;
    *init = (ap_plugin_init_fn)sym;
    return AP_OK;
}

/* ---- loading ------------------------------------------------------------------------------ */

/* The checks of ap_plugin_load's arguments and of the registry's state. */
static int check_load(const ap_registry *r, const char *name) {
    if (!r) return ap_error(AP_EINVAL, "loading plugin \"%s\": registry is NULL", name ? name : "");
    if (!name || !name[0]) return ap_error(AP_EINVAL, "loading a plugin: empty name");
    if (r->closed)
        return ap_error(AP_ESTATE,
                        "loading plugin \"%s\": the registry is closed (a model was compiled)",
                        name);
    return AP_OK;
}

/* Loaded by path: the plugin may already be there, from this file (the same handle: a no-op,
 * returns 1 with *info set) or from another one (two modules cannot both own the name: an
 * error). Returns 0 when it is not loaded yet; otherwise h is closed. */
static int already_loaded(ap_registry *r, void *h, const ap_plugin_info *in, const char *path,
                          const ap_plugin_info **info, int *rc) {
    const apx_registry_module *m = apx_registry_module_find(r, in->name);
    if (!m) return 0;
    int same = m->handle == h;
    const char *other = m->path;
    dlclose(h); /* drops only the reference dlopen just took when it is the same module */
    if (same) {
        if (info) *info = m->info;
        *rc = AP_OK;
    } else {
        *rc = ap_error(AP_EDUP, "plugin \"%s\" (file \"%s\") is already loaded from \"%s\"",
                       m->name, path, other);
    }
    return 1;
}

/* Runs the module's init and records the module; if either fails, forgets what init registered
 * before unloading the code that the descriptors point into. */
static int init_module(ap_registry *r, void *h, const ap_plugin_info *in, const char *path,
                       ap_plugin_init_fn init) {
    apx_registry_mark mark = apx_registry_mark_now(r);
    const char *outer = r->loading; /* init may itself load the plugins it builds on */
    r->loading = in->name;
    ap_error_clear();
    int rc = init(r, AP_ABI_VERSION);
    r->loading = outer;
    if (rc != 0) {
        char msg[768];
        snprintf(msg, sizeof msg, "%s", ap_last_error()[0] ? ap_last_error() : "(no message)");
        apx_registry_rollback(r, &mark);
        ap_error(AP_EPLUGIN,
                 "plugin \"%s\" (file \"%s\"): " AP_PLUGIN_INIT_SYMBOL " failed with %d (%s): %s",
                 in->name, path, rc, ap_strerror(rc), msg);
        dlclose(h);
        return AP_EPLUGIN;
    }
    rc = apx_registry_module_add(r, h, in->name, path, in);
    if (rc) {
        apx_registry_rollback(r, &mark);
        dlclose(h);
    }
    return rc;
}

int ap_plugin_load(ap_registry *r, const char *name, const ap_plugin_info **info) {
    if (info) *info = NULL;
    int rc = check_load(r, name);
    if (rc) return rc;
    int by_path = strchr(name, '/') != NULL;
    if (!by_path) {
        const apx_registry_module *m = apx_registry_module_find(r, name);
        if (m) {
            if (info) *info = m->info;
            return AP_OK;
        }
    }
    char path[4096];
    if ((rc = ap_plugin_find(name, path, sizeof path))) return rc;

    void *h;
    const ap_plugin_info *in;
    ap_plugin_init_fn init;
    if ((rc = plugin_open(path, by_path ? NULL : name, &h, &in, &init))) return rc;
    if (already_loaded(r, h, in, path, info, &rc)) return rc;
    if ((rc = init_module(r, h, in, path, init))) return rc;
    if (info) *info = in;
    return AP_OK;
}

/* ---- scanning ----------------------------------------------------------------------------- */

/* The plugin name of a directory entry "apical_<name>.so", or 0 if it is not one; the name is
 * written into buf. */
static int plugin_file_name(const char *entry, char *buf, size_t n) {
    size_t len = strlen(entry), lp = strlen(PREFIX), ls = strlen(SUFFIX);
    if (len <= lp + ls || strncmp(entry, PREFIX, lp) != 0 || strcmp(entry + len - ls, SUFFIX) != 0)
        return 0;
    size_t nl = len - lp - ls;
    if (nl >= n) return 0;
    memcpy(buf, entry + lp, nl);
    buf[nl] = '\0';
    return 1;
}

static int cmp_str(const void *a, const void *b) {
    return strcmp(*(char *const *)a, *(char *const *)b);
}

/* The names of the plugin files in dir, sorted (readdir's order is arbitrary). */
static int dir_plugins(const char *dir, char ***names, int *count) {
    *names = NULL;
    *count = 0;
    DIR *d = opendir(dir);
    if (!d) return AP_OK; /* a directory that does not exist holds no plugins */
    char **v = NULL;
    int n = 0, cap = 0, rc = AP_OK;
    struct dirent *e;
    char name[256];
    while ((e = readdir(d))) {
        if (!plugin_file_name(e->d_name, name, sizeof name)) continue;
        if (n == cap) {
            cap = cap ? 2 * cap : 16;
            char **nv = realloc(v, (size_t)cap * sizeof *nv);
            if (!nv) {
                rc = AP_ENOMEM;
                break;
            }
            v = nv;
        }
        if (!(v[n] = strdup(name))) {
            rc = AP_ENOMEM;
            break;
        }
        n++;
    }
    closedir(d);
    if (rc) {
        for (int i = 0; i < n; i++)
            free(v[i]);
        free(v);
        return rc;
    }
    if (n > 1) qsort(v, (size_t)n, sizeof *v, cmp_str);
    *names = v;
    *count = n;
    return AP_OK;
}

/* Reports every plugin file of the directories of sp to fn, the first of each name only. */
static void scan_dirs(const search_path *sp,
                      void (*fn)(void *ud, const char *path, const ap_plugin_info *info,
                                 const char *err),
                      void *ud) {
    char **seen = NULL;
    int n_seen = 0, cap_seen = 0;
    for (int i = 0; i < sp->n; i++) {
        char **names;
        int count;
        if (dir_plugins(sp->dir[i], &names, &count)) continue;
        for (int j = 0; j < count; j++) {
            int dup = 0;
            for (int s = 0; s < n_seen && !dup; s++)
                dup = strcmp(seen[s], names[j]) == 0;
            if (dup) {
                free(names[j]);
                continue;
            }
            if (n_seen == cap_seen) {
                int cap = cap_seen ? 2 * cap_seen : 16;
                char **ns = realloc(seen, (size_t)cap * sizeof *ns);
                if (!ns) {
                    free(names[j]);
                    continue;
                }
                seen = ns;
                cap_seen = cap;
            }
            seen[n_seen++] = names[j]; /* seen owns the name now */
            char path[4096];
            int w = snprintf(path, sizeof path, "%s/" PREFIX "%s" SUFFIX, sp->dir[i], names[j]);
            if (w < 0 || (size_t)w >= sizeof path) continue;
            void *h;
            const ap_plugin_info *info;
            ap_plugin_init_fn init;
            /* the module is opened and its info read, but ap_plugin_init is never called */
            if (plugin_open(path, names[j], &h, &info, &init) == AP_OK) {
                fn(ud, path, info, NULL);
                dlclose(h);
            } else {
                fn(ud, path, NULL, ap_last_error());
            }
        }
        free(names);
    }
    for (int s = 0; s < n_seen; s++)
        free(seen[s]);
    free(seen);
}

void ap_plugin_scan(void (*fn)(void *ud, const char *path, const ap_plugin_info *info,
                               const char *err),
                    void *ud) {
    if (!fn) return;
    /* A scan reports failures through fn, so the caller's last error message is kept. */
    char saved[1024];
    snprintf(saved, sizeof saved, "%s", ap_last_error());
    search_path sp;
    if (search_path_get(&sp) == AP_OK) {
        scan_dirs(&sp, fn, ud);
        search_path_free(&sp);
    }
    ap_error(AP_OK, "%s", saved);
}
