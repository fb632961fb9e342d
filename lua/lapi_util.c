/* lapi_util.c — the binding's error helpers, scratch buffers and class setup (see lapi.h). */
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "apical/error.h"
#include "lapi.h"

static const char *last_message(int code) {
    const char *msg = ap_last_error();
    return msg && *msg ? msg : ap_strerror(code);
}

int lapi_fail(lua_State *L, int code) {
    lua_pushnil(L);
    lua_pushstring(L, last_message(code));
    return 2;
}

int lapi_failf(lua_State *L, const char *fmt, ...) {
    char buf[1024];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(buf, sizeof buf, fmt, ap);
    va_end(ap);
    lua_pushnil(L);
    lua_pushstring(L, buf);
    return 2;
}

int lapi_errorf(lua_State *L, const char *fmt, ...) {
    char buf[1024];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(buf, sizeof buf, fmt, ap);
    va_end(ap);
    return luaL_error(L, "%s", buf);
}

int lapi_raise(lua_State *L, int code) {
    return luaL_error(L, "%s", last_message(code));
}

void *lapi_scratch(lua_State *L, size_t n) {
    return lua_newuserdatauv(L, n ? n : 1, 0);
}

void lapi_newclass(lua_State *L, const char *name, const luaL_Reg *methods, const luaL_Reg *meta) {
    luaL_newmetatable(L, name);
    if (meta) luaL_setfuncs(L, meta, 0);
    lua_newtable(L);
    if (methods) luaL_setfuncs(L, methods, 0);
    lua_setfield(L, -2, "__index");
    lua_pushstring(L, name);
    lua_setfield(L, -2, "__name");
}
