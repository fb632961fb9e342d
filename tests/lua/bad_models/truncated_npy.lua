-- Weights from a .npy file whose data stop early (truncated.npy: a 2 x 2 float64 array cut
-- after 20 bytes of data).
local apical = require "apical"
local dir = arg[0]:match("^(.*)/") or "."
local m = apical.model { batch = 1 }
local x = m:input { name = "x", size = 2 }
local h = m:population { name = "h", size = 2 }
local p = m:connect(x, h.soma)
p:load(dir .. "/truncated.npy") -- error: expected 32 bytes of data after the header
