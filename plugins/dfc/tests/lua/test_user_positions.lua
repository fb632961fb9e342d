-- test_user_positions.lua — errors raised inside the plugin's Lua half and the trainer point at
-- the user's file:line (the line of the call here, written on one line with `fails`) and read as
-- the option was written (dfc.network: tau_u = -1 must be > 0), not at network.lua, train.lua
-- or pathways.lua (errors.wrap in lua/apical/errors.lua).
local apical = require "apical"
local dfc = apical.plugin "dfc"
package.path = (arg[0]:match("^(.*)/") or ".") .. "/?.lua;" .. package.path
local fx = require "dfc_fixture"
local check, assert = fx.check, fx.check.assert

local tmp = fx.tmpdir()

-- fx.fails, and the message names none of the plugin's own files
local function fails(f, needle)
  local info = debug.getinfo(2, "Sl")
  local err = fx.fails(f, needle, info.short_src .. ":" .. info.currentline .. ": ")
  assert(not err:find("network.lua", 1, true) and not err:find("train.lua", 1, true)
    and not err:find("pathways.lua", 1, true) and not err:find("errors.lua", 1, true), err)
end

-- dfc.network's values
fails(function() dfc.network { sizes = { 4, 3, 2 }, tau_v = -0.2 } end, "dfc.network: tau_v = -0.2 must be > 0")
fails(function() dfc.network { sizes = { 4, 3, 2 }, tau_v = 0 } end, "dfc.network: tau_v = 0 must be > 0")
fails(function() dfc.network { sizes = { 4, 3, 2 }, tau_u = -1 } end, "dfc.network: tau_u = -1 must be > 0")
fails(function() dfc.network { sizes = { 4, 0, 2 } } end, "dfc.network: sizes[2] = 0 must be a positive integer")
fails(function() dfc.network { sizes = { 4, 3, 2 }, k_p = 0 / 0 } end, "dfc.network: k_p = ")
fails(function() dfc.network { sizes = { 4, 3, 2 }, seed = -1 } end, "dfc.network: seed = -1 must be an integer >= 0")
fails(function() dfc.network { sizes = { 4, 3, 2 }, tau_vv = 1 } end, 'dfc.network: unknown option "tau_vv"')

-- a pathway population with a negative time constant, from a builder of the user's
local pop_line
dfc.pathways.register("relay_bad", function(net)
  pop_line = debug.getinfo(1, "l").currentline + 1
  local r = dfc.pathways.population(net, { name = "r", size = net.sizes[net.L + 1], tau = -0.5 })
  for i = 1, net.L do dfc.pathways.connect(net, r, net.h[i].apical, { name = "Q" .. i }) end
end)
local ok, err = pcall(function() dfc.network { sizes = { 4, 3, 2 }, feedback_pathway = "relay_bad" } end)
assert(not ok and err:find("^[^\n]*test_user_positions.lua:" .. pop_line .. ": dfc.pathways.population: tau = %-0.5 must be a finite number >= 0"), err)

-- the trainer's options
local small = { n_train = 256, n_valid = 64, n_test = 64 }
local base = { task_opts = small, progress = false, out_dir = tmp, epochs = 1,
  defaults = { tmax = 40, dt = 0.05 } }
local cfg = fx.config(base)
fails(function() dfc.train(cfg { feedback_pathway = "rely" }) end, 'dfc.train: unknown feedback_pathway "rely"')
fails(function() dfc.train(cfg { lr = 1e999 }) end, "dfc.train: lr = inf must be a finite number")
fails(function() dfc.train(cfg { tau_u = -1 }) end, "dfc.train: tau_u = -1 must be > 0")
fails(function() dfc.trainer(cfg { method = "dfc", hidden = { 0 } }) end, "dfc.network: sizes[2] = 0 must be a positive integer")
fails(function() dfc.train(cfg { feedback_pathway = "layerwise", pathway_opts = { tau = -0.5 } }) end, "dfc.train: pathway_opts.tau = -0.5 must be a number >= 0")
fails(function() dfc.train(cfg { feedback_pathway = "layerwise", pathway_opts = { tua = 1 } }) end, 'dfc.train: pathway_opts: feedback_pathway layerwise has no option "tua"')

-- an Euler failure inside training (the simulation blows up): at the line of dfc.train
fails(function() dfc.train(cfg { method = "dfc", k_p = 1e6, dt = 0.5, tmax = 100 }) end, "explosive growth: ")

-- a resume with another solver: at the line of dfc.train, naming the option
local r = dfc.train(cfg { method = "dfc", solver = "euler" })
fails(function() dfc.train(cfg { method = "dfc", solver = "cvode-bdf", resume = r.run_dir, epochs = 2 }) end, "resume: option solver is")

-- a method of the trainer object and of the network called directly
local t = dfc.trainer(cfg { method = "dfc-ssa" })
fails(function() t:evaluate(42) end, "")
fails(function() t.net:add_highpass(-1) end, "add_highpass")

check.done("test_user_positions")
