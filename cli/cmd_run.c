/* cmd_run.c — `apical run SCRIPT.lua [--set key=value ...] [--traceback] [--sandbox] [--]
 * [args ...]`
 * (SCRIPT "-" reads the standard input): runs a Lua script in a fresh Lua 5.4 state whose package
 * paths find the apical module next to this program, then checks that every --set names a declared
 * parameter. Errors print as one line `apical: script.lua:12: message` (plus the Lua stack with
 * --traceback). */
#define _XOPEN_SOURCE 700 /* realpath */
#include <lauxlib.h>
#include <limits.h>
#include <lua.h>
#include <lualib.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "cli.h"

#ifndef APICAL_LUA_REL_INSTALL
#define APICAL_LUA_REL_INSTALL "../lib/apical/lua"
#endif

/* The table of --set values lives in the Lua registry under this key; the module reads it
 * (lua/core.c, core.cli_sets). */
#define CLI_SET_KEY "apical.cli.set"

typedef struct run_args {
    const char *script;
    const char *module; /* instead of a script: require(module).main(args...) */
    int traceback;
    int sandbox; /* --sandbox: lua/apical/sandbox.lua restricts the state */
    int n_sets;
    char **sets; /* "key=value" */
    int n_args;
    char **args; /* for the script */
} run_args;

static int usage_error(const char *msg, const char *arg) {
    fprintf(stderr, "apical: run: %s%s%s\n", msg, arg ? " " : "", arg ? arg : "");
    fprintf(stderr, "usage: apical run SCRIPT.lua [--set key=value ...] [--traceback] "
                    "[--sandbox] [--] [args ...]\n");
    return CLI_USAGE;
}

/* argv[0] is "run". The option arrays point into argv. */
static int parse(int argc, char **argv, run_args *ra) {
    memset(ra, 0, sizeof *ra);
    ra->sets = calloc((size_t)argc, sizeof *ra->sets);
    ra->args = calloc((size_t)argc, sizeof *ra->args);
    if (!ra->sets || !ra->args) {
        fprintf(stderr, "apical: out of memory\n");
        return CLI_FAIL;
    }
    int only_args = 0;
    for (int i = 1; i < argc; i++) {
        char *a = argv[i];
        if (!only_args && strcmp(a, "--") == 0) {
            only_args = 1;
        } else if (!only_args && (strcmp(a, "--set") == 0 || strncmp(a, "--set=", 6) == 0)) {
            char *kv = a[5] == '=' ? a + 6 : (i + 1 < argc ? argv[++i] : NULL);
            if (!kv) return usage_error("--set needs key=value", NULL);
            char *eq = strchr(kv, '=');
            if (!eq || eq == kv) return usage_error("--set needs key=value, got", kv);
            ra->sets[ra->n_sets++] = kv;
        } else if (!only_args && strcmp(a, "--traceback") == 0) {
            ra->traceback = 1;
        } else if (!only_args && strcmp(a, "--sandbox") == 0) {
            ra->sandbox = 1;
        } else if (!only_args && a[0] == '-' && a[1] != '\0') {
            return usage_error("unknown option", a);
        } else if (!ra->script) {
            ra->script = a;
        } else {
            ra->args[ra->n_args++] = a;
        }
    }
    if (!ra->script) return usage_error("no script given", NULL);
    if (ra->sandbox && strcmp(ra->script, "-") == 0)
        return usage_error("--sandbox needs a model file, not the standard input", NULL);
    return CLI_OK;
}

static int is_file(const char *path) {
    struct stat st;
    return stat(path, &st) == 0 && S_ISREG(st.st_mode);
}

/* Prepends dir's ?.lua, ?/init.lua and ?.so to package.path and package.cpath when dir holds
 * the apical module. */
static void add_module_dir(lua_State *L, const char *path) {
    char dir[PATH_MAX], probe[PATH_MAX + 32];
    if (!realpath(path, dir)) return;
    snprintf(probe, sizeof probe, "%s/apical.lua", dir);
    if (!is_file(probe)) return;
    lua_getglobal(L, "package");
    lua_getfield(L, -1, "path");
    lua_pushfstring(L, "%s/?.lua;%s/?/init.lua;%s", dir, dir, lua_tostring(L, -1));
    lua_setfield(L, -3, "path");
    lua_pop(L, 1);
    lua_getfield(L, -1, "cpath");
    lua_pushfstring(L, "%s/?.so;%s", dir, lua_tostring(L, -1));
    lua_setfield(L, -3, "cpath");
    lua_pop(L, 2);
}

