/* test_plugin.c — the plugin loader against the plugins of tests/plugins: the example plugin
 * loads (once), and every broken one is refused with its code and a message that says why.
 * Needs APICAL_PLUGIN_PATH = <build>/tests/plugins (ctest sets it). */
#define _GNU_SOURCE /* RTLD_NOLOAD, to see that ap_registry_free unloads the modules */
#include <dlfcn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "apical/error.h"
#include "apical/plugin.h"
#include "apical/registry.h"
#include "check.h"

static const char *plugin_dir(void) {
    const char *d = getenv("APICAL_PLUGIN_PATH");
    return d ? d : "";
}

/* The owner ap_registry_each reports for (kind, name), or "" if absent. */
typedef struct owner_query {
    const char *kind, *name;
    char owner[64];
} owner_query;

static int find_owner(void *ud, const char *kind, const char *name, const char *owner,
                      const char *doc) {
    (void)doc;
    owner_query *q = ud;
    if (strcmp(kind, q->kind) || strcmp(name, q->name)) return 0;
    snprintf(q->owner, sizeof q->owner, "%s", owner);
    return 1;
}

static const char *owner_of(const ap_registry *r, const char *kind, const char *name) {
    static owner_query q;
    q = (owner_query){.kind = kind, .name = name};
    ap_registry_each(r, find_owner, &q);
    return q.owner;
}

static int count_each(void *ud, const char *kind, const char *name, const char *owner,
                      const char *doc) {
    (void)kind, (void)name, (void)owner, (void)doc;
    (*(int *)ud)++;
    return 0;
}

static int count_types(const ap_registry *r) {
    int n = 0;
    ap_registry_each(r, count_each, &n);
    return n;
}

/* ---- finding ------------------------------------------------------------------------------ */

static void test_find(void) {
    char path[4096];
    CHECK_OK(ap_plugin_find("example", path, sizeof path));
    CHECK(strstr(path, plugin_dir()) == path);
    CHECK(strstr(path, "/apical_example.so") != NULL);
    char small[8];
    CHECK_FAILS(ap_plugin_find("example", small, sizeof small), AP_ESIZE, "apical_example.so");
    CHECK_FAILS(ap_plugin_find("nonexistent", path, sizeof path), AP_ENOTFOUND,
                "apical_nonexistent.so");
    CHECK(strstr(ap_last_error(), plugin_dir()) != NULL); /* lists the directories searched */
    CHECK_FAILS(ap_plugin_find("", path, sizeof path), AP_EINVAL, "empty");
    CHECK_FAILS(ap_plugin_find("/no/such/dir/apical_x.so", path, sizeof path), AP_ENOTFOUND,
                "/no/such/dir/apical_x.so");
}

/* ---- loading ------------------------------------------------------------------------------ */

static void test_load_example(void) {
    ap_registry *r;
    CHECK_OK(ap_registry_new(&r));
    CHECK(ap_registry_neuron(r, "example.adaptive") == NULL);
    const ap_plugin_info *info = NULL;
    CHECK_OK(ap_plugin_load(r, "example", &info));
    CHECK(info != NULL);
    if (info) {
        CHECK(strcmp(info->name, "example") == 0);
        CHECK(info->version && info->version[0]);
    }
    const ap_neuron_type *n = ap_registry_neuron(r, "example.adaptive");
    CHECK(n != NULL);
    if (n) {
        CHECK(n->n_compartments == 2);
        CHECK(strcmp(n->compartments[n->rate_of].name, "soma") == 0);
        CHECK(n->dynamics != NULL);
    }
    CHECK(strcmp(owner_of(r, "neuron", "example.adaptive"), "example") == 0);
    CHECK(strcmp(owner_of(r, "activation", "example.cube"), "example") == 0);

    /* the neuron's dynamics on a batch of 2 x size 1, with tau_m = 1, tau_a = 10, g = 0.5 */
    if (n) {
        double params[3] = {1.0, 10.0, 0.5}, tau[2] = {1.0, 10.0};
        double x[2] = {0.2, -1.0}, a[2] = {0.4, 0.0}, ds[2] = {1.0, 2.0}, da[2] = {0.2, -1.0};
        double *value[2] = {x, a};
        const double *drive[2] = {ds, da};
        ap_neuron_ctx ctx = {
            .batch = 2, .size = 1, .params = params, .tau = tau, .value = value, .drive = drive};
        double out[2];
        CHECK_OK(n->dynamics(&ctx, 0, out));
        CHECK_NEAR(out[0], (-0.2 + 1.0 - 0.5 * 0.4) / 1.0, 1e-15);
        CHECK_NEAR(out[1], (1.0 + 2.0 - 0.0) / 1.0, 1e-15);
        CHECK_OK(n->dynamics(&ctx, 1, out));
        CHECK_NEAR(out[0], (-0.4 + 0.2) / 10.0, 1e-15);
        tau[0] = 0; /* an instantaneous soma gets its value */
        CHECK_OK(n->dynamics(&ctx, 0, out));
        CHECK_NEAR(out[0], 1.0 - 0.5 * 0.4, 1e-15);
        ds[0] = INFINITY;
        CHECK(n->dynamics(&ctx, 0, out) > 0); /* non-finite: recoverable */
    }

    /* loading it again, by name or by path, changes nothing */
    int before = count_types(r);
    CHECK_OK(ap_plugin_load(r, "example", &info));
    CHECK(info && strcmp(info->name, "example") == 0);
    char path[4096];
    snprintf(path, sizeof path, "%s/apical_example.so", plugin_dir());
    CHECK_OK(ap_plugin_load(r, path, NULL));
    CHECK(count_types(r) == before);

    /* a closed registry takes no plugin */
    ap_registry_close(r);
    CHECK_FAILS(ap_plugin_load(r, "failinit", NULL), AP_ESTATE, "closed");
    ap_registry_free(&r);

    /* freeing the registry unloaded the module */
    void *h = dlopen(path, RTLD_NOW | RTLD_NOLOAD);
    CHECK(h == NULL);
    if (h) dlclose(h);
}

