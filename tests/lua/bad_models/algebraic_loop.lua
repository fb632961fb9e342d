-- Two instantaneous populations (tau = 0) feeding each other: an algebraic loop. The engine
-- finds it when compiling and names the line that declared the first population of the loop.
local apical = require "apical"
local m = apical.model { batch = 1 }
local a = m:population { name = "a", size = 2, neuron = apical.rate { tau = 0 } } -- error: algebraic loop of instantaneous links
local b = m:population { name = "b", size = 2, neuron = apical.rate { tau = 0 } }
m:connect(a, b.soma)
m:connect(b, a.soma)
local sim = m:compile()
sim:run { solver = "euler", dt = 0.1, steps = 1 }
