/* cmd_plugins.c — `apical plugins`: every apical_*.so in the plugin search path with its name,
 * version and doc, or why it cannot be loaded; then the types each loadable plugin registers
 * (loaded into a registry of its own, so one plugin cannot hide another's faults). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "apical/error.h"
#include "apical/plugin.h"
#include "apical/registry.h"
#include "cli.h"

typedef struct found {
    char *path, *name, *version, *doc, *err;
} found;

typedef struct found_list {
    found *items;
    int n, cap;
    int oom;
} found_list;

static char *dup_or_null(const char *s) {
    if (!s) return NULL;
    size_t n = strlen(s) + 1;
    char *d = malloc(n);
    if (d) memcpy(d, s, n);
    return d;
}

/* ap_plugin_scan's callback: the strings are only valid during the call, so copy them. */
static void on_plugin(void *ud, const char *path, const ap_plugin_info *info, const char *err) {
    found_list *fl = ud;
    if (fl->oom) return;
    if (fl->n == fl->cap) {
        int cap = fl->cap ? 2 * fl->cap : 8;
        found *p = realloc(fl->items, (size_t)cap * sizeof *p);
        if (!p) {
            fl->oom = 1;
            return;
        }
        fl->items = p;
        fl->cap = cap;
    }
    found *f = &fl->items[fl->n++];
    memset(f, 0, sizeof *f);
    f->path = dup_or_null(path);
    if (info) {
        f->name = dup_or_null(info->name);
        f->version = dup_or_null(info->version);
        f->doc = dup_or_null(info->doc);
    } else {
        f->err = dup_or_null(err && *err ? err : "cannot be loaded");
    }
}

typedef struct type_ctx {
    const char *owner;
    int count;
} type_ctx;

static int print_type(void *ud, const char *kind, const char *name, const char *owner,
                      const char *doc) {
    type_ctx *c = ud;
    if (!owner || strcmp(owner, c->owner) != 0) return 0;
    if (c->count == 0) printf("    types:\n");
    printf("      %-12s %-24s %s\n", kind, name, doc ? doc : "");
    c->count++;
    return 0;
}

/* Loads the plugin file into a fresh registry and lists what it registers. */
static int list_types(const found *f) {
    ap_registry *r = NULL;
    int rc = ap_registry_new(&r);
    if (rc) {
        printf("    cannot list its types: %s\n", ap_last_error());
        return 1;
    }
    const ap_plugin_info *info = NULL;
    rc = ap_plugin_load(r, f->path, &info);
    if (rc) {
        printf("    cannot load: %s\n", ap_last_error());
        ap_registry_free(&r);
        return 1;
    }
    type_ctx c = {info && info->name ? info->name : f->name, 0};
    ap_registry_each(r, print_type, &c);
    if (c.count == 0) printf("    (registers no types)\n");
    ap_registry_free(&r);
    return 0;
}

int cli_plugins(int argc, char **argv) {
    (void)argv;
    if (argc > 1) {
        fprintf(stderr, "apical: plugins takes no arguments\n");
        return CLI_USAGE;
    }
    found_list fl = {0};
    ap_plugin_scan(on_plugin, &fl);
    if (fl.oom) fprintf(stderr, "apical: out of memory while listing plugins\n");
    if (fl.n == 0)
        printf("no plugins found (the search path is APICAL_PLUGIN_PATH, the build tree's and "
               "the install prefix's plugin directories)\n");
    for (int i = 0; i < fl.n; i++) {
        const found *f = &fl.items[i];
        const char *path = f->path ? f->path : "?";
        if (f->err) {
            /* no info: the name from the file name apical_<name>.so */
            const char *base = strrchr(path, '/');
            base = base ? base + 1 : path;
            if (strncmp(base, "apical_", 7) == 0) base += 7;
            int len = (int)strcspn(base, ".");
            printf("%.*s  %s\n    cannot load: %s\n", len, base, path, f->err);
            continue;
        }
        printf("%s %s  %s\n    %s\n", f->name ? f->name : "?", f->version ? f->version : "", path,
               f->doc ? f->doc : "");
        list_types(f);
    }
    for (int i = 0; i < fl.n; i++) {
        free(fl.items[i].path);
        free(fl.items[i].name);
        free(fl.items[i].version);
        free(fl.items[i].doc);
        free(fl.items[i].err);
    }
    free(fl.items);
    return fl.oom ? CLI_FAIL : CLI_OK;
}
