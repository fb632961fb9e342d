-- test_kernels.lua — kernels from Lua: apical.call, the functions a plugin's table gains for
-- its kernels, every kind of argument (arrays by reference, booleans, models, simulations,
-- optimisers), errors at the caller's line, and the plugins' Lua halves (apical.plugins.<name>).
local apical = require "apical"
local here = arg[0]:match("^(.*)/") or "."
package.path = here .. "/?.lua;" .. here .. "/plugin_lua/?.lua;" .. package.path
local check = require "check"

-- ---- the built-in kernel axpy: y += a x, in place ----------------------------------------
local X = apical.array { { 1, 2, 3 }, { 4, 5, 6 } }
local Y = apical.zeros({ 2, 3 }, 10)
apical.call("axpy", { a = 2, x = X, y = Y })
check.array_near(Y, { 12, 14, 16, 18, 20, 22 }, 0, "axpy writes into Y")
apical.call("axpy", { x = X, y = Y }) -- a defaults to 1
check.eq(Y:at(2, 3), 28.0)
apical.call("axpy", { a = true, x = X, y = Y }) -- booleans are 1 and 0
apical.call("axpy", { a = false, x = X, y = Y })
check.eq(Y:at(1, 1), 14.0)
local V = apical.array { 1, 2 }
apical.call("axpy", { a = -1, x = V, y = V }) -- the same array twice
check.array_near(V, { 0, 0 }, 0, "x and y the same array")
local found
for _, t in ipairs(apical.types()) do
    if t.name == "axpy" then found = t end
end
check.eq(found.kind, "kernel")
check.eq(found.owner, "engine")

check.fails(function() apical.call("nope", {}) end, 'unknown kernel "nope" (known: axpy')
check.fails(function() apical.call("axpy", { a = 2, x = X }) end, "kernel axpy: missing argument y")
check.fails(function() apical.call("axpy", { x = X, y = apical.zeros { 3, 2 } }) end,
    "kernel axpy: x has shape [2, 3], expected [3, 2]")
check.fails(function() apical.call("axpy", { a = "2", x = X, y = Y }) end,
    "kernel axpy: argument a must be a number, got a string")
check.fails(function() apical.call("axpy", { x = X, y = Y, z = 1 }) end,
    'kernel axpy: unknown argument "z" (arguments: a, x, y)')
check.fails(function() apical.call("axpy", { x = { 1, 2 }, y = Y }) end,
    "kernel axpy: argument x is a table; pass numbers, strings, booleans, arrays")
check.fails(function() apical.call("axpy", { x = X, y = Y, print }) end,
    "kernel axpy: arguments are named")
check.fails(function() apical.call("axpy", { x = print, y = Y }) end,
    "kernel axpy: argument x cannot be passed to a kernel (got function")
check.fails(function() apical.call("axpy", { x = apical.zeros { 1, 1, 1, 1, 1 }, y = Y }) end,
    "kernel axpy: argument x has 5 dimensions, kernels take at most 4")
check.fails(function() apical.call("axpy", X) end, "kernel axpy: expected a table of named arguments")
check.fails(function() apical.call(42) end, "apical.call: the first argument must be a kernel name")

-- ---- a plugin's kernels: functions of its table -------------------------------------------
local ex = apical.plugin "example" -- its Lua half (plugin_lua/apical/plugins/example.lua) runs
check.eq(type(ex.scale), "function", "a kernel function")
check.eq(type(ex.adaptive), "function", "the constructors are still there")
local Z = apical.zeros { 2, 3 }
ex.scale { a = 3, x = X, y = Z }
check.array_near(Z, { 3, 6, 9, 12, 15, 18 }, 0, "example.scale")
apical.call("example.scale", { a = -1, x = X, y = Z })
check.eq(Z:at(2, 2), -5.0)
ex.double { x = X, y = Z } -- added by the plugin's Lua half
check.eq(Z:at(2, 3), 12.0)
check.fails(function() ex.scale { a = 3, x = X, y = apical.zeros { 2, 2 } } end,
    "kernel example.scale: y has shape [2, 2], expected [2, 3]")
