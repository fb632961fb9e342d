-- test_csv_dataset.lua — apical.dataset.csv: a dataset read from a CSV file with a header,
-- regression (target columns) and classification (a label column), inputs every other column
-- or the ones named; bad files refused naming the file, line and column, at the caller's line.
local apical = require "apical"
package.path = (arg[0]:match("^(.*)/") or ".") .. "/?.lua;" .. package.path
local check = require "check"

local function write(text)
    local path = check.tmpname(".csv")
    local f = assert(io.open(path, "w"))
    f:write(text)
    f:close()
    return path
end

local reg = write("a,b,y,c\r\n1,2,10,3\n4,5,20,6\n\n-7,8.5,30,1e-3\n")
local ds = apical.dataset.csv(reg, { targets = { "y" } })
check.eq(ds:size(), 3, "samples")
check.eq(ds:input_dim(), 3, "inputs: a, b, c")
check.eq(ds:target_dim(), 1, "targets")
local x, y, label = ds:sample(3)
check.array_near(x, { -7, 8.5, 1e-3 }, 0, "sample 3 inputs in file order")
check.eq(y[1], 30, "sample 3 target")
check.eq(label, nil, "no labels")
local named = apical.dataset.csv(reg, { targets = { "y", "a" }, inputs = { "c", "b" } })
x, y = named:sample(2)
check.array_near(x, { 6, 5 }, 0, "named inputs in the given order")
check.array_near(y, { 20, 4 }, 0, "named targets")

local cls = write("x1,x2,class\n0.5,1,0\n-1,2,2\n3,4,1\n")
local c = apical.dataset.csv(cls, { label = "class" })
check.eq(c:target_dim(), 3, "classes from the largest label")
x, y, label = c:sample(2)
check.eq(label, 2, "label")
check.array_near(y, { 0, 0, 1 }, 0, "one-hot target")
check.eq(apical.dataset.csv(cls, { label = "class", classes = 5 }):target_dim(), 5, "classes given")

check.fails(function() apical.dataset.csv(reg, {}) end, "give targets = { column names } (regression) or label")
check.fails(function() apical.dataset.csv(reg, { targets = { "y" }, label = "a" }) end, "one of them")
check.fails(function() apical.dataset.csv(reg, { targets = { "z" } }) end, 'has no column "z" (columns: a, b, y, c)')
check.fails(function() apical.dataset.csv(reg, { target = { "y" } }) end, "unknown field target")
check.fails(function() apical.dataset.csv(write("a,y\n1,2\n3,x\n"), { targets = { "y" } }) end, ':3: column y is "x", not a number')
check.fails(function() apical.dataset.csv(write("a,y\n1,2\n3\n"), { targets = { "y" } }) end, ":3: 1 values for 2 columns")
check.fails(function() apical.dataset.csv(write("a,a\n1,2\n"), { targets = { "a" } }) end, 'column "a" appears twice')
check.fails(function() apical.dataset.csv(write(""), { targets = { "y" } }) end, "is empty")
check.fails(function() apical.dataset.csv(write("a,y\n"), { targets = { "y" } }) end, "has no samples")
check.fails(function() apical.dataset.csv(write("a,c\n1,-1\n"), { label = "c" }) end, "label 1 is not an integer >= 0")
check.fails(function() apical.dataset.csv("/nonexistent/x.csv", { label = "c" }) end, "cannot read /nonexistent/x.csv")
check.cleanup()
check.done("test_csv_dataset")