/* The module's directories relative to this program: ../lib/lua in the build tree, the
 * install layout's lib directory otherwise. The install one is added first so the build
 * tree's wins when both exist. */
static void set_paths(lua_State *L) {
    char exe[PATH_MAX];
    ssize_t n = readlink("/proc/self/exe", exe, sizeof exe - 1);
    if (n <= 0) return;
    exe[n] = '\0';
    char *slash = strrchr(exe, '/');
    if (!slash) return;
    *slash = '\0';
    char dir[PATH_MAX + 64];
    snprintf(dir, sizeof dir, "%s/%s", exe, APICAL_LUA_REL_INSTALL);
    add_module_dir(L, dir);
    snprintf(dir, sizeof dir, "%s/../lib/lua", exe);
    add_module_dir(L, dir);
}

/* Message handler: keeps usage errors (tables with usage = true) as they are; turns anything
 * else into a string, with the stack when upvalue 1 is true. */
static int msgh(lua_State *L) {
    if (lua_type(L, 1) == LUA_TTABLE) {
        lua_getfield(L, 1, "usage");
        int usage = lua_toboolean(L, -1);
        lua_pop(L, 1);
        if (usage) return 1;
    }
    const char *msg = lua_tostring(L, 1);
    if (!msg) {
        if (luaL_callmeta(L, 1, "__tostring") && lua_type(L, -1) == LUA_TSTRING)
            msg = lua_tostring(L, -1);
        else
            msg = lua_pushfstring(L, "(error object is a %s value)", luaL_typename(L, 1));
    }
    if (lua_toboolean(L, lua_upvalueindex(1)))
        luaL_traceback(L, L, msg, 1);
    else
        lua_pushstring(L, msg);
    return 1;
}

/* Prints the error at the top of the stack; returns the exit status it calls for. */
static int report(lua_State *L) {
    int status = CLI_FAIL;
    if (lua_type(L, -1) == LUA_TTABLE) {
        lua_getfield(L, -1, "usage");
        if (lua_toboolean(L, -1)) status = CLI_USAGE;
        lua_pop(L, 1);
        luaL_tolstring(L, -1, NULL);
    }
    const char *msg = lua_tostring(L, -1);
    fprintf(stderr, "apical: %s\n", msg ? msg : "(error without a message)");
    return status;
}

/* realpath(3) for apical.sandbox: the resolved path, or nil. */
static int l_realpath(lua_State *L) {
    char buf[PATH_MAX];
    if (realpath(luaL_checkstring(L, 1), buf))
        lua_pushstring(L, buf);
    else
        lua_pushnil(L);
    return 1;
}

/* --sandbox: require("apical.sandbox").enable(script, realpath) restricts the state and leaves
 * the model's environment on the stack; 0, or the status of the reported error. */
static int sandbox_env(lua_State *L, const run_args *ra, int h) {
    lua_getglobal(L, "require");
    lua_pushliteral(L, "apical.sandbox");
    if (lua_pcall(L, 1, 1, h) != LUA_OK) return report(L);
    lua_getfield(L, -1, "enable");
    lua_remove(L, -2);
    lua_pushstring(L, ra->script);
    lua_pushcfunction(L, l_realpath);
    if (lua_pcall(L, 2, 1, h) != LUA_OK) return report(L);
    return 0;
}

/* After the script: every --set must name a parameter some apical.params call declared. */
static int check_sets(lua_State *L, const run_args *ra, int msgh_idx) {
    if (ra->n_sets == 0) return CLI_OK;
    lua_getglobal(L, "package");
    lua_getfield(L, -1, "loaded");
    lua_getfield(L, -1, "apical");
    if (lua_type(L, -1) == LUA_TTABLE) {
        lua_getfield(L, -1, "check_params");
        if (lua_isfunction(L, -1)) {
            if (lua_pcall(L, 0, 0, msgh_idx) != LUA_OK) return report(L);
            return CLI_OK;
        }
    }
    const char *kv = ra->sets[0];
    fprintf(stderr,
            "apical: --set %s: the script has no parameter %.*s (it declares none: it does not "
            "call apical.params)\n",
            kv, (int)(strchr(kv, '=') - kv), kv);
    return CLI_USAGE;
}

