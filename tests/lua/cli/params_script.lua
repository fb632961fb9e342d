-- A script with parameters, for the --set checks of check_cli.lua.
local apical = require "apical"
local p = apical.params { dt = 0.02, solver = "euler", epochs = 3 }
print(string.format("dt=%s solver=%s epochs=%s args=%s", p.dt, p.solver, p.epochs,
    table.concat(arg, ",")))
