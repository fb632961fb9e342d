-- test_plot.lua — apical.plot: the pictures of a run directory and of several runs, written as
-- PNG files next to their CSV data; clear errors for what is not a run directory.
local apical = require "apical"
local plot = require "apical.plot"
package.path = (arg[0]:match("^(.*)/") or ".") .. "/?.lua;" .. package.path
local check = require "check"

local dir = os.tmpname()
os.remove(dir)
assert(os.execute("mkdir -p '" .. dir .. "/a' '" .. dir .. "/b'"))
local function write(path, text)
  local f = assert(io.open(path, "w"))
  f:write(text)
  f:close()
end
local header = "epoch,train_loss,valid_loss,valid_error,test_loss,test_error\n"
write(dir .. "/a/log.csv", header .. "0,2.3,2.3,0.9,2.3,0.9\n1,0.5,0.4,0.1,0.45,0.12\n2,0.3,0.35,0.08,0.36,0.09\n")
write(dir .. "/b/log.csv", header .. "0,1.0,1.0,0,1.1,0\n1,0.2,0.25,0,0.26,0\n")

local function is_png(path)
  local f = io.open(path, "rb")
  if not f then return false end
  local sig = f:read(8)
  f:close()
  return sig == "\137PNG\r\n\26\n"
end

local a = plot.run_dir(dir .. "/a")
check.eq(#a, 2, "classification run: loss and error pictures")
for _, p in ipairs(a) do check.truthy(is_png(p), p .. " is a PNG") end
local b = plot.run_dir(dir .. "/b")
check.eq(#b, 1, "regression run: loss picture only")
local c = plot.compare({ dir .. "/a", dir .. "/b" }, dir)
check.eq(#c, 3)
for _, p in ipairs(c) do check.truthy(is_png(p), p .. " is a PNG") end
check.fails(function() plot.run_dir(dir) end, "has no log.csv", false)
check.fails(function() plot.lines { out = dir .. "/x.png", series = { { file = dir .. "/a/log.csv", x = "epoch", y = "nope" } } } end,
  'has no column "nope"', false)
-- a run directory whose name holds shell and gnuplot syntax is only a name: nothing in it runs
-- (gnuplot substitutes `command` in double-quoted strings; a line break would end a string)
local marker = "apical_pwned_" .. tostring(os.time()) .. tostring(math.random(1e6))
local evil = dir .. "/run `touch " .. marker .. "1` $(touch " .. marker .. "2) '\"@x\nsystem('touch " ..
  marker .. "3')\n"
assert(os.execute("mkdir -p '" .. evil:gsub("'", "'\\''") .. "'"))
write(evil .. "/log.csv", header .. "0,2.3,2.3,0.9,2.3,0.9\n1,0.5,0.4,0.1,0.45,0.12\n")
local e = plot.run_dir(evil)
check.eq(#e, 2, "pictures of a run directory with an unusual name")
for _, p in ipairs(e) do check.truthy(is_png(p), "a PNG in the run directory with an unusual name") end
for k = 1, 3 do
  local found = io.open(marker .. k, "rb")
  if found then found:close() os.remove(marker .. k) end
  check.truthy(not found, "no command ran from the run directory's name (marker " .. k .. ")")
end
-- the size and the line style are written into gnuplot's script: only well-formed ones pass
local csv = dir .. "/a/log.csv"
check.fails(function() plot.lines { out = dir .. "/s.png", size = "1,1\nsystem('touch " .. marker .. "4')",
  series = { { file = csv, x = "epoch", y = "train_loss" } } } end, 'size must be "WIDTH,HEIGHT"', false)
check.fails(function() plot.lines { out = dir .. "/s.png", series = { { file = csv, x = "epoch", y = "train_loss",
  style = "lines\nsystem('touch " .. marker .. "5')" } } } end, "is not one of lines", false)
check.truthy(not io.open(marker .. "4") and not io.open(marker .. "5"), "no command ran from a size or style")
check.truthy(plot.lines { out = dir .. "/s.png", size = "400,300", series = { { file = csv, x = "epoch",
  y = "train_loss", style = "lines dt 2" } } }, "a valid size and style draw")
-- a log of non-finite losses says so (instead of a gnuplot failure)
assert(os.execute("mkdir -p '" .. dir .. "/nan'"))
write(dir .. "/nan/log.csv", header .. "0,nan,nan,0.9,nan,0.9\n1,-nan,nan,0.9,nan,0.9\n")
check.fails(function() plot.run_dir(dir .. "/nan") end,
  "/nan/log.csv has no finite values in columns train_loss, valid_loss, test_loss", false)

local p = io.popen("ls -a '" .. dir .. "/a'")
local listing = p:read("a")
p:close()
check.truthy(not listing:find("tmp"), "no temporary file left: " .. listing)
os.execute("rm -rf '" .. dir .. "'")
check.done("test_plot")
