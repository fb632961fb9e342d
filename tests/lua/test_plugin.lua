-- test_plugin.lua — apical.plugin: the example plugin (tests/plugins/example_plugin.c, found
-- through APICAL_PLUGIN_PATH), its constructors, the type list, and load errors.
local apical = require "apical"
package.path = (arg[0]:match("^(.*)/") or ".") .. "/?.lua;" .. package.path
local check = require "check"

local ex, info = apical.plugin "example"
check.eq(info.name, "example")
check.eq(info.version, "1.0")
check.eq(type(ex.adaptive), "function", "neuron constructor")
check.eq(type(ex.cube), "function", "activation constructor")
local again = apical.plugin "example"
check.eq(again, ex, "loading twice returns the same table")

local found = {}
for _, t in ipairs(apical.types()) do
    if t.owner == "example" then found[t.name] = t.kind end
end
check.eq(found["example.adaptive"], "neuron")
check.eq(found["example.cube"], "activation")

-- a population of plugin neurons: compartments become fields of the handle
local m = apical.model { batch = 1 }
local x = m:input { name = "x", size = 1 }
local n = m:population { name = "n", size = 1, neuron = ex.adaptive { tau_m = 0.5, g = 1 },
    activation = ex.cube() }
check.eq(n.neuron, "example.adaptive")
check.eq(n.activation, "example.cube")
check.eq(n.soma.name, "n.soma")
check.eq(n.adapt.name, "n.adapt")
local n2 = m:population { name = "n2", size = 1, neuron = apical.neuron("example.adaptive", {}),
    activation = "example.cube" }
m:connect(x, n.soma, { init = apical.init.constant { value = 1 } })
m:connect(x, n2.soma, { init = apical.init.constant { value = 1 } })
check.fails(function() ex.adaptive { tau_a = 0 } end, "neuron type example.adaptive: tau_a = 0 must be >= 1e-09")
check.fails(function() ex.adaptive { tau = 1 } end, 'has no parameter "tau" (parameters: tau_m, tau_a, g)')
check.fails(function() apical.plugin "nonexistent" end, 'plugin "nonexistent" not found')
check.fails(function() apical.plugin "failinit" end, "failinit: the test plugin refuses to start")
check.fails(function() apical.plugin "badabi" end, "ABI")
check.fails(function() apical.plugin(42) end, "apical.plugin: expected a plugin name")

-- the adaptation: a step of input first raises x, then a pulls it down
local sim = m:compile()
sim:set_input(x, { { 1 } })
local out = sim:run { solver = "cvode-bdf", t_end = 200, rtol = 1e-8, atol = 1e-10,
    record = { n.soma, n.adapt }, times = { 1, 200 } }
local soma = out:get(n.soma)
check.truthy(soma[1] > soma[2], "adaptation lowers the soma")
check.near(soma[2], 0.5, 1e-4, "steady state x = I / (1 + g)")
check.near(out:get(n.adapt)[2], 0.5, 1e-4, "a = x")

-- registration closes with the first compile
check.fails(function() apical.plugin "nosym" end, "load plugins before the first m:compile()")

check.done("test_plugin")
