-- apical/optim.lua — optimisers over a model's projections: apical.optim.sgd { ... } and
-- apical.optim.adam { ... }, and the methods of the apical.Optim objects they return (the C
-- half is lua/lapi_optim.c; the semantics are in docs/optimisers.md).
local core = require "apical.core"
local errors = require "apical.errors"
local model = require "apical.model"
errors.internal(debug.getinfo(1, "S").source)

local M = {}
local show, raise = errors.show, errors.raise

local COMMON = { "model", "projections", "lr", "weight_decay", "clip", "clip_mode" }
local FIELDS = { sgd = { "momentum" }, adam = { "beta1", "beta2", "eps" } }
for kind, extra in pairs(FIELDS) do
    local list = table.move(COMMON, 1, #COMMON, 1, {})
    FIELDS[kind] = table.move(extra, 1, #extra, #list + 1, list)
end

-- The engine says "optimiser: lr = -1, must be ..."; the user wrote apical.optim.sgd.
local function engine_error(what, err)
    raise((tostring(err):gsub("^optimiser: ", what .. ": ")))
end

-- The projection ids (0-based) an optimiser of model m trains: `projections` (handles or
-- names) or, when nil, every plastic projection.
local function projection_ids(m, projections, what)
    local ids = {}
    if projections == nil then
        for id = 0, core.model_n_projections(m) - 1 do
            if core.model_projection_info(m, id).plastic then ids[#ids + 1] = id end
        end
        if #ids == 0 then
            raise(what .. ": the model has no plastic projections (connect them with " ..
                "plastic = true or a rule, or list them in projections = { ... })")
        end
        return ids
    end
    if type(projections) ~= "table" or getmetatable(projections) ~= nil then
        raise(string.format("%s: field projections must be a list of projections (handles or " ..
            "names), got %s", what, show(projections)))
    end
    for k in pairs(projections) do
        if math.type(k) ~= "integer" or k < 1 or k > #projections then
            raise(string.format("%s: field projections must be a list, it has the key %s", what,
                show(k)))
        end
    end
    if #projections == 0 then raise(what .. ": field projections is empty") end
    for i = 1, #projections do
        ids[i] = model.projection_id(m, projections[i],
            string.format("%s: projections[%d]", what, i))
    end
    return ids
end

local function new(kind, opts)
    local what = "apical.optim." .. kind
    if type(opts) ~= "table" then
        raise(string.format("%s: expected a table like { model = m, lr = 0.01 }, got %s", what,
            show(opts)))
    end
    errors.fields(opts, FIELDS[kind], what)
    local m = opts.model
    if not core.is_model(m) then
        raise(string.format("%s: field model must be a model (the one whose projections it " ..
            "trains), got %s", what, show(m)))
    end
    if core.model_closed(m) then raise(what .. ": the model is closed") end
    local ids = projection_ids(m, opts.projections, what)
    local o = {}
    for _, f in ipairs(FIELDS[kind]) do
        if f ~= "model" and f ~= "projections" and f ~= "clip_mode" then
            o[f] = errors.check(opts[f], "number", what, f)
        end
    end
    local mode = errors.choice(opts.clip_mode, { "none", "per_tensor", "global" }, what,
        "clip_mode")
    if mode == nil then
        mode = o.clip ~= nil and "global" or "none"
    elseif mode == "none" and o.clip ~= nil then
        raise(string.format("%s: clip = %s with clip_mode = \"none\" (drop one of them)", what,
            show(o.clip)))
    elseif mode ~= "none" and o.clip == nil then
        raise(string.format("%s: clip_mode = %q needs clip = (the norm bound)", what, mode))
    end
    o.clip_mode = mode
    local opt, err = core.optim_new(m, kind, ids, o)
    if not opt then engine_error(what, err) end
    return opt
end

function M.sgd(opts)
    return new("sgd", opts)
end

function M.adam(opts)
    return new("adam", opts)
end

-- ---- methods --------------------------------------------------------------------------------

local Optim = {}

local function open_optim(self, method)
    if not core.is_optim(self) then
        raise(string.format("%s: call it with a colon on an optimiser (opt:%s ...), got %s as " ..
            "self", method, method, show(self)))
    end
    if core.optim_closed(self) then raise(method .. ": the optimiser is closed") end
end

local function proj_id(self, p, method)
    return (model.projection_id(core.optim_model(self), p, method))
end

local function to_array(v, what)
    local a, err = core.try_array(v)
    if not a then raise(what .. ": " .. err) end
    return a
end

local function ok_or_raise(ok, err)
    if not ok then raise(err) end
end

-- opt:zero(): every gradient buffer to zero
function Optim:zero()
    open_optim(self, "zero")
    ok_or_raise(core.optim_zero(self))
    return self
end

-- opt:grad(p) -> dW (rows x cols), db ({rows}, or nil without a bias): copies of the buffers
function Optim:grad(p)
    open_optim(self, "grad")
    local dW, db = core.optim_grad(self, proj_id(self, p, "grad"))
    if not dW then raise("grad: " .. db) end
    if db == false then db = nil end
    return dW, db
end

-- opt:set_grad(p, dW [, db]): the gradient becomes dW (and db; without db, a zero bias
-- gradient)
function Optim:set_grad(p, dW, db)
    open_optim(self, "set_grad")
    local id = proj_id(self, p, "set_grad")
    local w = to_array(dW, "set_grad: dW")
    local b = db ~= nil and to_array(db, "set_grad: db") or nil
    ok_or_raise(core.optim_set_grad(self, id, w, b))
    return self
end

-- opt:add_grad(p, dW [, db [, scale]]): grad += scale * dW (and db), scale defaulting to 1
function Optim:add_grad(p, dW, db, scale)
    open_optim(self, "add_grad")
    local id = proj_id(self, p, "add_grad")
    local w = to_array(dW, "add_grad: dW")
    local b = db ~= nil and to_array(db, "add_grad: db") or nil
    if scale ~= nil and type(scale) ~= "number" then
        raise("add_grad: scale must be a number, got " .. show(scale))
    end
    ok_or_raise(core.optim_set_grad(self, id, w, b, scale or 1))
    return self
end

-- opt:has(p) -> true when projection p (of the optimiser's model) is one it trains
function Optim:has(p)
    open_optim(self, "has")
    return core.optim_has(self, proj_id(self, p, "has"))
end

-- opt:add_from_sim(sim [, scale]): grad += scale * the accumulated updates of the last run, for
-- every projection with a plasticity rule
function Optim:add_from_sim(sim, scale)
    open_optim(self, "add_from_sim")
    if not core.is_sim(sim) then
        raise("add_from_sim: expected a simulation (from m:compile()), got " .. show(sim))
    end
    if scale ~= nil and type(scale) ~= "number" then
        raise("add_from_sim: scale must be a number, got " .. show(scale))
    end
    local ok, err = core.optim_add_from_sim(self, sim, scale or 1)
    if not ok then raise((tostring(err):gsub("^optimiser: ", ""))) end
    return self
end

-- opt:step(): clips, then p -= lr * direction for every parameter; refuses non-finite values
function Optim:step()
    open_optim(self, "step")
    ok_or_raise(core.optim_step(self))
    return self
end

-- opt:set_lr(lr)
function Optim:set_lr(lr)
    open_optim(self, "set_lr")
    if type(lr) ~= "number" then raise("set_lr: expected a number, got " .. show(lr)) end
    local ok, err = core.optim_set_lr(self, lr)
    if not ok then engine_error("set_lr", err) end
    return self
end

-- opt:norms(p) -> the norms of dW and db (nil without a bias) before clipping, at the last step
function Optim:norms(p)
    open_optim(self, "norms")
    local nw, nb = core.optim_norms(self, proj_id(self, p, "norms"))
    if not nw then raise("norms: " .. nb) end
    if nb == false then nb = nil end
    return nw, nb
end

-- opt:save(prefix) / opt:load(prefix): the optimiser's state as <prefix><projection>.<m|v|mb|vb>.npy
-- and <prefix>steps.npy
function Optim:save(prefix)
    open_optim(self, "save")
    if type(prefix) ~= "string" then raise("save: expected a file prefix, got " .. show(prefix)) end
    ok_or_raise(core.optim_save(self, prefix))
    return self
end

function Optim:load(prefix)
    open_optim(self, "load")
    if type(prefix) ~= "string" then raise("load: expected a file prefix, got " .. show(prefix)) end
    ok_or_raise(core.optim_load(self, prefix))
    return self
end

function Optim:model()
    if not core.is_optim(self) then raise("model: call it with a colon on an optimiser") end
    return core.optim_model(self)
end

-- opt:close(): frees the optimiser now (the garbage collector would later); safe twice
function Optim:close()
    if not core.is_optim(self) then raise("close: call it with a colon on an optimiser") end
    core.optim_close(self)
end

local FIELD = { steps = true, lr = true, kind = true }

local optim_mt = core.metatable("apical.Optim")
optim_mt.__index = function(self, key)
    local method = Optim[key]
    if method then return method end
    if FIELD[key] then
        if key ~= "kind" and core.optim_closed(self) then
            raise(key .. ": the optimiser is closed")
        end
        return core.optim_field(self, key)
    end
    return nil
end

M.Optim = Optim
return M
