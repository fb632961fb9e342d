-- test_arrays.lua — apical.Array: construction, indexing, shapes, conversions, .npy and CSV.
local apical = require "apical"
package.path = (arg[0]:match("^(.*)/") or ".") .. "/?.lua;" .. package.path
local check = require "check"

-- construction from nested tables, shapes, flat and multi-dimensional indexing
local a = apical.array { { 1, 2, 3 }, { 4, 5, 6 } }
check.shape(a, { 2, 3 })
check.eq(#a, 6, "#a")
check.eq(a.ndim, 2, "ndim")
check.eq(a[1], 1)
check.eq(a[6], 6)
check.eq(a:at(2, 1), 4)
a:set(2, 1, 40)
check.eq(a[4], 40)
a[4] = 4
check.eq(a:at(2, 1), 4)
check.eq(a:sum(), 21)
check.eq(apical.array({ -7, 3 }):max_abs(), 7)
check.truthy(apical.is_array(a), "is_array")
check.truthy(not apical.is_array({}), "not is_array")

-- flat table plus shape, zeros, fill, reshape, copy, totable
local b = apical.array({ 1, 2, 3, 4, 5, 6 }, { 3, 2 })
check.shape(b, { 3, 2 })
check.eq(b:at(3, 2), 6)
local z = apical.zeros { 2, 2, 2 }
check.shape(z, { 2, 2, 2 })
check.eq(z:sum(), 0)
check.eq(apical.zeros({ 3 }, 1.5):sum(), 4.5)
check.eq(apical.zeros(4):fill(2):sum(), 8)
local r = a:reshape { 3, -1 }
check.shape(r, { 3, 2 })
check.eq(r:at(3, 2), 6)
local c = a:copy()
c[1] = 100
check.eq(a[1], 1, "copy is independent")
-- rows: a new array, or into out (which is returned); bounds and out's shape checked
local r3 = apical.array { { 1, 2 }, { 3, 4 }, { 5, 6 } }
local mid = r3:rows(2, 2)
check.shape(mid, { 2, 2 })
check.eq(mid:at(1, 1), 3)
check.eq(mid:at(2, 2), 6)
local into = apical.zeros { 1, 2 }
check.truthy(r3:rows(3, 1, into) == into, "rows returns out")
check.eq(into:at(1, 2), 6)
check.shape(r3:rows(4, 0), { 0, 2 })
check.fails(function() r3:rows(3, 2) end, "rows(3, 2): the array has rows 1..3", false)
check.fails(function() r3:rows(1, 2, into) end, "out does not have the shape of 2 rows", false)
local t = a:totable()
check.eq(t[2][3], 6)
check.eq(#t, 2)
local e = apical.array {}
check.shape(e, { 0 })
check.eq(#e, 0)
local s = apical.array(3.5)
check.eq(s.ndim, 0)
check.eq(s[1], 3.5)
check.truthy(tostring(a):find("apical.Array{2, 3}", 1, true), "tostring")
local copy = apical.array(a)
copy[1] = 9
check.eq(a[1], 1, "apical.array(array) copies")

-- errors point at the caller's line
check.fails(function() return a[7] end, "array index 7 out of range 1..6")
check.fails(function() a[0] = 1 end, "out of range")
check.fails(function() return a:at(1) end, "at: 1 indices for a 2-D array")
check.fails(function() return a:at(3, 1) end, "at: index 1 = 3 is out of range 1..2")
check.fails(function() a.foo = 1 end, "cannot set field \"foo\"")
check.fails(function() apical.array { { 1, 2 }, { 3 } } end, "row [2] has 1 elements, expected 2")
check.fails(function() apical.array { { 1, "x" } } end, "element [1][2] is string, expected a number")
check.fails(function() apical.array { 1, { 2 } } end, "element [2] is table, expected a number")
check.fails(function() apical.array("abc") end, "expected an array or a nested table")
check.fails(function() a:reshape { 4, 2 } end, "the new shape has 8")
check.fails(function() apical.array({ 1, 2, 3 }, { 2, 2 }) end, "3 values do not fill a shape of 4")
check.fails(function() apical.zeros { 2, "x" } end, "shape entry 2 must be a size")

-- .npy round trip, and reading a file numpy wrote
local path = check.tmpname(".npy")
a:save_npy(path)
local back = apical.load_npy(path)
check.shape(back, { 2, 3 })
check.array_near(back, a, 0, "npy round trip")
local data = os.getenv("APICAL_TEST_DATA")
if data then
    local py = apical.load_npy(data .. "/py_f8_2x3.npy")
    check.shape(py, { 2, 3 })
end
check.fails(function() apical.load_npy("/nonexistent/x.npy") end, "cannot open")
check.fails(function() a:save_npy("/nonexistent/dir/x.npy") end, "/nonexistent/dir/x.npy")

-- truncated .npy: an error, not a crash
local f = assert(io.open(path, "rb"))
local bytes = f:read("a")
f:close()
local trunc = check.tmpname(".npy")
f = assert(io.open(trunc, "wb"))
f:write(bytes:sub(1, #bytes - 5))
f:close()
check.fails(function() apical.load_npy(trunc) end, "expected 48 bytes of data")

-- CSV: 2-D with names, 1-D, 3-D recordings with step/sample columns
local csv = check.tmpname(".csv")
a:save_csv(csv, { "x", "y", "z" })
f = assert(io.open(csv))
check.eq(f:read("l"), "x,y,z")
check.eq(f:read("l"), "1,2,3")
f:close()
apical.array { 5, 6 }:save_csv(csv)
f = assert(io.open(csv))
check.eq(f:read("a"), "c1\n5\n6\n")
f:close()
local rec = apical.array { { { 1, 2 }, { 3, 4 } }, { { 5, 6 }, { 7, 8 } } }
rec:save_csv(csv)
f = assert(io.open(csv))
check.eq(f:read("a"), "step,sample,c1,c2\n1,1,1,2\n1,2,3,4\n2,1,5,6\n2,2,7,8\n")
f:close()
check.fails(function() a:save_csv(csv, { "x" }) end, "1 column names for 3 value columns")

check.done("test_arrays")
