-- A negative time constant, given in a neuron spec written by hand. An error in a call that
-- spans several lines points at the line where the call starts.
local apical = require "apical"
local m = apical.model { batch = 1 }
m:population { -- error: tau = -0.5 must be >= 0
    name = "h1",
    size = 3,
    neuron = { kind = "neuron", type = "rate", params = { tau = -0.5 } },
}