static void test_load_by_path(void) {
    ap_registry *r;
    CHECK_OK(ap_registry_new(&r));
    char path[4096];
    snprintf(path, sizeof path, "%s/apical_example.so", plugin_dir());
    const ap_plugin_info *info = NULL;
    CHECK_OK(ap_plugin_load(r, path, &info));
    CHECK(info && strcmp(info->name, "example") == 0);
    CHECK(ap_registry_activation(r, "example.cube") != NULL);
    CHECK_OK(ap_plugin_load(r, "example", NULL)); /* known by its name now */

    /* two registries each hold the module */
    ap_registry *r2;
    CHECK_OK(ap_registry_new(&r2));
    CHECK_OK(ap_plugin_load(r2, "example", NULL));
    ap_registry_free(&r);
    const ap_activation *cube = ap_registry_activation(r2, "example.cube");
    CHECK(cube != NULL);
    if (cube) {
        double x = 2.0, y = 0.0;
        cube->f(1, &x, &y);
        CHECK(y == 8.0);
    }
    ap_registry_free(&r2);
}

static void test_load_broken(void) {
    ap_registry *r;
    CHECK_OK(ap_registry_new(&r));
    int before = count_types(r);
    const ap_plugin_info *info = (const ap_plugin_info *)&info; /* must be reset to NULL */

    CHECK_FAILS(ap_plugin_load(r, "badabi", &info), AP_EABI, "built for ABI 2.3");
    CHECK(strstr(ap_last_error(), "ABI 1.1"));
    CHECK(strstr(ap_last_error(), "apical_badabi.so"));
    CHECK(info == NULL);

    CHECK_FAILS(ap_plugin_load(r, "nosym", NULL), AP_EPLUGIN, "\"ap_plugin_init\"");
    CHECK(strstr(ap_last_error(), "apical_nosym.so"));

    CHECK_FAILS(ap_plugin_load(r, "noinfo", NULL), AP_EPLUGIN, "\"ap_plugin_info_v1\"");
    CHECK(strstr(ap_last_error(), "apical_noinfo.so"));

    /* failinit registers an activation, then fails: its message is passed on and what it
     * registered is forgotten before its module goes */
    CHECK_FAILS(ap_plugin_load(r, "failinit", NULL), AP_EPLUGIN,
                "failinit: the test plugin refuses to start (setting = 42)");
    CHECK(strstr(ap_last_error(), "apical_failinit.so"));
    CHECK(ap_registry_activation(r, "failinit.half") == NULL);
    CHECK(count_types(r) == before);
    /* and it is not taken as loaded: trying again fails again */
    CHECK_FAILS(ap_plugin_load(r, "failinit", NULL), AP_EPLUGIN, "refuses to start");

    CHECK_FAILS(ap_plugin_load(r, "nonexistent", NULL), AP_ENOTFOUND, "apical_nonexistent.so");
    CHECK(strstr(ap_last_error(), plugin_dir()) != NULL);
    CHECK_FAILS(ap_plugin_load(r, "", NULL), AP_EINVAL, "empty");
    CHECK_FAILS(ap_plugin_load(NULL, "example", NULL), AP_EINVAL, "registry is NULL");
    CHECK(count_types(r) == before);
    ap_registry_free(&r);
}

/* A plugin's types take names nobody else has: a clash makes its init fail as a whole. */
static void dummy_f(size_t n, const double *x, double *y) {
    for (size_t i = 0; i < n; i++)
        y[i] = x[i];
}

