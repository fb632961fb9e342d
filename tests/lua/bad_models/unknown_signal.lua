-- Recording a compartment the neuron type does not have.
local apical = require "apical"
local m = apical.model { batch = 1 }
local h = m:population { name = "h", size = 1 }
local sim = m:compile()
local out = sim:run { solver = "euler", dt = 0.1, steps = 10, every = 1, -- error: no signal "h.apical": population "h" (rate) has rate, soma
    record = { "h.apical" } }
