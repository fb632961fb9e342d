-- A one-to-one projection between signals of different sizes.
local apical = require "apical"
local m = apical.model { batch = 2 }
local x = m:input { name = "x", size = 3 }
local h1 = m:population { name = "h1", size = 4 }
m:connect(x, h1.soma, { kind = "one_to_one" }) -- error: one-to-one needs equal sizes, got 3 and 4
