-- allow.lua — what a model may do under --sandbox: read and write files in its directory and
-- under ./runs, use temporary files, require a module of its own, load text chunks, use the
-- apical module (arrays, .npy files, apical.mkdir, a simulation). Run by ctest as
-- `apical run --sandbox allow.lua` from this directory; it must exit 0.
local apical = require "apical"
local h = require "sandbox_helper"
assert(h.twice(21) == 42)
assert(not pcall(h.execute, "true"), "the helper module runs in the sandbox as well")
-- files in the model's directory
local name = "apical_sandbox_allowed.txt"
local f = assert(io.open(name, "w"))
f:write("1\n2\n")
f:close()
local n = 0
for l in io.lines(name) do n = n + tonumber(l) end
assert(n == 3)
assert(os.rename(name, name .. ".2"))
assert(os.remove(name .. ".2"))
-- ./runs and apical's writers
apical.mkdir("runs/sandbox-allow/sub")
local a = apical.array({ 1, 2, 3 })
a:save_npy("runs/sandbox-allow/a.npy")
local b = apical.load_npy("runs/sandbox-allow/a.npy")
assert(b[3] == 3)
a:save_csv("runs/sandbox-allow/a.csv")
assert(os.remove("runs/sandbox-allow/a.npy") and os.remove("runs/sandbox-allow/a.csv"))
assert(os.remove("runs/sandbox-allow/sub") and os.remove("runs/sandbox-allow") and os.remove("runs"))
-- temporary files
local tmp = os.tmpname()
f = assert(io.open(tmp, "w"))
f:write("x")
f:close()
assert(os.remove(tmp))
-- text chunks run in the sandbox too
assert(load("return 1 + 1")() == 2)
assert(load("return os.execute")() ~= nil and not pcall(load("return os.execute")(), "true"))
-- a small simulation
local m = apical.model { batch = 1 }
local h1 = m:population { name = "h", size = 2, neuron = apical.rate { tau = 1 }, activation = "linear" }
m:connect(h1, h1.soma, { name = "rec", init = apical.init.normal { std = 0.3, seed = 1 } })
local sim = m:compile()
sim:write_state(h1.soma, { { 1, 2 } })
sim:run { solver = "euler", dt = 0.01, t_end = 1 }
print("sandbox: allowed operations work")
