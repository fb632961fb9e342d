-- tests/mpi/test_farm.lua — examples/table1.lua as a task farm (mpi.farm):
--   apical run test_farm.lua -- APICAL MPIEXEC NP REPO
-- a small table (BP, two seeds, 128 MNIST samples, one epoch) in one process and under
-- `MPIEXEC -np NP`: the same results (each run is a one-process run: equal test errors and
-- losses); then a farm interrupted after one run (its rank's results file left behind) resumes
-- without repeating it. Needs the MNIST data (exit 77: skipped).
package.path = (arg[0]:match("^(.*)/") or ".") .. "/../lua/?.lua;" .. package.path
local check = require "check" -- tests/lua/check.lua: counted checks, check.done ends the test
local apical_bin, mpiexec, np, repo = arg[1], arg[2], tonumber(arg[3]), arg[4]
assert(repo, "usage: test_farm.lua -- APICAL MPIEXEC NP REPO")
local data = os.getenv("APICAL_DATA") or (repo .. "/data")
if not io.open(data .. "/mnist/train-images-idx3-ubyte") and not io.open(data .. "/mnist/train-images-idx3-ubyte.gz") then
  print("skipped: no MNIST data in " .. data)
  os.exit(77)
end
local tmp = os.tmpname()
os.remove(tmp)
assert(os.execute("mkdir -p '" .. tmp .. "'"))

local function table1(launch, out)
  local cmd = string.format("cd '%s' && APICAL_DATA='%s' %s%s run examples/table1.lua --set epochs=1 " ..
    "--set n_train=128 --set seeds=1,2 --set methods=bp --set tasks=mnist --set out=%s > %s.txt 2>&1",
    repo, data, launch, apical_bin, out, out)
  if not os.execute(cmd) then error("failed: " .. cmd .. "\n" .. io.open(out .. ".txt"):read("a")) end
  local rows = {}
  for line in io.lines(out .. "/results.csv") do
    local key, nums = line:match("^([^,]+,[^,]+,[^,]+),(.*),[^,]+$") -- without wall_seconds
    if key and key ~= "task,method,seed" then rows[key] = nums end
  end
  return rows
end

local function count(t)
  local n = 0
  for _ in pairs(t) do n = n + 1 end
  return n
end

local one = table1("", tmp .. "/one")
check.assert(count(one) == 2, "one process: " .. count(one) .. " results")
local farm = table1(string.format("%s --oversubscribe -np %d ", mpiexec, np), tmp .. "/farm")
for k, v in pairs(one) do
  check.assert(farm[k] == v, string.format("%s: farm %s, one process %s", k, tostring(farm[k]), v))
end
check.assert(count(farm) == 2)
local f = io.popen("ls " .. tmp .. "/farm")
local listing = f:read("a")
f:close()
check.assert(not listing:find("results.rank"), "the ranks' files were not merged:\n" .. listing)
print(string.format("table1 over %d ranks: the 2 runs equal the one-process runs", np))

-- an interrupted farm: one run finished on rank 1 (its file), results.csv not yet written
local out = tmp .. "/resumed"
assert(os.execute("mkdir -p " .. out))
local lines = {}
for line in io.lines(tmp .. "/one/results.csv") do lines[#lines + 1] = line end
local w = assert(io.open(out .. "/results.rank1.csv", "w"))
-- its numbers marked (test error 0.125, test loss 9.5): kept, not computed again
local task, method, seed, epochs, n, best = lines[2]:match("^([^,]+),([^,]+),([^,]+),([^,]+),([^,]+),([^,]+)")
w:write(lines[1], "\n", string.format("%s,%s,%s,%s,%s,%s,0.125,9.5,1.0", task, method, seed, epochs, n, best), "\n")
w:close()
local resumed = table1(string.format("%s --oversubscribe -np %d ", mpiexec, np), out)
check.assert(count(resumed) == 2, "resumed: " .. count(resumed) .. " results")
local key = string.format("%s,%s,%s", task, method, seed)
check.assert(resumed[key] == string.format("%s,%s,%s,0.125,9.5", epochs, n, best), "the finished run ran again: " .. tostring(resumed[key]))
for k, v in pairs(one) do
  if k ~= key then check.assert(resumed[k] == v, k) end
end
print("an interrupted farm resumes without repeating its finished run")
os.execute("rm -rf '" .. tmp .. "'")
check.done("test_farm")
