-- A typo in a field name (sise for size) is an error, not a silently ignored field.
local apical = require "apical"
local m = apical.model { batch = 2 }
local x = m:input { name = "x", size = 3 }
local h1 = m:population { name = "h1", sise = 4 } -- error: population "h1": unknown field sise
m:connect(x, h1.soma)
