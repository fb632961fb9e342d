/* fuzz_set.c — the --set parser: `key=value` lines (as `apical run --set` passes them) or an
 * APICAL_SET string ("k=v,k=v", as under another interpreter) against apical.params with
 * defaults of every kind (integer, float, string, boolean), then apical.check_params. Every
 * outcome must be a value of the default's type or a usage error; nothing may crash.
 * Input: byte 0 odd = APICAL_SET, even = --set lines; the rest is the text. */
#define _GNU_SOURCE
#include <stdint.h>
#include <stdio.h>

#include "fuzz_lua.h"

static lua_State *L;

/* a usage error (a table with usage = true) is a refusal; any other error is a bug */
static const char *check =
    "local apical = require 'apical'\n"
    "local function usage(ok, e)\n"
    "  if not ok and not (type(e) == 'table' and e.usage) then error(e, 0) end\n"
    "  return ok\n"
    "end\n"
    "local d = { n = 4, dt = 0.5, name = 'x', flag = true, big = 1e300, neg = -3 }\n"
    "local ok, p = pcall(apical.params, d)\n"
    "if not usage(ok, p) then return end\n"
    "for k, v in pairs(d) do\n"
    "  assert(type(p[k]) == type(v), k)\n"
    "  assert(math.type(p[k]) == math.type(v), k)\n"
    "end\n"
    "usage(pcall(apical.check_params))\n";

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    if (!L) {
        L = fuzz_lua_new();
        fuzz_lua_do(L, "require 'apical'");
    }
    if (size < 1) return 0;
    const char *text = (const char *)data + 1;
    size_t n = size - 1;
    if (data[0] & 1) {
        char *env = strndup(text, n);
        setenv("APICAL_SET", env, 1);
        free(env);
        lua_pushnil(L);
    } else {
        unsetenv("APICAL_SET");
        lua_newtable(L);
        for (size_t i = 0; i < n;) {
            const char *line = text + i;
            const char *nl = memchr(line, '\n', n - i);
            size_t len = nl ? (size_t)(nl - line) : n - i;
            const char *eq = memchr(line, '=', len);
            if (eq && eq != line) { /* what the command line accepts */
                lua_pushlstring(L, line, (size_t)(eq - line));
                lua_pushlstring(L, eq + 1, len - (size_t)(eq - line) - 1);
                lua_settable(L, -3);
            }
            i += len + 1;
        }
    }
    lua_setfield(L, LUA_REGISTRYINDEX, "apical.cli.set");
    if (luaL_loadstring(L, check) != LUA_OK) abort();
    if (fuzz_lua_pcall(L, 0) != LUA_OK) {
        fprintf(stderr, "fuzz_set: %s\n", fuzz_lua_error);
        abort();
    }
    return 0;
}
