/* fuzz_model.c — the Lua model loader through the public API: the input is a model file's
 * source, run in a fresh Lua state whose environment holds the apical module and the safe
 * parts of the standard library (no io, os, package, debug, load or plugins). Runs are
 * bounded (euler or rk4, at most 2,000 steps), arrays to 10^6 values and models to batch 64
 * and 4,096 units per object, Lua to 256 MB and 2e6 instructions: what is left to find is a
 * crash, a sanitizer report or a leak in apical. The seed corpus is examples/ and models/. */
#define _GNU_SOURCE
#include <stdint.h>
#include <stdio.h>

#include "fuzz_lua.h"

static const char *prelude =
    "local apical = require 'apical'\n"
    "local core = require 'apical.core'\n"
    "local function small(n, what)\n"
    "  if type(n) == 'number' and n > 4096 then error('fuzz: ' .. what .. ' > 4096', 3) end\n"
    "end\n"
    "local function count(dims)\n"
    "  if type(dims) ~= 'table' then return end\n"
    "  local n = 1\n"
    "  for _, d in ipairs(dims) do if type(d) == 'number' then n = n * math.abs(d) end end\n"
    "  if n > 1e6 then error('fuzz: more than 1e6 values', 3) end\n"
    "end\n"
    "local zeros, array, model = apical.zeros, apical.array, apical.model\n"
    "apical.zeros = function(d, ...) count(d) return zeros(d, ...) end\n"
    "apical.array = function(v, d, ...) count(d) if type(v) == 'table' then count({ #v }) end\n"
    "  return array(v, d, ...) end\n"
    "apical.model = function(o, ...)\n"
    "  if type(o) == 'table' and type(o.batch) == 'number' and o.batch > 64 then\n"
    "    error('fuzz: batch > 64', 2) end\n"
    "  return model(o, ...)\n"
    "end\n"
    "apical.plugin = function() error('fuzz: no plugins', 2) end\n"
    "apical.run_parallel = function() error('fuzz: no parallel runs', 2) end\n"
    "local mm = core.metatable('apical.Model')\n"
    "local mindex = mm.__index\n"
    "local function get(t, s, k) if type(t) == 'function' then return t(s, k) end return t[k] end\n"
    "mm.__index = function(s, k)\n"
    "  local f = get(mindex, s, k)\n"
    "  if (k == 'population' or k == 'input') and type(f) == 'function' then\n"
    "    return function(self, o, ...)\n"
    "      if type(o) == 'table' then small(o.size, k .. ' size') end\n"
    "      return f(self, o, ...)\n"
    "    end\n"
    "  end\n"
    "  return f\n"
    "end\n"
    "local sm = core.metatable('apical.Sim')\n"
    "local sindex = sm.__index\n"
    "sm.__index = function(s, k)\n"
    "  local f = get(sindex, s, k)\n"
    "  if k == 'run' and type(f) == 'function' then\n"
    "    return function(self, o, ...)\n"
    "      if type(o) ~= 'table' then error('fuzz: run needs options', 2) end\n"
    "      if o.solver ~= 'euler' and o.solver ~= 'rk4' then error('fuzz: euler or rk4 only', 2) "
    "end\n"
    "      local dt, t = tonumber(o.dt), tonumber(o.t_end)\n"
    "      if not (dt and t and dt > 0 and t >= 0 and t / dt <= 2000) then\n"
    "        error('fuzz: at most 2000 steps', 2) end\n"
    "      return f(self, o, ...)\n"
    "    end\n"
    "  end\n"
    "  return f\n"
    "end\n"
    "local env = {}\n"
    "for _, k in ipairs { 'assert', 'error', 'ipairs', 'next', 'pairs', 'pcall', 'rawequal',\n"
    "  'rawget', 'rawlen', 'rawset', 'select', 'setmetatable', 'getmetatable', 'tonumber',\n"
    "  'tostring', 'type', 'xpcall' } do env[k] = _G[k] end\n"
    "for _, k in ipairs { 'string', 'table', 'math', 'utf8' } do\n"
    "  env[k] = {}\n"
    "  for n, f in pairs(_G[k]) do env[k][n] = f end\n"
    "end\n"
    "env.print = function() end\n"
    "env.os = { clock = os.clock, time = os.time, date = os.date }\n"
    "env.io = { write = function() end }\n"
    "env.arg = {}\n"
    "env.require = function(n)\n"
    "  if n == 'apical' then return apical end\n"
    "  error('fuzz: only apical may be required', 2)\n"
    "end\n"
    "fuzz_env = env\n";

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    lua_State *L = fuzz_lua_new();
    fuzz_lua_do(L, prelude);
    if (luaL_loadbufferx(L, (const char *)data, size, "=model", "t") == LUA_OK) {
        lua_getglobal(L, "fuzz_env");
        lua_setupvalue(L, -2, 1);
        (void)fuzz_lua_pcall(L, 0); /* an error is the model being refused */
    }
    lua_close(L);
    return 0;
}
