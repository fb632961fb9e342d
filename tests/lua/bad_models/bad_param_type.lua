-- A neuron parameter given as a string.
local apical = require "apical"
local m = apical.model { batch = 1 }
local fast = apical.rate { tau = "0.1" } -- error: parameter tau must be a number, got "0.1"
