-- test_params.lua — apical.params under `apical run test_params.lua --set dt=0.5 --set
-- name=fast --set flag=true --set n=4 -- one two` (see CMakeLists.txt): values converted to the
-- defaults' types, the script's arg table, and declaration errors.
local apical = require "apical"
package.path = (arg[0]:match("^(.*)/") or ".") .. "/?.lua;" .. package.path
local check = require "check"

local p = apical.params { dt = 0.02, name = "slow", flag = false, n = 3, untouched = 1.5 }
check.eq(p.dt, 0.5)
check.eq(p.name, "fast")
check.eq(p.flag, true)
check.eq(p.n, 4)
check.eq(math.type(p.n), "integer")
check.eq(p.untouched, 1.5)
-- a second call may declare the same parameter again
check.eq(apical.params({ dt = 1.0 }).dt, 0.5)

check.eq(arg[0]:match("test_params%.lua$") ~= nil, true, "arg[0]")
check.eq(arg[1], "one")
check.eq(arg[2], "two")
check.eq(select("#", ...), 2, "script varargs")

check.fails(function() apical.params "dt" end, "apical.params: expected a table of defaults")
check.fails(function() apical.params { dt = {} } end, "the default of dt must be a number, string or boolean")
check.fails(function() apical.params { [1] = 2 } end, "parameter names must be strings")

-- every --set is declared: check_params passes (the apical program calls it again at the end)
apical.check_params()

check.done("test_params")
