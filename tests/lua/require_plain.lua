-- require_plain.lua — run by the stock lua5.4 interpreter with LUA_PATH/LUA_CPATH pointing at
-- build/lib/lua: `require "apical"` works without the apical program, and apical.params reads
-- APICAL_SET (the test sets APICAL_SET=steps=5,label=plain).
local apical = require "apical"

local p = apical.params { steps = 1, label = "none" }
assert(p.steps == 5 and math.type(p.steps) == "integer", "APICAL_SET steps")
assert(p.label == "plain", "APICAL_SET label")
apical.check_params()

local m = apical.model { batch = 1 }
local x = m:input { name = "x", size = 1 }
local h = m:population { name = "h", size = 1, neuron = apical.rate { tau = 1 } }
m:connect(x, h.soma, { init = apical.init.constant { value = 1 } })
local sim = m:compile()
sim:set_input(x, { { 2 } })
local out = sim:run { solver = "euler", dt = 0.1, steps = p.steps, record = { h }, times = { 0.5 } }
local want = 2 * (1 - 0.9 ^ 5)
assert(math.abs(out:get(h)[1] - want) < 1e-12, "euler value")

-- an error raised by the library names this file's line
local m2 = apical.model { batch = 1 }
local line = debug.getinfo(1, "l").currentline + 1
local ok, err = pcall(function() m2:population { name = "bad", size = -1 } end)
assert(not ok and err:find("^.-require_plain%.lua:" .. line .. ": population \"bad\""), err)
print("require_plain: ok")
