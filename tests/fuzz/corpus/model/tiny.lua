local apical = require "apical"
local m = apical.model { batch = 2 }
local x = m:input { name = "x", size = 3 }
local h = m:population { name = "h", size = 4, neuron = apical.rate { tau = 0.5 }, activation = "tanh" }
m:connect(x, h.soma, { init = apical.init.normal { std = 0.3, seed = 1 }, bias = true })
local f = m:block { name = "f", type = apical.lowpass { tau = 2 }, inputs = { input = h } }
local sim = m:compile()
sim:set_input("x", { { 1, 2, 3 }, { -1, 0, 1 } })
sim:run { solver = "rk4", dt = 0.01, t_end = 1 }
local v = sim:read(h.soma)