check.fails(function() ex.scale { x = X, y = Z } end, "kernel example.scale: missing argument a")
check.fails(function() ex.scale { a = 1, xx = X, y = Z } end,
    'kernel example.scale: unknown argument "xx" (arguments: a, x, y)')
check.fails(function() ex.scale(X) end, "kernel example.scale: expected a table of named arguments")

-- ---- models, simulations and optimisers as arguments ----------------------------------------
-- The Lua half of ktest is given through package.preload. A failing one fails apical.plugin
-- (and is tried again next time); a real error inside it is not mistaken for "no Lua half".
package.preload["apical.plugins.ktest"] = function() return require "no.such.module" end
local err = check.fails(function() apical.plugin "ktest" end, "module 'no.such.module' not found",
    false)
check.truthy(err:find("test_kernels.lua:69: module", 1, true), "at the line of the Lua half")
package.preload["apical.plugins.ktest"] = function() return 42 end
check.fails(function() apical.plugin "ktest" end,
    "the Lua half of plugin ktest (module apical.plugins.ktest) must return a function(plugin, info), got 42")
package.loaded["apical.plugins.ktest"] = nil
package.preload["apical.plugins.ktest"] = function()
    return function(kt) kt.extra = "from the Lua half" end
end
local kt = apical.plugin "ktest"
check.eq(kt.extra, "from the Lua half")
check.eq(apical.plugin "ktest", kt, "loaded once")

local m = apical.model { batch = 3 }
local x = m:input { name = "x", size = 2 }
local h = m:population { name = "h", size = 2, neuron = apical.rate { tau = 1 } }
local p = m:connect(x, h.soma, { plastic = true })
local opt = apical.optim.sgd { model = m }
local sim = m:compile()
local out = apical.zeros { 6 }
kt.inspect { model = m, sim = sim, opt = opt, n = 2.5, s = "hello", flag = true, out = out }
check.array_near(out, { 3, 6, 0, 2.5, 5, 1 }, 0, "what the kernel received")
opt:set_grad(p, apical.zeros { 2, 2 }):step()
kt.inspect { opt = opt, out = out }
check.array_near(out, { -1, -1, 1, -1, 0, -1 }, 0, "optional arguments absent")
check.fails(function() kt.inspect { model = sim, out = out } end,
    "kernel ktest.inspect: argument model must be a model, got a simulation")
check.fails(function() kt.inspect { opt = m, out = out } end,
    "kernel ktest.inspect: argument opt must be an optimiser, got a model")
check.fails(function() kt.inspect { out = apical.zeros { 5 } } end,
    "kernel ktest.inspect: out has shape [5], expected [6]")
check.fails(function() kt.inspect { out = out, flag = p } end,
    "kernel ktest.inspect: argument flag cannot be passed to a kernel (got table")
-- failures: the kernel's message, prefixed with its name when it does not say it
check.fails(function() kt.fail {} end, "kernel ktest.fail: something went wrong on purpose")
check.fails(function() kt.fail { how = "prefixed" } end, "kernel ktest.fail: it says so itself")
check.fails(function() kt.fail { how = "silent" } end, "kernel ktest.fail failed: solver failure")
-- closed objects are refused before the kernel runs
opt:close()
check.fails(function() kt.inspect { opt = opt, out = out } end,
    "kernel ktest.inspect: argument opt: the optimiser is closed")
sim:close()
check.fails(function() kt.inspect { sim = sim, out = out } end,
    "kernel ktest.inspect: argument sim: the simulation is closed")
m:close()
check.fails(function() kt.inspect { model = m, out = out } end,
    "kernel ktest.inspect: argument model: the model is closed")

check.done("test_kernels")
