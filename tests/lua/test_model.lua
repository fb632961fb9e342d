-- test_model.lua — building models: inputs, populations, blocks, projections, their handles,
-- weights and biases (tables, arrays, .npy files), and the errors of each building call.
local apical = require "apical"
package.path = (arg[0]:match("^(.*)/") or ".") .. "/?.lua;" .. package.path
local check = require "check"

local m = apical.model { batch = 4 }
check.eq(m.batch, 4, "batch")
check.truthy(tostring(m):find("apical.Model", 1, true), "tostring")

-- inputs and populations
local x = m:input { name = "x", size = 3 }
check.eq(x.name, "x")
check.eq(x.size, 3)
local h1 = m:population { name = "h1", size = 5, neuron = apical.rate { tau = 0.2 },
    activation = "tanh", start = "zero", start_values = { soma = 0.5 } }
check.eq(h1.name, "h1")
check.eq(h1.size, 5)
check.eq(h1.neuron, "rate")
check.eq(h1.activation, "tanh")
check.eq(h1.rate.name, "h1.rate")
check.eq(h1.soma.name, "h1.soma")
check.eq(h1.soma.size, 5)
check.eq(h1.compartments[1], "soma")
check.eq(h1:signal("soma"), h1.soma)
local h2 = m:population { name = "h2", size = 2, neuron = "rate", params = { tau = 0.5 } }
check.eq(h2.activation, "linear", "default activation")
local h3 = m:population { name = "h3", size = 2, start = "settled" }
check.eq(m:get("h1"), h1)

-- blocks
local f = m:block { name = "f", type = apical.lowpass { tau = 2 }, inputs = { input = h1 } }
check.eq(f.output.name, "f.output")
check.eq(f.output.size, 5)
check.eq(f.y.name, "f.y")
check.eq(f.size, 5)
local g = m:block { name = "g", type = "lowpass", params = { tau = 3 }, inputs = { input = "x" } }
check.eq(g.output.size, 3)

-- projections
local p1 = m:connect(x, h1.soma, { init = apical.init.normal { std = 0.1, seed = 3 }, bias = true,
    plastic = apical.hebb { eta = 0.1 } })
check.eq(p1.name, "x->h1.soma")
check.eq(p1.rows, 5)
check.eq(p1.cols, 3)
check.eq(p1.source, "x")
check.eq(p1.target, "h1.soma")
check.eq(p1.kind, "dense")
check.eq(p1.has_bias, true)
check.eq(p1.plastic, true)
check.eq(p1.rule, "hebb")
local w = p1:weights()
check.shape(w, { 5, 3 })
check.truthy(w:max_abs() > 0 and w:max_abs() < 1, "normal init")
local again = m:connect(x, h2.soma, { name = "same_seed", init = apical.init.normal { std = 0.1, seed = 3 } })
check.eq(again.name, "same_seed")
check.shape(p1:bias(), { 5 })
check.eq(p1:bias():sum(), 0)
local p2 = m:connect(h1, h2.soma, { init = "zeros" })
check.eq(p2:bias(), nil)
check.eq(p2.plastic, false)
check.eq(p2.name, "h1->h2.soma")
local p3 = m:connect(h2, h3.soma, { kind = "one_to_one" })
check.shape(p3:weights(), { 1, 2 })
check.eq(p3:weights():sum(), 2, "one-to-one weights start at 1")
p3:set_weights { 0.5, 0.25 }
check.eq(p3:weights()[2], 0.25)
local pi = m:connect(x, h2.soma, { name = "ident", init = "identity" })
check.eq(pi:weights():at(2, 2), 1)

