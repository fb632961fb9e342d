/* fuzz_lua.h — a Lua state with the apical module (from the build tree's lib/lua, compiled in
 * as APICAL_LUA_BUILD_DIR) for the harnesses that go through the Lua binding, with a cap on
 * Lua's memory and on the instructions one input may run. */
#ifndef APICAL_FUZZ_LUA_H
#define APICAL_FUZZ_LUA_H

#include <dlfcn.h>
#include <lauxlib.h>
#include <lua.h>
#include <lualib.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define FUZZ_LUA_MEM_CAP ((size_t)256 << 20)
#define FUZZ_LUA_MAX_COUNTS 200 /* hook calls of 10,000 instructions: 2e6 instructions */

static size_t fuzz_lua_mem;
static int fuzz_lua_counts;

static void *fuzz_lua_alloc(void *ud, void *ptr, size_t osize, size_t nsize) {
    (void)ud;
    size_t old = ptr ? osize : 0;
    if (nsize == 0) {
        free(ptr);
        fuzz_lua_mem -= old;
        return NULL;
    }
    if (nsize > old && fuzz_lua_mem + (nsize - old) > FUZZ_LUA_MEM_CAP) return NULL;
    void *p = realloc(ptr, nsize);
    if (p) fuzz_lua_mem = fuzz_lua_mem - old + nsize;
    return p;
}

static void fuzz_lua_hook(lua_State *L, lua_Debug *ar) {
    (void)ar;
    if (++fuzz_lua_counts > FUZZ_LUA_MAX_COUNTS) luaL_error(L, "fuzz: instruction limit");
}

/* A new state with the standard libraries and package paths into the build tree. The module
 * apical.core is kept loaded for good (RTLD_NODELETE): libFuzzer keeps the coverage counters
 * of an instrumented library it has seen, so closing a state must not unmap it. */
static lua_State *fuzz_lua_new(void) {
    static void *core;
    if (!core &&
        !(core = dlopen(APICAL_LUA_BUILD_DIR "/apical/core.so", RTLD_NOW | RTLD_NODELETE))) {
        fprintf(stderr, "fuzz: %s\n", dlerror());
        abort();
    }
    lua_State *L = lua_newstate(fuzz_lua_alloc, NULL);
    if (!L) abort();
    luaL_openlibs(L);
    lua_getglobal(L, "package");
    lua_pushstring(L, APICAL_LUA_BUILD_DIR "/?.lua;" APICAL_LUA_BUILD_DIR "/?/init.lua");
    lua_setfield(L, -2, "path");
    lua_pushstring(L, APICAL_LUA_BUILD_DIR "/?.so");
    lua_setfield(L, -2, "cpath");
    lua_pop(L, 1);
    return L;
}

/* Runs the Lua source `code` (a trusted prelude) and aborts if it fails. */
static void fuzz_lua_do(lua_State *L, const char *code) {
    if (luaL_dostring(L, code) != LUA_OK) {
        fprintf(stderr, "fuzz prelude: %s\n", lua_tostring(L, -1));
        abort();
    }
}

static char fuzz_lua_error[512];

/* Calls the function on top of the stack with nargs arguments under the instruction limit;
 * returns lua_pcall's status, the message in fuzz_lua_error. */
static int fuzz_lua_pcall(lua_State *L, int nargs) {
    fuzz_lua_counts = 0;
    lua_sethook(L, fuzz_lua_hook, LUA_MASKCOUNT, 10000);
    int rc = lua_pcall(L, nargs, 0, 0);
    lua_sethook(L, NULL, 0, 0);
    fuzz_lua_error[0] = '\0';
    if (rc != LUA_OK) {
        const char *m = lua_tostring(L, -1);
        snprintf(fuzz_lua_error, sizeof fuzz_lua_error, "%s", m ? m : "(not a string)");
    }
    lua_settop(L, 0);
    return rc;
}

#endif
