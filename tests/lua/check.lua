-- check.lua — assertions for the Lua tests (plain Lua: a failed check raises an error that
-- names the test's line, so the test script exits with a non-zero status). Every check is
-- counted; M.test runs a named group of checks and goes on after a failure; M.done reports
-- the counts and ends the process with status 1 if a test failed or no check ran. Tests here
-- and in plugins/dfc/tests/lua (through dfc_fixture.lua) require it.
local M = {}

local checks, tests_passed, tests_failed = 0, 0, 0
local function count() checks = checks + 1 end

local function fail(msg, level)
    error(msg, (level or 1) + 2)
end

function M.eq(got, want, what)
    count()
    if got ~= want then
        fail(string.format("%s: got %s, want %s", what or "eq", tostring(got), tostring(want)))
    end
end

function M.near(got, want, tol, what)
    count()
    if type(got) ~= "number" or math.abs(got - want) > tol or got ~= got then
        fail(string.format("%s: got %s, want %s (tolerance %g)", what or "near", tostring(got),
            tostring(want), tol))
    end
end

-- The spacing of doubles at |x| (as check.h's check_ulp_): 2^-1074 for zero and the subnormals,
-- 2^(e-53) for |x| in [2^(e-1), 2^e).
function M.ulp(x)
    x = math.abs(x)
    if x < 2.2250738585072014e-308 then return 2.0 ^ -1074 end
    local e = math.floor(math.log(x, 2)) + 1
    if 2.0 ^ (e - 1) > x then e = e - 1 elseif 2.0 ^ e <= x then e = e + 1 end
    return 2.0 ^ (e - 53)
end

-- As check.h's CHECK_CLOSE_SCALED: got and want agree to the relative tolerance rel or to ulps
-- units in the last place, both measured at m = max(|got|, |want|, |scale|) (scale: the size
-- of the terms a cancelling sum added, or nil). Equal values pass; NaN never does, nor an
-- infinity against anything but itself. For results that go through BLAS against a hand loop.
function M.is_close(got, want, rel, ulps, scale)
    if got == want then return true end
    if type(got) ~= "number" or type(want) ~= "number" then return false end
    if got ~= got or want ~= want or math.abs(got) == math.huge or math.abs(want) == math.huge then
        return false
    end
    local m = math.max(math.abs(got), math.abs(want), math.abs(scale or 0))
    return math.abs(got - want) <= math.max(rel * m, ulps * M.ulp(m))
end

function M.close(got, want, rel, ulps, scale, what)
    count()
    if not M.is_close(got, want, rel, ulps, scale) then
        local m = type(got) == "number" and type(want) == "number" and
            math.max(math.abs(got), math.abs(want), math.abs(scale or 0)) or 0 / 0
        fail(string.format("%s: got %.17g, want %.17g: differ by %.3g (%.3g relative to %.3g) > rel %g or %g ulps",
            what or "close", tonumber(got) or 0 / 0, tonumber(want) or 0 / 0,
            math.abs((tonumber(got) or 0 / 0) - (tonumber(want) or 0 / 0)),
            math.abs((tonumber(got) or 0 / 0) - (tonumber(want) or 0 / 0)) / m, m, rel, ulps))
    end
end

-- DBL_EPSILON, 2^-52: write tolerances of check.close in it.
M.eps = 2.0 ^ -52

function M.truthy(v, what)
    count()
    if not v then fail((what or "truthy") .. ": got " .. tostring(v)) end
end

-- Compares two arrays (or nested tables via their shapes) elementwise.
function M.array_near(got, want, tol, what)
    count()
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
    count()
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
    count()
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

-- Lua's assert, counted: `local assert = check.assert` at the top of a test counts its asserts.
-- A failure raises the message (or "assertion failed!") at the caller's line.
function M.assert(v, msg, ...)
    count()
    if not v then error(msg == nil and "assertion failed!" or msg, 2) end
    return v, msg, ...
end

-- Runs fn as the test `name`: prints "ok   name" or "FAIL name: error" (and goes on with the
-- next test); M.done counts the failures.
function M.test(name, fn)
    local ok, err = pcall(fn)
    if ok then
        tests_passed = tests_passed + 1
        print("ok   " .. name)
    else
        tests_failed = tests_failed + 1
        io.stderr:write("FAIL " .. name .. ": " .. tostring(err) .. "\n")
    end
    return ok
end

-- The counts so far: checks made, tests passed, tests failed.
function M.counts() return checks, tests_passed, tests_failed end

-- A temporary file name that is removed by M.cleanup().
local temps = {}
function M.tmpname(suffix)
    local name = os.tmpname()
    os.remove(name)
    name = name .. (suffix or "")
    temps[#temps + 1] = name
    return name
end

-- A new temporary directory, removed with what it holds by M.cleanup().
local tempdirs = {}
function M.tmpdir()
    local name = os.tmpname()
    os.remove(name)
    assert(os.execute("mkdir -p '" .. name .. "'"), "cannot create " .. name)
    tempdirs[#tempdirs + 1] = name
    return name
end

function M.cleanup()
    for _, n in ipairs(temps) do os.remove(n) end
    for _, d in ipairs(tempdirs) do os.execute("rm -rf '" .. d .. "'") end
    temps, tempdirs = {}, {}
end

-- also when a check fails: the state is closed on the way out, which runs this finalizer
M._sentinel = setmetatable({}, { __gc = function() M.cleanup() end })

-- The end of a test script: "name: N checks, T tests passed" when all passed; otherwise the
-- failures on stderr and exit status 1. A script that made no check fails too: it cannot fail.
function M.done(name)
    M.cleanup()
    local tests = tests_passed + tests_failed
    local what = string.format("%s: %d checks%s", name, checks,
        tests > 0 and string.format(", %d of %d tests passed", tests_passed, tests) or "")
    if tests_failed > 0 or checks == 0 then
        io.stderr:write(what .. (checks == 0 and ": no check ran" or "") ..
            string.format(", %d failed\n", tests_failed))
        os.exit(1)
    end
    print(what .. ", 0 failed")
end

return M
