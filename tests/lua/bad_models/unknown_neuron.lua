-- A neuron type nobody registered (the engine has "rate"; plugins add more).
local apical = require "apical"
local m = apical.model { batch = 1 }
m:population { name = "h1", size = 4, neuron = "lif" } -- error: unknown neuron type "lif"
