-- A misspelt run option (tend for t_end) is an error, not a silently ignored option.
local apical = require "apical"
local m = apical.model { batch = 1 }
local h = m:population { name = "h", size = 1 }
local sim = m:compile()
sim:run { solver = "cvode-bdf", tend = 10 } -- error: run: unknown field tend
