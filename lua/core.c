/* core.c — luaopen_apical_core: the C half of the Lua module `apical` (require "apical.core").
 * It assembles the functions of lapi_array.c, lapi_registry.c, lapi_model.c, lapi_sim.c,
 * lapi_data.c, lapi_optim.c and lapi_kernel.c into one table; apical.lua builds the user's API on
 * top of it. */
#include <time.h>

#include "apical/registry.h"
#include "lapi.h"

#ifndef APICAL_VERSION
#define APICAL_VERSION "unknown"
#endif

/* Where the command-line program leaves its --set values: a table {key = "value"} in the Lua
 * registry under this key (cli/cmd_run.c writes it). */
#define CLI_SET_KEY "apical.cli.set"

/* core.cli_sets(): the --set table of the apical program, or nil under another interpreter. */
static int l_cli_sets(lua_State *L) {
    if (lua_getfield(L, LUA_REGISTRYINDEX, CLI_SET_KEY) != LUA_TTABLE) lua_pushnil(L);
    return 1;
}

/* core.clock(): seconds of a monotonic clock (wall time, for timing runs). */
static int l_clock(lua_State *L) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    lua_pushnumber(L, (double)t.tv_sec + 1e-9 * (double)t.tv_nsec);
    return 1;
}

/* core.metatable(name): the metatable of a userdata kind ("apical.Model", ...), so the Lua half
 * can add its methods. */
static int l_metatable(lua_State *L) {
    luaL_getmetatable(L, luaL_checkstring(L, 1));
    return 1;
}

LAPI_EXPORT int luaopen_apical_core(lua_State *L) {
    luaL_checkversion(L);
    lua_newtable(L);
    lapi_open_array(L);
    lapi_open_registry(L);
    lapi_open_model(L);
    lapi_open_sim(L);
    lapi_open_data(L);
    lapi_open_optim(L);
    lapi_open_kernel(L);
    lapi_open_fs(L);
    lapi_open_comm(L);
    static const luaL_Reg fns[] = {{"cli_sets", l_cli_sets},
                                   {"metatable", l_metatable},
                                   {"clock", l_clock},
                                   {"mkdir", lapi_mkdir},
                                   {NULL, NULL}};
    luaL_setfuncs(L, fns, 0);
    lua_pushliteral(L, APICAL_VERSION);
    lua_setfield(L, -2, "version");
    lua_pushinteger(L, AP_ABI_VERSION);
    lua_setfield(L, -2, "abi");
    return 1;
}
