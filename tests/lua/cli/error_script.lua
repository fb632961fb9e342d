-- A script whose model has an error on line 6 (for the message and --traceback checks).
local apical = require "apical"
local m = apical.model { batch = 1 }
local function layer(name, size)
    -- the error points here: the innermost line of user code
    local h = m:population { name = name, size = size, activation = "tahn" }
    return h
end
layer("h1", 4)
