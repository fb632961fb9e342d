-- apical/errors.lua — where errors point (the user's line, never the library's) and the
-- checks of arguments and option tables that produce them.
--
-- The library's own Lua files register their source here; `where()` walks up the stack past
-- them and past C functions to the first frame of user code. Every error the library raises
-- starts with that position, unless the message already carries a position in user code (the
-- engine quotes the declaring line of an object in compile errors).
local M = {}

local internal = {} -- debug.getinfo().source of the library's Lua files
local located = {} -- short_src of user files positions were taken from

-- The directory of the library's Lua modules (".../lua/apical/"): every file under it, the
-- plugins' Lua halves (apical/plugins/<name>/...) included, is the library's.
local root = debug.getinfo(1, "S").source:match("^@(.*/)errors%.lua$")

function M.internal(source)
    internal[source] = true
end
M.internal(debug.getinfo(1, "S").source)

local function internal_source(source)
    return internal[source] == true or
        (root ~= nil and source:sub(1, #root + 1) == "@" .. root)
end

-- True if `src`, a position's file as messages show it (Lua's short_src: a long path is cut to
-- "..." and its end), is one of the library's files.
local function internal_position(src)
    if src:sub(1, 3) ~= "..." then return internal_source("@" .. src) end
    local tail = src:sub(4)
    for source in pairs(internal) do
        if #source > #tail and source:sub(-#tail) == tail then return true end
    end
    if not root then return false end
    local from = 1
    while true do
        local i, j = tail:find("apical/", from, true)
        if not i then return false end
        local path = root .. tail:sub(j + 1)
        if path:sub(-#tail) == tail then return true end
        from = i + 1
    end
end

-- "file.lua:12", the innermost line of user code on the stack.
function M.where()
    local level = 2
    while true do
        local info = debug.getinfo(level, "Sl")
        if not info then return "?" end
        if info.what ~= "C" and not internal_source(info.source) then
            located[info.short_src] = true
            if info.currentline and info.currentline > 0 then
                return info.short_src .. ":" .. info.currentline
            end
            return info.short_src
        end
        level = level + 1
    end
end

-- True if msg starts with a position in user code ("model.lua:5: ...").
local function has_position(msg)
    local src = msg:match("^(.-):%d+: ")
    return src ~= nil and located[src] == true
end

-- Raises msg at the user's line (or as it is, when it already names one).
function M.raise(msg, where)
    msg = tostring(msg)
    if has_position(msg) then error(msg, 0) end
    error((where or M.where()) .. ": " .. msg, 0)
end

-- Calls f(...) and re-raises its error at the user's line; returns f's results.
function M.call(f, ...)
    local res = table.pack(pcall(f, ...))
    if not res[1] then M.raise(res[2]) end
    return table.unpack(res, 2, res.n)
end

-- The position a message starts with ("file.lua:12: ..."): its file, or nil.
local function leading_position(msg)
    local src = msg:match("^([^\n]-):%d+: ")
    if src and not src:find(": ", 1, true) then return src end
    return nil
end

-- An error raised somewhere inside the library, moved to the user's line: the positions of
-- library files it starts with are dropped; one in user code (a callback, a declaring line the
-- engine quotes) is kept; otherwise the innermost user line is prepended. Errors that are not
-- strings (usage errors) are returned as they are.
function M.relocate(msg, where)
    if type(msg) ~= "string" then return msg end
    while true do
        local src = leading_position(msg)
        if not src or not internal_position(src) then break end
        msg = msg:sub(#msg:match("^[^\n]-:%d+: ") + 1)
    end
    if leading_position(msg) then return msg end
    return (where or M.where()) .. ": " .. msg
end

-- f, whose errors are raised at the user's line (M.relocate). Wrapping twice is harmless: the
-- inner wrapper finds the user's line already, the outer one keeps it.
local wrapped = setmetatable({}, { __mode = "k" })
function M.wrap(f)
    if wrapped[f] then return f end
    local g = function(...)
        local res = table.pack(pcall(f, ...))
        if not res[1] then error(M.relocate(res[2]), 0) end
        return table.unpack(res, 2, res.n)
    end
    wrapped[g] = true
    return g
end

-- Wraps (M.wrap) every function of table t and of the tables in it (a plugin's table of
-- functions, a class's methods), once each.
function M.wrap_table(t, seen)
    seen = seen or {}
    if seen[t] then return t end
    seen[t] = true
    for k, v in pairs(t) do
        if type(v) == "function" then
            t[k] = M.wrap(v)
        elseif type(v) == "table" and getmetatable(v) == nil then
            M.wrap_table(v, seen)
        end
    end
    return t
end

-- An error about the command line (a --set value): the apical program exits with status 2 and
-- prints it without a position. tostring() gives the message, so other interpreters print it.
local usage_mt = {
    __tostring = function(e)
        return e.message
    end,
    __name = "apical.UsageError",
}
function M.usage(msg)
    error(setmetatable({ message = msg, usage = true }, usage_mt), 0)
end

-- A value as messages show it: "abc" quoted, numbers as numbers, other things by type.
function M.show(v)
    local t = type(v)
    if t == "string" then return string.format("%q", v) end
    if t == "number" or t == "boolean" then return tostring(v) end
    if t == "nil" then return "nothing" end
    local mt = getmetatable(v)
    if type(mt) == "table" and type(mt.__name) == "string" then return "an " .. mt.__name end
    if t == "table" and type(v.name) == "string" then return string.format("%q", v.name) end
    return "a " .. t
end

local function sorted_keys(set)
    local list = {}
    for k in pairs(set) do list[#list + 1] = k end
    table.sort(list)
    return list
end

-- Rejects keys of t that are not in `allowed` (a list). what: "population \"h1\"".
function M.fields(t, allowed, what)
    local set = {}
    for _, k in ipairs(allowed) do set[k] = true end
    for k in pairs(t) do
        if type(k) ~= "string" then
            M.raise(string.format("%s: unexpected positional value %s (give named fields: %s)",
                what, M.show(t[k]), table.concat(allowed, ", ")))
        elseif not set[k] then
            M.raise(string.format("%s: unknown field %s (fields: %s)", what, k,
                table.concat(allowed, ", ")))
        end
    end
end
M.sorted_keys = sorted_keys

-- Checks of single values. Each takes the value, the message prefix and the field name, and
-- returns the value; `required` fields raise when missing.
local checks = {
    string = function(v) return type(v) == "string" end,
    name = function(v) return type(v) == "string" and v:match("^[%a_][%w_]*$") ~= nil end,
    number = function(v) return type(v) == "number" end,
    ["finite number"] = function(v)
        return type(v) == "number" and v == v and v ~= math.huge and v ~= -math.huge
    end,
    ["positive number"] = function(v) return type(v) == "number" and v > 0 end,
    ["number >= 0"] = function(v) return type(v) == "number" and v >= 0 end,
    integer = function(v) return type(v) == "number" and math.tointeger(v) ~= nil end,
    ["positive integer"] = function(v)
        local i = type(v) == "number" and math.tointeger(v)
        return i and i > 0
    end,
    -- sizes and batches: the engine counts them in C ints
    size = function(v)
        local i = type(v) == "number" and math.tointeger(v)
        return i and i > 0 and i <= 0x7fffffff
    end,
    ["integer >= 0"] = function(v)
        local i = type(v) == "number" and math.tointeger(v)
        return i and i >= 0
    end,
    boolean = function(v) return type(v) == "boolean" end,
    table = function(v) return type(v) == "table" end,
}

local articles = { integer = "an", ["integer >= 0"] = "an" }
local described = { name = "name (letters, digits and _, not starting with a digit)",
    size = "positive integer" }

function M.check(v, kind, what, field, required)
    if v == nil then
        if required then
            M.raise(string.format("%s: field %s is required (%s %s)", what, field,
                articles[kind] or "a", described[kind] or kind))
        end
        return nil
    end
    if not checks[kind](v) then
        if kind == "size" and checks["positive integer"](v) then
            M.raise(string.format("%s: field %s = %s is too large (at most 2147483647)", what,
                field, M.show(v)))
        end
        M.raise(string.format("%s: field %s must be %s %s, got %s", what, field,
            articles[kind] or "a", described[kind] or kind, M.show(v)))
    end
    if kind:find("integer") or kind == "size" then return math.tointeger(v) end
    return v
end

-- Checks that a value is a string among `choices` (a list).
function M.choice(v, choices, what, field, default)
    if v == nil then return default end
    for _, c in ipairs(choices) do
        if v == c then return v end
    end
    M.raise(string.format("%s: field %s must be one of %s, got %s", what, field,
        '"' .. table.concat(choices, '", "') .. '"', M.show(v)))
end

-- The name of a signal given as a handle (a table with a string `name`) or a string.
function M.signal(v, what)
    if type(v) == "string" then return v end
    local mt = getmetatable(v)
    local is_projection = type(mt) == "table" and mt.__name == "apical.Projection"
    if type(v) == "table" and type(v.name) == "string" and not is_projection then
        return v.name
    end
    M.raise(string.format("%s must be a signal (a handle like h1.soma, or a name like " ..
        "\"h1.soma\"), got %s", what, M.show(v)))
end

return M
