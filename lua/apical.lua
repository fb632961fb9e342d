-- apical.lua — the Lua module `apical`: build circuit models, compile and run them, move
-- arrays and datasets in and out, train with optimisers, call kernels. `local apical = require "apical"`; docs/lua-api.md is the
-- reference. The C half is apical.core (lua/*.c); this file assembles the public table from
-- the pieces in apical/*.lua.
local core = require "apical.core"
local errors = require "apical.errors"
local types = require "apical.types"
local model = require "apical.model"
local sim = require "apical.sim" -- installs the methods of simulations
local params = require "apical.params"
local data = require "apical.data"
local optim = require "apical.optim"
errors.internal(debug.getinfo(1, "S").source)

core.registry() -- one registry per Lua state, created on load

local apical = {}

apical.version = core.version
apical.abi = string.format("%d.%d", core.abi >> 16, core.abi & 0xffff)

-- models
apical.model = model.new
apical.plugin = types.plugin
apical.types = types.types

-- type specs
apical.neuron = types.neuron
apical.block = types.block
apical.rule = types.rule
apical.activation = types.activation
apical.rate = types.constructor("neuron", "rate")
apical.lowpass = types.constructor("block", "lowpass")
apical.hold = types.constructor("block", "hold")
apical.hebb = types.constructor("rule", "hebb")
apical.init = setmetatable({}, {
    __call = function(_, typename, p)
        return types.init_generic(typename, p)
    end,
})
for _, t in ipairs(core.types()) do
    if t.kind == "initializer" and t.owner == "engine" then
        apical.init[t.name] = types.constructor("init", t.name)
    end
end

-- arrays (C functions: their errors point at the caller's line)
apical.array = core.array
apical.zeros = core.zeros
apical.load_npy = core.load_npy
apical.clock = core.clock
apical.mkdir = core.mkdir
-- files and directories of run directories (lua/lapi_fs.c; docs/training.md)
apical.fs = core.fs
apical.run_parallel = sim.run_parallel
apical.blas_threads = core.blas_threads
apical.blas_core = core.blas_core
function apical.is_array(v)
    local mt = getmetatable(v)
    return type(mt) == "table" and mt.__name == "apical.Array"
end

-- datasets
apical.dataset = data

-- optimisers and kernels
apical.optim = { sgd = optim.sgd, adam = optim.adam }
apical.call = types.call

-- script parameters
apical.params = params.params
apical.check_params = params.check
apical.params_given = params.given_names

return apical
