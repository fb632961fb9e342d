-- apical/types.lua — type specs ({ kind =, type =, params = }), their constructors (built-in
-- and per plugin), kernel calls, plugin loading (with the plugin's Lua half) and the list of
-- registered types.
local core = require "apical.core"
local errors = require "apical.errors"
errors.internal(debug.getinfo(1, "S").source)

local M = {}

-- kind of a spec -> kind in core.type_info / messages
local KINDS = { neuron = "neuron", block = "block", rule = "rule", init = "init",
    activation = "activation" }
local NOUN = { neuron = "neuron type", block = "block type", rule = "rule", init = "initializer",
    activation = "activation" }

local spec_mt = { __name = "apical.Spec" }

local function fmt_num(x)
    if x ~= x then return "nan" end
    if x == math.huge then return "inf" end
    if x == -math.huge then return "-inf" end
    if x >= 1.7e308 then return "inf" end
    if x <= -1.7e308 then return "-inf" end
    return (string.format("%.10g", x))
end

-- What a parameter must be, as a user reads it: "finite and > 0" for inf under [DBL_MIN,
-- DBL_MAX], ">= 0", "<= 1", "in [0, 1]" (a bound of +-DBL_MAX is no bound).
local DBL_MIN = 2.2250738585072014e-308
local function allowed(v, lo, hi)
    local fin = (v ~= v or v == math.huge or v == -math.huge) and "finite and " or ""
    local has_lo, has_hi = lo > -1.7e308, hi < 1.7e308
    if has_lo and has_hi then return string.format("%sin [%s, %s]", fin, fmt_num(lo), fmt_num(hi)) end
    if has_lo and lo == DBL_MIN then return fin .. "> 0" end
    if has_lo then return fin .. ">= " .. fmt_num(lo) end
    if has_hi then return fin .. "<= " .. fmt_num(hi) end
    return "finite"
end

spec_mt.__tostring = function(s)
    local parts = {}
    for _, k in ipairs(errors.sorted_keys(s.params or {})) do
        parts[#parts + 1] = k .. " = " .. tostring(s.params[k])
    end
    if s.seed then parts[#parts + 1] = "seed = " .. s.seed end
    return string.format("%s %s { %s }", s.kind, s.type, table.concat(parts, ", "))
end

local info_cache = {}

-- What the registry says about a type, or raises "unknown neuron type ..." at the user's line
-- (what: a prefix for the message, may be nil).
function M.info(kind, name, what)
    local key = kind .. "\0" .. name
    local info = info_cache[key]
    if info then return info end
    local res, err = core.type_info(kind, name)
    if not res then errors.raise(what and (what .. ": " .. err) or err) end
    info_cache[key] = res
    return res
end

-- Checks a spec (from a constructor, or a table written by hand) for use as `want` ("neuron",
-- "block", "rule", "init", "activation") and returns a normalised copy
-- { kind, type, params, seed }. what: the message prefix, or nil (a constructor's own check).
function M.check(spec, want, what)
    local pre = what and (what .. ": ") or ""
    if type(spec) == "function" then
        errors.raise(pre .. "got a function; call the constructor, e.g. " ..
            "apical.init.zeros() or dfc.pyramidal {}")
    end
    if type(spec) ~= "table" then
        errors.raise(string.format("%sexpected a %s spec (a table { kind = %q, type = ... } " ..
            "from a constructor) or a type name, got %s", pre, NOUN[want], want,
            errors.show(spec)))
    end
    errors.fields(spec, { "kind", "type", "params", "seed" }, pre .. "spec")
    if spec.kind ~= want then
        errors.raise(string.format("%sexpected a %s spec, got a spec of kind %s", pre,
            NOUN[want], errors.show(spec.kind)))
    end
    errors.check(spec.type, "string", pre .. "spec", "type", true)
    local info = M.info(KINDS[want], spec.type, what)
    local tname = NOUN[want] .. " " .. spec.type
    local params = {}
    local known = {}
    for _, p in ipairs(info.params) do known[p.name] = p end
    local seed = spec.seed
    if spec.params ~= nil then
        errors.check(spec.params, "table", pre .. "spec", "params")
        for k, v in pairs(spec.params) do
            if k == "seed" and want == "init" then
                seed = v
            elseif type(k) ~= "string" or not known[k] then
                local names = {}
                for _, p in ipairs(info.params) do names[#names + 1] = p.name end
                if want == "init" then names[#names + 1] = "seed" end
                errors.raise(string.format("%s%s has no parameter %s (parameters: %s)", pre,
                    tname, errors.show(k), #names > 0 and table.concat(names, ", ") or "none"))
            elseif type(v) ~= "number" then
                errors.raise(string.format("%s%s: parameter %s must be a number, got %s", pre,
                    tname, k, errors.show(v)))
            else
                local p = known[k]
                if v ~= v or v < p.min or v > p.max or (v == math.huge or v == -math.huge) then
                    errors.raise(string.format("%s%s: %s = %s must be %s", pre, tname, k,
                        fmt_num(v), allowed(v, p.min, p.max)))
                end
                params[k] = v
            end
        end
    end
    if seed ~= nil then
        if want ~= "init" then errors.raise(pre .. tname .. ": only initializers take a seed") end
        seed = errors.check(seed, "integer >= 0", pre .. tname, "seed")
    end
    return { kind = want, type = spec.type, params = params, seed = seed }
end

-- Makes a spec; validates it at once, so a wrong parameter points at the constructor's line.
function M.make(kind, typename, params)
    if params ~= nil and type(params) ~= "table" then
        errors.raise(string.format("%s %s: parameters must be a table like { tau = 1 }, got %s",
            NOUN[kind], typename, errors.show(params)))
    end
    local spec = M.check({ kind = kind, type = typename, params = params }, kind, nil)
    return setmetatable(spec, spec_mt)
end

-- A constructor for a registered type: ctor { params } -> spec.
function M.constructor(kind, typename)
    return function(params)
        return M.make(kind, typename, params)
    end
end

-- Generic constructors: apical.neuron("rate", { tau = 1 }), ...
local function generic(kind)
    return function(typename, params)
        if type(typename) ~= "string" then
            errors.raise(string.format("apical.%s: the first argument must be a type name, " ..
                "got %s", kind, errors.show(typename)))
        end
        return M.make(kind, typename, params)
    end
end
M.neuron = generic("neuron")
M.block = generic("block")
M.rule = generic("rule")
M.activation = generic("activation")
M.init_generic = generic("init")

-- apical.types(): every registered type { kind, name, owner, doc }.
function M.types()
    return core.types()
end

-- apical.call(name, { arg = value, ... }): calls the registered kernel `name`. Arguments are
-- numbers, strings, booleans (passed as 1 / 0), arrays (by reference: what the kernel writes
-- into them is visible afterwards), models, simulations and optimisers.
function M.call(name, args)
    if type(name) ~= "string" then
        errors.raise("apical.call: the first argument must be a kernel name like \"axpy\", got " ..
            errors.show(name))
    end
    if args == nil then args = {} end
    if type(args) ~= "table" or getmetatable(args) ~= nil then
        errors.raise(string.format("kernel %s: expected a table of named arguments like " ..
            "{ x = X, y = Y }, got %s", name, errors.show(args)))
    end
    local ok, err = core.kernel_call(name, args)
    if not ok then errors.raise(err) end
end

local ENGINE_KIND = { neuron = "neuron", block = "block", rule = "rule", initializer = "init",
    activation = "activation" }
local KIND_ORDER = { neuron = 1, block = 2, rule = 3, initializer = 4, activation = 5, kernel = 6 }

local plugins = {}

-- The plugin's Lua half, the module apical.plugins.<name>, if there is one (in package.preload
-- or on package.path). It must return a function, which is called once with the plugin's table
-- and info and may add functions to the table. Its errors propagate.
local function load_lua_half(name, ctors, info)
    local modname = "apical.plugins." .. name
    if package.preload[modname] == nil and package.loaded[modname] == nil and
        package.searchpath(modname, package.path) == nil then
        return
    end
    local mod = require(modname)
    if type(mod) ~= "function" then
        errors.raise(string.format("the Lua half of plugin %s (module %s) must return a " ..
            "function(plugin, info), got %s", name, modname, errors.show(mod)))
    end
    mod(ctors, info)
    -- the Lua half's errors point at the user's line, not at the plugin's files
    errors.wrap_table(ctors)
end

-- apical.plugin "name": loads the plugin and returns a table with a constructor for each type
-- it registered under "name." (dfc.pyramidal {...}) and a function for each kernel
-- (dfc.forward {...}), completed by the plugin's Lua half; and its info { name, version, doc }.
function M.plugin(name)
    if type(name) ~= "string" or name == "" then
        errors.raise("apical.plugin: expected a plugin name like \"dfc\", got " ..
            errors.show(name))
    end
    local cached = plugins[name]
    if cached then return cached.ctors, cached.info end
    local info, err = core.plugin_load(name)
    if not info then
        if core.registry_closed() then
            err = err .. " (load plugins before the first m:compile())"
        end
        errors.raise(err)
    end
    local prefix = info.name .. "."
    local list = {}
    for _, t in ipairs(core.types()) do
        if t.name:sub(1, #prefix) == prefix and KIND_ORDER[t.kind] then list[#list + 1] = t end
    end
    table.sort(list, function(a, b)
        if a.kind ~= b.kind then return KIND_ORDER[a.kind] < KIND_ORDER[b.kind] end
        return a.name < b.name
    end)
    local ctors = {}
    for _, t in ipairs(list) do
        local short = t.name:sub(#prefix + 1)
        if ctors[short] == nil then
            if t.kind == "kernel" then
                local kname = t.name
                ctors[short] = function(args)
                    return M.call(kname, args)
                end
            else
                ctors[short] = M.constructor(ENGINE_KIND[t.kind], t.name)
            end
        end
    end
    -- cached first, so that the Lua half may call apical.plugin "name" itself
    plugins[name] = { ctors = ctors, info = info }
    local ok, lerr = pcall(load_lua_half, info.name, ctors, info)
    if not ok then
        plugins[name] = nil
        errors.raise(lerr)
    end
    return ctors, info
end

return M
