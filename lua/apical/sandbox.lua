-- apical.sandbox — `apical run --sandbox MODEL`: runs a model file one did not write with
--   * no process creation: the model has no os.execute or io.popen; apical's own modules may
--     still run the few fixed commands they use (mkdir / rm -rf of a quoted path that passes the
--     checks below, gnuplot reading its script from a pipe);
--   * no dynamic loading: no package.loadlib, C modules only from apical's own module
--     directory, plugins only by name from the plugin search path (never by a file path), no
--     shared object (*.so) written anywhere;
--   * file access only inside the model's directory (read and write), the run directory
--     ./runs (read and write), the data directory ($APICAL_DATA or ./data, read only) and the
--     temporary files made with os.tmpname; every path is resolved with realpath first, so
--     a symbolic link cannot lead out. apical's module directory is never written.
-- The model file runs in an environment of its own (copies of the safe standard libraries, no
-- debug library); files loaded by it (require, dofile, loadfile, load) get that environment
-- too and must be text. The checks on files apply to apical's modules as well, so that a
-- model cannot ask them (dfc.train { out_dir = "/home/me" }) to write elsewhere.
-- docs/model-files.md describes it.
local errors = require "apical.errors"
errors.internal(debug.getinfo(1, "S").source)

local M = {}

local function refuse(msg)
  errors.raise("sandbox: " .. msg)
end

-- ---- paths -----------------------------------------------------------------------------------

local realpath -- set by enable (a C function: the resolved path, or nil)
local cwd

-- The resolved absolute path of `path`; for a file that does not exist yet, its nearest
-- existing ancestor resolved and the remaining components appended (none may be "..").
local function resolve(path)
  local abs = path:sub(1, 1) == "/" and path or (cwd .. "/" .. path)
  local rp = realpath(abs)
  if rp then return rp end
  local rest = {}
  local head = abs
  while true do
    local parent, last = head:match("^(.*)/([^/]*)$")
    if not parent then return nil end
    if last == ".." then return nil end
    if last ~= "" and last ~= "." then table.insert(rest, 1, last) end
    head = parent
    local base = realpath(head == "" and "/" or head)
    if base then
      return (base == "/" and "" or base) .. "/" .. table.concat(rest, "/")
    end
  end
end