-- weights from tables and arrays, biases, .npy files
p2:set_weights { { 1, 2, 3, 4, 5 }, { 6, 7, 8, 9, 10 } }
check.eq(p2:weights():at(2, 5), 10)
p2:set_weights(apical.zeros { 2, 5 })
check.eq(p2:weights():sum(), 0)
p1:set_bias { 1, 2, 3, 4, 5 }
check.eq(p1:bias():sum(), 15)
local wpath, bpath = check.tmpname(".npy"), check.tmpname(".npy")
p1:save(wpath, bpath)
local saved = p1:weights()
p1:set_weights(apical.zeros { 5, 3 })
p1:set_bias(apical.zeros { 5 })
p1:load(wpath, bpath)
check.array_near(p1:weights(), saved, 0, "load weights")
check.eq(p1:bias():sum(), 15, "load bias")
check.eq(#m:projections(), 5)
check.eq(m:projection("h1->h2.soma"), p2)
check.eq(m:signal("h1.soma").size, 5)
check.eq(m:signal(f).size, 5)
local objs = m:objects()
check.eq(objs[1].kind, "input")
check.eq(objs[2].name, "h1")

-- errors: each points at the line of the call
check.fails(function() m:population { name = "h4", sise = 4 } end, 'population "h4": unknown field sise (fields: name, size,')
check.fails(function() m:population { name = "h4", size = "abc" } end, 'population "h4": field size must be a positive integer, got "abc"')
check.fails(function() m:population { name = "h4", size = 0 } end, "field size must be a positive integer, got 0")
check.fails(function() m:population { size = 3 } end, "population: field name is required")
check.fails(function() m:population { name = "h4", size = 2 ^ 40 } end, "field size = 1099511627776.0 is too large (at most 2147483647)")
check.fails(function() m:population { name = "4h", size = 3 } end, "field name must be a name")
check.fails(function() m:population { name = "h1", size = 3 } end, 'population "h1": the name is already taken')
check.fails(function() m:population { name = "h4", size = 3, neuron = "lif" } end, 'unknown neuron type "lif"')
check.fails(function() m:population { name = "h4", size = 3, activation = "tahn" } end, '"tahn"')
check.fails(function() m:population { name = "h4", size = 3, neuron = apical.rate { tau = 1 }, params = { tau = 2 } } end, "not in params")
check.fails(function() m:population { name = "h4", size = 3, start = "settled", start_values = { soma = 1 } } end, "start_values apply to start = \"zero\" only")
check.fails(function() m:population { name = "h4", size = 3, start_values = { dend = 1 } } end, '"dend" is not a compartment of rate (compartments: soma)')
check.fails(function() m:population { name = "h4", size = 3, neuron = apical.rate { tau = 0 }, start_values = { soma = 1 } } end, "the compartment is instantaneous")
check.fails(function() m:population { name = "h4", size = 3, start = "warm" } end, 'field start must be one of "zero", "settled", got "warm"')
check.fails(function() m:population "h4" end, "population: expected a table like")
check.fails(function() m.population { name = "h4", size = 3 } end, "call it with a colon")
check.fails(function() apical.rate { tau = -1 } end, "neuron type rate: tau = -1 must be >= 0")
check.fails(function() apical.rate { tau = math.huge } end, "neuron type rate: tau = inf must be finite and >= 0")
check.fails(function() apical.rate { tau = 0 / 0 } end, "neuron type rate: tau = nan must be finite and >= 0")
check.fails(function() apical.rate { tua = 1 } end, 'neuron type rate has no parameter "tua" (parameters: tau)')
check.fails(function() apical.rate { tau = "fast" } end, 'parameter tau must be a number, got "fast"')
check.fails(function() apical.neuron("lif", {}) end, 'unknown neuron type "lif"')
check.fails(function() apical.init.normal { sd = 1 } end, 'initializer normal has no parameter "sd" (parameters: mean, std, seed)')
check.fails(function() apical.init.normal { seed = -1 } end, "field seed must be an integer >= 0, got -1")
check.fails(function() m:input { name = "y" } end, 'input "y": field size is required (a positive integer)')
check.fails(function() m:block { name = "b", type = apical.lowpass {}, inputs = { inp = h1 } } end, 'block type lowpass has no input "inp" (inputs: input)')
check.fails(function() m:block { name = "b", type = apical.lowpass {} } end, "input input is not connected")
check.fails(function() m:block { name = "b", type = apical.rate {} } end, "expected a block type spec, got a spec of kind \"neuron\"")
check.fails(function() m:block { name = "b", type = "pid", inputs = {} } end, 'unknown block type "pid"')
check.fails(function() m:block { name = "b", type = apical.lowpass {}, inputs = { input = "nope" } } end, 'no signal "nope"')
check.fails(function() m:connect(x, h1.soma, { kind = "one_to_one" }) end, "one-to-one needs equal sizes, got 3 and 5")
check.fails(function() m:connect(x, h1, {}) end, "a projection must end on a compartment")
check.fails(function() m:connect(x, "h9.soma") end, 'no signal "h9.soma"')
check.fails(function() m:connect(x, h1.soma, { init = "gaussian" }) end, '"gaussian"')
check.fails(function() m:connect(x, h1.soma, { init = apical.init.zeros }) end, "got a function; call the constructor")
check.fails(function() m:connect(x, h1.soma, { plastic = "yes" }) end, "field plastic must be true, false or a rule spec")
check.fails(function() m:connect(x, h1.soma, { bias = 1 }) end, "field bias must be a boolean, got 1")
check.fails(function() m:connect(x, h1.soma, { wieght = 1 }) end, "unknown field wieght")
check.fails(function() m:connect(x, h1.soma, { name = "x->h1.soma" }) end, 'projection "x->h1.soma" exists already')
check.fails(function() m:connect(h2, h3.soma, { kind = "one_to_one", plastic = apical.hebb {} }) end, "a plasticity rule needs a dense projection")
check.fails(function() m:connect(p1, h1.soma) end, "connect: the source (argument 1) must be a signal")
check.fails(function() p2:set_weights { { 1, 2 } } end, 'projection "h1->h2.soma": set_weights: got shape {1, 2}, the weights are {2, 5}')
check.fails(function() p2:set_weights { { 0 / 0, 0, 0, 0, 0 }, { 0, 0, 0, 0, 0 } } end, "weight[1, 1] = nan is not finite")
check.fails(function() p2:set_weights { { 1, 1, 1, 1, 1 }, { 1, 1, 1, 1, math.huge } } end, "weight[2, 5] = inf is not finite")
check.fails(function() p2:set_weights "abc" end, "set_weights: expected an array or a nested table")
check.fails(function() p2:set_bias { 1, 2 } end, "the projection has no bias")
check.fails(function() p1:set_bias { 1, 2 } end, "got shape {2}, the bias needs {5}")
check.fails(function() p1:load("/nonexistent.npy") end, "/nonexistent.npy: cannot open")
check.fails(function() p2:load(wpath) end, "file " .. wpath .. ": got shape {5, 3}, the weights are {2, 5}")
check.fails(function() p1.weights() end, "call it with a colon on a projection")
check.fails(function() m:projection("nope") end, 'no projection "nope" (projections: x->h1.soma,')
check.fails(function() m:get("nope") end, 'the model has no object "nope"')
check.fails(function() apical.model { batch = 0 } end, "field batch must be a positive integer, got 0")
check.fails(function() apical.model { bacth = 2 } end, "unknown field bacth")

-- a rule's auxiliary signal (m:set_rule_aux, connect's aux): resolved at compile time, errors
-- point at the line that named it
do
    local ma = apical.model { batch = 2 }
    local xa = ma:input { name = "x", size = 3 }
    local ha = ma:population { name = "h", size = 2 }
    local pa = ma:connect(xa, ha.soma, { plastic = apical.hebb {}, aux = "lp.output" })
    check.eq(pa.aux, "lp.output")
    local pb = ma:connect(xa, ha.soma, { name = "pb", plastic = apical.hebb {} })
    check.eq(pb.aux, nil)
    check.eq(ma:set_rule_aux(pb, xa).aux, "x")
    check.eq(ma:set_rule_aux("pb", nil).aux, nil)
    check.fails(function() ma:connect(xa, ha.soma, { name = "pc", aux = "x" }) end, "field aux names a plasticity rule's auxiliary signal; it needs plastic = a rule spec")
    local pc = ma:connect(xa, ha.soma, { name = "pc" })
    check.fails(function() ma:set_rule_aux(pc, "x") end, 'projection "pc": an auxiliary rule signal needs a rule')
    check.fails(function() ma:set_rule_aux("nope", "x") end, "set_rule_aux: argument 1 must be a projection of this model")
    check.fails(function() ma:set_rule_aux(pb, 3) end, "set_rule_aux: the signal (argument 2) must be a signal")
    -- declared after the projection that names it
    ma:block { name = "lp", type = apical.lowpass { tau = 0.5 }, inputs = { input = xa } }
    ma:set_rule_aux(pb, "nope.output"); local line = debug.getinfo(1, "l").currentline
    local err = check.fails(function() ma:compile() end, 'projection pb: rule hebb: auxiliary signal "nope.output": no signal "nope.output"', false)
    check.truthy(err:find("test_model.lua:" .. line .. ":", 1, true), "the aux error names the line of set_rule_aux: " .. err)
    ma:set_rule_aux(pb, nil)
    -- m:add_rule: a rule (and its auxiliary signal) for a projection made earlier
    local pd = ma:connect(xa, ha.soma, { name = "pd", plastic = true })
    check.eq(pd.rule, nil)
    check.eq(ma:add_rule(pd, apical.hebb { eta = 2 }, { aux = "lp.output" }).rule, "hebb")
    check.eq(pd.aux, "lp.output")
    check.fails(function() ma:add_rule(pd, apical.hebb {}) end, 'projection "pd" has a rule (hebb) already')
    check.fails(function() ma:add_rule(pc, apical.rate {}) end, 'expected a rule spec')
    check.fails(function() ma:add_rule(pc, apical.hebb {}, { aux = "x", eta = 1 }) end, "unknown field eta")
    local sa = ma:compile()
    sa:set_input("x", { { 1, 2, 3 }, { 4, 5, 6 } })
    sa:run { solver = "euler", dt = 0.1, steps = 3 }
end

-- a failed load changes nothing: the weights are checked before the bias file is read
local before = p1:weights()
check.fails(function() p1:load(wpath, "/nonexistent.npy") end, "cannot open")
check.array_near(p1:weights(), before, 0, "failed load keeps weights")

-- after compile the structure is fixed, weights are not
local sim = m:compile()
check.truthy(tostring(sim):find("apical.Sim", 1, true), "sim tostring")
check.fails(function() m:input { name = "late", size = 1 } end, "the model is compiled, its structure is fixed")
p2:set_weights(apical.zeros { 2, 5 })
check.truthy(sim:model() == m, "sim:model()")

-- closing: a model used by a simulation lives until the simulation goes
m:close()
check.fails(function() m:population { name = "q", size = 1 } end, "population: the model is closed")
check.eq(sim:read(h1.soma).shape[2], 5, "sim still works after m:close()")
sim:close()
check.fails(function() sim:read(h1.soma) end, "read: the simulation is closed")
sim:close() -- twice is fine
do
    local m2 <close> = apical.model { batch = 1 }
    m2:input { name = "u", size = 2 }
end

check.done("test_model")
