-- apical/params.lua — script parameters: apical.params { dt = 0.02, solver = "euler" } returns
-- the defaults overridden from the command line (`apical run s.lua --set dt=0.01`) or, under
-- another interpreter, from the environment variable APICAL_SET="dt=0.01,solver=rk4".
-- apical.check_params() rejects a value given for a parameter no apical.params call declared;
-- the apical program calls it when the script ends.
local core = require "apical.core"
local errors = require "apical.errors"
errors.internal(debug.getinfo(1, "S").source)

local M = {}

local declared = {}       -- name -> true
local declared_order = {} -- names in the order of declaration
local given_in = setmetatable({}, { __mode = "k" }) -- apical.params's tables -> { name = true } given

-- The given values { key = "text" } and where they come from.
local function given()
    local sets = core.cli_sets()
    if sets then return sets, "--set" end
    local env = os.getenv("APICAL_SET")
    local t = {}
    if env and env ~= "" then
        for item in env:gmatch("[^,]+") do
            local k, v = item:match("^%s*([^=]-)%s*=(.*)$")
            if not k or k == "" then
                errors.usage(string.format("APICAL_SET: %q is not key=value", item))
            end
            t[k] = v
        end
    end
    return t, "APICAL_SET"
end

local function convert(key, text, default, source)
    local t = type(default)
    if t == "string" then return text end
    if t == "boolean" then
        if text == "true" or text == "1" or text == "yes" then return true end
        if text == "false" or text == "0" or text == "no" then return false end
        errors.usage(string.format("%s %s=%s: parameter %s is a boolean (true or false)", source,
            key, text, key))
    end
    local n = tonumber(text)
    if n == nil then
        errors.usage(string.format("%s %s=%s: parameter %s is a number, %q is not one", source,
            key, text, key, text))
    end
    if math.type(default) == "integer" then
        local i = math.tointeger(n)
        if i == nil then
            errors.usage(string.format("%s %s=%s: parameter %s is an integer (its default is %d)",
                source, key, text, key, default))
        end
        return i
    end
    return n + 0.0
end

-- apical.params { name = default, ... } -> a new table with the defaults and the given values
function M.params(defaults)
    if type(defaults) ~= "table" then
        errors.raise("apical.params: expected a table of defaults like { dt = 0.01 }, got " ..
            errors.show(defaults))
    end
    for key in pairs(defaults) do
        if type(key) ~= "string" then
            errors.raise("apical.params: parameter names must be strings, got " ..
                errors.show(key))
        end
    end
    local values, source = given()
    local out = {}
    for _, key in ipairs(errors.sorted_keys(defaults)) do
        local default = defaults[key]
        local t = type(default)
        if t ~= "number" and t ~= "string" and t ~= "boolean" then
            errors.raise(string.format("apical.params: the default of %s must be a number, " ..
                "string or boolean, got %s", key, errors.show(default)))
        end
        if not declared[key] then
            declared[key] = true
            declared_order[#declared_order + 1] = key
        end
        local text = values[key]
        if text ~= nil then
            out[key] = convert(key, text, default, source)
            given_in[out] = given_in[out] or {}
            given_in[out][key] = true
        else
            out[key] = default
        end
    end
    return out
end

-- apical.params_given(p): the set { name = true } of the names in p, a table apical.params
-- returned, that were given a value on the command line (--set) or in APICAL_SET; {} for any
-- other table. A trainer taking p as its defaults tells the user's values from them by it.
function M.given_names(t)
    local set = {}
    for k in pairs(given_in[t] or {}) do set[k] = true end
    return set
end

-- apical.check_params(): raises (as a usage error) for a given value no call declared.
function M.check()
    local values, source = given()
    for _, key in ipairs(errors.sorted_keys(values)) do
        if not declared[key] then
            errors.usage(string.format("%s %s=%s: the script has no parameter %s (it has: %s)",
                source, key, values[key], key,
                #declared_order > 0 and table.concat(declared_order, ", ") or "none"))
        end
    end
end

return M