static int run_script(lua_State *L, const run_args *ra) {
    luaL_openlibs(L);
    set_paths(L);
    /* --set values, as strings; apical.params converts them to the defaults' types */
    lua_newtable(L);
    for (int i = 0; i < ra->n_sets; i++) {
        const char *kv = ra->sets[i];
        const char *eq = strchr(kv, '=');
        lua_pushlstring(L, kv, (size_t)(eq - kv));
        lua_pushstring(L, eq + 1);
        lua_settable(L, -3);
    }
    lua_setfield(L, LUA_REGISTRYINDEX, CLI_SET_KEY);
    /* arg, as lua.c makes it: arg[0] the script, arg[1..] its arguments */
    lua_createtable(L, ra->n_args, 2);
    lua_pushliteral(L, "apical run");
    lua_rawseti(L, -2, -1);
    lua_pushstring(L, ra->script);
    lua_rawseti(L, -2, 0);
    for (int i = 0; i < ra->n_args; i++) {
        lua_pushstring(L, ra->args[i]);
        lua_rawseti(L, -2, i + 1);
    }
    lua_setglobal(L, "arg");

    lua_pushboolean(L, ra->traceback);
    lua_pushcclosure(L, msgh, 1);
    int h = lua_gettop(L);
    if (ra->module) {
        /* a built-in command written in Lua: require(module).main */
        lua_getglobal(L, "require");
        lua_pushstring(L, ra->module);
        if (lua_pcall(L, 1, 1, h) != LUA_OK) return report(L);
        lua_getfield(L, -1, "main");
        lua_remove(L, -2);
    } else {
        /* "-" is the standard input, as for lua */
        const char *file = strcmp(ra->script, "-") == 0 ? NULL : ra->script;
        if (ra->sandbox) {
            int status = sandbox_env(L, ra, h);
            if (status) return status;
            /* text only; the chunk's _ENV (its first upvalue) is the model's environment */
            if (luaL_loadfilex(L, file, "t") != LUA_OK) return report(L);
            lua_insert(L, -2);
            lua_setupvalue(L, -2, 1);
        } else if (luaL_loadfile(L, file) != LUA_OK) {
            return report(L);
        }
    }
    luaL_checkstack(L, ra->n_args + 1, "script arguments");
    for (int i = 0; i < ra->n_args; i++)
        lua_pushstring(L, ra->args[i]);
    if (lua_pcall(L, ra->n_args, 0, h) != LUA_OK) return report(L);
    return check_sets(L, ra, h);
}

/* Runs run_script in protected mode, so that a memory error outside the script's pcall (while
 * setting up) is reported instead of aborting. */
static int protected_run(lua_State *L) {
    const run_args *ra = lua_touserdata(L, 1);
    lua_pushinteger(L, run_script(L, ra));
    return 1;
}

static int run_protected(run_args *ra) {
    int status;
    lua_State *L = luaL_newstate();
    if (!L) {
        fprintf(stderr, "apical: cannot create a Lua state (out of memory)\n");
        return CLI_FAIL;
    }
    lua_pushcfunction(L, protected_run);
    lua_pushlightuserdata(L, ra);
    if (lua_pcall(L, 1, 1, 0) != LUA_OK)
        status = report(L);
    else
        status = (int)lua_tointeger(L, -1);
    lua_close(L);
    return status;
}

int cli_module(const char *name, const char *module, int argc, char **argv) {
    run_args ra = {.script = name, .module = module, .n_args = argc - 1, .args = argv + 1};
    return run_protected(&ra);
}

int cli_run(int argc, char **argv) {
    run_args ra;
    int status = parse(argc, argv, &ra);
    if (status == CLI_OK) status = run_protected(&ra);
    free(ra.sets);
    free(ra.args);
    return status;
}
