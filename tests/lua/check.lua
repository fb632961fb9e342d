-- check.lua — assertions for the Lua tests (plain Lua: a failed check raises an error that
-- names the test's line, so the test script exits with a non-zero status).
local M = {}

local function fail(msg, level)
    error(msg, (level or 1) + 2)
end

function M.eq(got, want, what)
    if got ~= want then
        fail(string.format("%s: got %s, want %s", what or "eq", tostring(got), tostring(want)))
    end
end

function M.near(got, want, tol, what)
    if type(got) ~= "number" or math.abs(got - want) > tol or got ~= got then
        fail(string.format("%s: got %s, want %s (tolerance %g)", what or "near", tostring(got),
            tostring(want), tol))
    end
end

function M.truthy(v, what)
    if not v then fail((what or "truthy") .. ": got " .. tostring(v)) end
end

-- Compares two arrays (or nested tables via their shapes) elementwise.
function M.array_near(got, want, tol, what)
    if #got ~= #want then
        fail(string.format("%s: %d elements, want %d", what or "array_near", #got, #want))
    end
    for i = 1, #got do
        if not (math.abs(got[i] - want[i]) <= tol) then
            fail(string.format("%s: element %d is %.17g, want %.17g (tolerance %g)",
                what or "array_near", i, got[i], want[i], tol))
        end
    end
end

function M.shape(a, want, what)
    local s = a.shape
    local ok = #s == #want
    for i = 1, #want do ok = ok and s[i] == want[i] end
    if not ok then
        fail(string.format("%s: shape {%s}, want {%s}", what or "shape", table.concat(s, ", "),
            table.concat(want, ", ")))
    end
end

-- Runs f, which must fail with a message containing `pattern` (plain text) and starting with
-- the position of the check's own line (where the failing call is written on one line with
-- it), unless where is false; where may also be a "file:line" string.
function M.fails(f, pattern, where)
    local info = debug.getinfo(2, "Sl")
    local ok, err = pcall(f)
    if ok then fail("expected an error containing: " .. pattern) end
    err = tostring(err)
    if not err:find(pattern, 1, true) then
        fail(string.format("error message %q does not contain %q", err, pattern))
    end
    if where ~= false then
        local want = where or (info.short_src .. ":" .. info.currentline .. ":")
        if err:sub(1, #want) ~= want then
            fail(string.format("error message %q does not start with %q", err, want))
        end
    end
    return err
end

-- A temporary file name that is removed by M.cleanup().
local temps = {}
function M.tmpname(suffix)
    local name = os.tmpname()
    os.remove(name)
    name = name .. (suffix or "")
    temps[#temps + 1] = name
    return name
end

function M.cleanup()
    for _, n in ipairs(temps) do os.remove(n) end
    temps = {}
end

-- also when a check fails: the state is closed on the way out, which runs this finalizer
M._sentinel = setmetatable({}, { __gc = function() M.cleanup() end })

function M.done(name)
    M.cleanup()
    print(name .. ": ok")
end

return M