local function inside(rp, root)
  return rp == root or rp:sub(1, #root + 1) == root .. "/" or root == "/"
end

local roots = {}     -- { path =, write =, what = }
local protected = {} -- resolved directories never written (apical's modules)
local tmpnames = {}  -- resolved names made by os.tmpname

local function roots_text()
  local parts = {}
  for _, r in ipairs(roots) do
    parts[#parts + 1] = string.format("%s %s (%s)", r.what, r.path, r.write and "read-write" or "read-only")
  end
  return table.concat(parts, ", ")
end

-- Checks that `path` may be read (write = false) or written; raises at the user's line if not.
local function check(path, write, what)
  if type(path) ~= "string" then return end -- the real function reports the bad argument
  local rp = resolve(path)
  if not rp then refuse(string.format("%s %q: the path cannot be resolved", what, path)) end
  if write and (rp:match("%.so$") or rp:match("%.so%.")) then
    refuse(string.format("%s %q: no shared object may be written under --sandbox", what, path))
  end
  if write then
    for _, d in ipairs(protected) do
      if inside(rp, d) then
        refuse(string.format("%s %q: apical's module directory %s is not writable under --sandbox", what,
          path, d))
      end
    end
  end
  if tmpnames[rp] then return end
  for _, r in ipairs(roots) do
    if inside(rp, r.path) and (r.write or not write) then return end
  end
  refuse(string.format("%s %q (%s): outside the directories a model may %s under --sandbox: %s", what, path,
    rp, write and "write" or "read", roots_text()))
end

-- ---- the real functions, guarded (for every caller, apical's modules included) ---------------

local function guard_files(env_of)
  local open, lines, input, output = io.open, io.lines, io.input, io.output
  local remove, rename, tmpname = os.remove, os.rename, os.tmpname
  local loadfile_, load_ = loadfile, load
  io.open = function(path, mode)
    check(path, type(mode) == "string" and mode:find("[wa+]") ~= nil, "io.open")
    return open(path, mode)
  end
  io.lines = function(path, ...)
    if path ~= nil then check(path, false, "io.lines") end
    return lines(path, ...)
  end
  io.input = function(f)
    if type(f) == "string" then check(f, false, "io.input") end
    return input(f)
  end
  io.output = function(f)
    if type(f) == "string" then check(f, true, "io.output") end
    return output(f)
  end
  os.remove = function(path)
    check(path, true, "os.remove")
    return remove(path)
  end
  os.rename = function(a, b)
    check(a, true, "os.rename")
    check(b, true, "os.rename")
    return rename(a, b)
  end
  os.tmpname = function()
    local name = tmpname()
    local rp = realpath(name)
    if rp then tmpnames[rp] = true end
    return name
  end
  -- code loaded from files or strings gets the sandbox environment unless one is given, and
  -- must be text (a binary chunk can break the virtual machine)
  loadfile = function(path, mode, env)
    if path == nil then refuse("loadfile: the standard input is not read under --sandbox") end
    check(path, false, "loadfile")
    if mode ~= nil and mode ~= "t" then refuse("loadfile: only text chunks are loaded under --sandbox") end
    if env == nil then env = env_of() end
    return loadfile_(path, "t", env)
  end
  dofile = function(path)
    local f, err = loadfile(path)
    if not f then error(err, 2) end
    return f()
  end
  load = function(chunk, name, mode, env)
    if mode ~= nil and mode ~= "t" then refuse("load: only text chunks are loaded under --sandbox") end
    if env == nil then env = env_of() end
    return load_(chunk, name, "t", env)
  end
end

-- The only commands apical's modules may run: mkdir -p 'P', mkdir 'P' 2>/dev/null, rm -rf 'P'
-- (P quoted as a POSIX shell single-quoted word), and gnuplot reading a script from a pipe.
local function unquote(q)
  local plain = q:gsub("'\\''", "")
  if plain:find("'", 1, true) then return nil end
  return (q:gsub("'\\''", "'"))
end

local function guard_processes()
  local execute, popen = os.execute, io.popen
  os.execute = function(cmd)
    if type(cmd) == "string" then
      local q = cmd:match("^mkdir %-p '(.*)'$") or cmd:match("^mkdir '(.*)' 2>/dev/null$") or
        cmd:match("^rm %-rf '(.*)'$")
      local path = q and unquote(q)
      if path and path ~= "" then
        check(path, true, cmd:match("^%S+"))
        return execute(cmd)
      end
    end
    refuse("os.execute: no process may be started under --sandbox")
  end
  io.popen = function(cmd, mode)
    if cmd == "gnuplot 2>&1 > /dev/null" and mode == "w" then return popen(cmd, mode) end
    refuse("io.popen: no process may be started under --sandbox")
  end
  package.loadlib = function()
    refuse("package.loadlib: no library may be loaded under --sandbox")
  end
end

-- Paths taken by apical.core's functions and methods (which read and write with C).
local function guard_core()
  local core = require "apical.core"
  local function wrap(t, name, args)
    local f = t[name]
    if type(f) ~= "function" then return end
    t[name] = function(...)
      local a = table.pack(...)
      for _, spec in ipairs(args) do check(a[spec[1]], spec[2], name) end
      return f(...)
    end
  end
  wrap(core, "load_npy", { { 1, false } })
  wrap(core, "try_load_npy", { { 1, false } })
  wrap(core, "dataset_idx", { { 1, false }, { 2, false } })
  wrap(core, "optim_save", { { 2, true } })
  wrap(core, "optim_load", { { 2, false } })
  wrap(core, "mkdir", { { 1, true } })
  -- the run directories' file functions (lua/lapi_fs.c): writing ones need a writable path
  for _, f in ipairs { { "write", true }, { "mkdir", true }, { "remove_tree", true }, { "lock", true },
    { "sync_dir", false }, { "crc32", false }, { "list", false } } do
    wrap(core.fs, f[1], { { 1, f[2] } })
  end
  local plugin_load = core.plugin_load
  core.plugin_load = function(name, ...)
    if type(name) == "string" and name:find("/", 1, true) then
      return nil, string.format("sandbox: plugin %q: plugins are loaded only by name from the plugin search " ..
        "path under --sandbox, never from a file path", name)
    end
    return plugin_load(name, ...)
  end
  -- the Array methods that write files (the class's __index is a C function: wrapped)
  local array = debug.getregistry()["apical.Array"]
  local index = array and array.__index
  if type(index) == "function" then
    local guarded = {}
    for _, name in ipairs { "save_npy", "save_csv" } do
      guarded[name] = function(self, path, ...)
        check(path, true, name)
        return index(self, name)(self, path, ...)
      end
    end
    array.__index = function(a, k)
      return guarded[k] or index(a, k)
    end
  end
end

-- ---- the model's environment ------------------------------------------------------------------

local function copy(t)
  local c = {}
  for k, v in pairs(t) do c[k] = v end
  return c
end

local function model_env(model_dir)
  local env = {}
  for _, k in ipairs { "assert", "error", "ipairs", "next", "pairs", "pcall", "print", "rawequal", "rawget",
    "rawlen", "rawset", "select", "setmetatable", "tonumber", "tostring", "type", "xpcall", "_VERSION",
    "collectgarbage", "load", "loadfile", "dofile", "arg" } do
    env[k] = _G[k]
  end
  -- the string metatable's __index is the real string table: not handed out
  local getmt = getmetatable
  env.getmetatable = function(v)
    if type(v) == "string" then return nil end
    return getmt(v)
  end
  for _, lib in ipairs { "string", "table", "math", "utf8", "coroutine" } do env[lib] = copy(_G[lib]) end
  env.io = copy(io)
  env.io.popen = function() refuse("io.popen: no process may be started under --sandbox") end
  env.os = {}
  for _, k in ipairs { "clock", "date", "difftime", "getenv", "time", "exit", "tmpname", "remove", "rename" } do
    env.os[k] = os[k]
  end
  env.os.execute = function() refuse("os.execute: no process may be started under --sandbox") end
  env.debug = setmetatable({}, { __index = function(_, k)
    refuse("debug." .. tostring(k) .. ": the debug library is not available under --sandbox")
  end })
  env.package = { path = "", cpath = "", config = package.config,
    loadlib = function() refuse("package.loadlib: no library may be loaded under --sandbox") end }
  local std = { string = env.string, table = env.table, math = env.math, utf8 = env.utf8,
    coroutine = env.coroutine, io = env.io, os = env.os, package = env.package }
  local real_require = require
  env.require = function(name)
    if std[name] then return std[name] end
    if name == "debug" or name == "_G" then
      refuse(string.format("require %q: not available under --sandbox", name))
    end
    return real_require(name)
  end
  env._G = env
  -- the model's own modules (model_dir/NAME.lua) run in its environment (searched last, so
  -- they never stand in for apical's)
  table.insert(package.searchers, function(name)
    local file = package.searchpath(name, model_dir .. "/?.lua")
    if not file then return "\n\tno file in the model's directory" end
    local f, err = loadfile(file, "t", env)
    if not f then error(err, 0) end
    return f, file
  end)
  return env
end

-- ---- enabling -----------------------------------------------------------------------------------

local function dir_of(rp)
  return rp:match("^(.*)/[^/]*$") or "/"
end

-- Restricts this Lua state and returns the environment to run the model file `script` in;
-- `rp` resolves a path (realpath(3)) or returns nil.
local enabled = false
function M.enable(script, rp)
  -- once only: a model must not widen its own limits by enabling the sandbox again
  if enabled then refuse("the sandbox is already enabled") end
  enabled = true
  realpath = rp
  cwd = assert(realpath("."), "sandbox: cannot resolve the current directory")
  local model = realpath(script)
  if not model then refuse("cannot resolve the model file " .. tostring(script)) end
  -- apical's own module directory: the only one searched for Lua and C modules
  local core = package.searchpath("apical.core", package.cpath)
  local lua_dir = core and realpath(core) and dir_of(dir_of(realpath(core)))
  if not lua_dir then refuse("cannot find apical's module directory") end
  package.path = lua_dir .. "/?.lua;" .. lua_dir .. "/?/init.lua"
  package.cpath = lua_dir .. "/?.so"
  protected[#protected + 1] = lua_dir
  roots[#roots + 1] = { path = dir_of(model), write = true, what = "the model's directory" }
  roots[#roots + 1] = { path = resolve("runs"), write = true, what = "the run directory" }
  roots[#roots + 1] = { path = resolve(os.getenv("APICAL_DATA") or "data"), write = false,
    what = "the data directory" }
  local env
  guard_core()
  guard_files(function() return env end)
  guard_processes()
  env = model_env(dir_of(model))
  return env
end

return M
