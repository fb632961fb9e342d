-- A NaN among the weights given to set_weights.
local apical = require "apical"
local m = apical.model { batch = 1 }
local x = m:input { name = "x", size = 2 }
local h = m:population { name = "h", size = 2 }
local p = m:connect(x, h.soma)
local nan = 0 / 0
p:set_weights { { 1, 0 }, { 0, nan } } -- error: weight[2, 2] = nan is not finite