static void test_load_clash(void) {
    ap_registry *r;
    CHECK_OK(ap_registry_new(&r));
    static const ap_activation taken = {
        AP_ABI_VERSION, sizeof(ap_activation), "example.cube", "", dummy_f, dummy_f};
    CHECK_OK(ap_registry_add_activation(r, &taken, "test"));
    int before = count_types(r);
    CHECK_FAILS(ap_plugin_load(r, "example", NULL), AP_EPLUGIN, "\"example.cube\"");
    CHECK(strstr(ap_last_error(), "already registered"));
    /* example.adaptive, registered before the clash, is gone again */
    CHECK(ap_registry_neuron(r, "example.adaptive") == NULL);
    CHECK(count_types(r) == before);
    ap_registry_free(&r);
}

/* ---- scanning ----------------------------------------------------------------------------- */

typedef struct scan_result {
    int n, example, badabi, nosym, noinfo, failinit, examples;
    char *first_example; /* the path of the first apical_example.so reported */
} scan_result;

static void on_plugin(void *ud, const char *path, const ap_plugin_info *info, const char *err) {
    scan_result *s = ud;
    s->n++;
    CHECK((info == NULL) != (err == NULL));
    if (strstr(path, "/apical_example.so")) {
        s->example = info && !strcmp(info->name, "example") && !strcmp(info->version, "1.0");
        if (s->examples++ == 0) s->first_example = strdup(path);
    }
    if (strstr(path, "/apical_badabi.so")) s->badabi = !info && err && strstr(err, "ABI 2.3");
    if (strstr(path, "/apical_nosym.so")) s->nosym = !info && err && strstr(err, "ap_plugin_init");
    if (strstr(path, "/apical_noinfo.so"))
        s->noinfo = !info && err && strstr(err, "ap_plugin_info_v1");
    /* init is not called by a scan, so failinit looks fine */
    if (strstr(path, "/apical_failinit.so")) s->failinit = info && !strcmp(info->name, "failinit");
}

static void test_scan(void) {
    ap_error(AP_EINVAL, "the caller's message");
    scan_result s = {0};
    ap_plugin_scan(on_plugin, &s);
    CHECK(s.n >= 5);
    CHECK(s.example);
    CHECK(s.badabi);
    CHECK(s.nosym);
    CHECK(s.noinfo);
    CHECK(s.failinit);
    CHECK(s.examples == 1);
    free(s.first_example);
    CHECK(strcmp(ap_last_error(), "the caller's message") == 0);
}

/* A directory put in front of the search path, holding links to the example plugin under its
 * own name and under another: the first occurrence of a name wins, and a file whose info
 * name differs from its file name is refused. */
static void test_search_order(void) {
    char dir[] = "/tmp/apical_test_plugin_XXXXXX";
    CHECK(mkdtemp(dir) != NULL);
    char target[4096], renamed[4096], shadow[4096], path[8192];
    snprintf(target, sizeof target, "%s/apical_example.so", plugin_dir());
    snprintf(renamed, sizeof renamed, "%s/apical_renamed.so", dir);
    snprintf(shadow, sizeof shadow, "%s/apical_example.so", dir);
    CHECK(symlink(target, renamed) == 0);
    CHECK(symlink(target, shadow) == 0);
    char *old = strdup(plugin_dir());
    snprintf(path, sizeof path, "%s:%s", dir, old);
    setenv("APICAL_PLUGIN_PATH", path, 1);

    char found[4096];
    CHECK_OK(ap_plugin_find("example", found, sizeof found));
    CHECK(strcmp(found, shadow) == 0);

    ap_registry *r;
    CHECK_OK(ap_registry_new(&r));
    CHECK_FAILS(ap_plugin_load(r, "renamed", NULL), AP_EPLUGIN, "calls itself \"example\"");
    CHECK(strstr(ap_last_error(), "apical_renamed.so"));
    CHECK(ap_registry_neuron(r, "example.adaptive") == NULL);
    ap_registry_free(&r);

    scan_result s = {0};
    ap_plugin_scan(on_plugin, &s);
    CHECK(s.example); /* still found, once */
    CHECK(s.n >= 6);
    CHECK(s.examples == 1);
    CHECK(s.first_example && strcmp(s.first_example, shadow) == 0);
    free(s.first_example);

    setenv("APICAL_PLUGIN_PATH", old, 1);
    free(old);
    unlink(renamed);
    unlink(shadow);
    rmdir(dir);
}

int main(void) {
    if (!getenv("APICAL_PLUGIN_PATH"))
        fprintf(stderr, "note: APICAL_PLUGIN_PATH is not set; run through ctest, or set it to "
                        "<build>/tests/plugins\n");
    RUN(test_find);
    RUN(test_load_example);
    RUN(test_load_by_path);
    RUN(test_load_broken);
    RUN(test_load_clash);
    RUN(test_scan);
    RUN(test_search_order);
    return CHECK_DONE();
}
