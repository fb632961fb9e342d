-- apical/model.lua — apical.model { batch = }: building a model graph (inputs, populations,
-- blocks, projections) and the handles the building calls return (signals, populations,
-- blocks, projections with their weights).
--
-- Every building call passes the user's position to the engine, which keeps it as the
-- object's origin: compile errors quote the line that declared the object at fault.
local core = require "apical.core"
local errors = require "apical.errors"
local types = require "apical.types"
errors.internal(debug.getinfo(1, "S").source)

local M = {}
local show, raise = errors.show, errors.raise

-- ---- handles --------------------------------------------------------------------------------

local signal_mt = {
    __name = "apical.Signal",
    __tostring = function(s)
        return string.format("apical.Signal %s (%d)", s.name, s.size)
    end,
}

local function signal(name, size, kind)
    return setmetatable({ name = name, size = size, kind = kind }, signal_mt)
end

-- A handle's signal by part name: h1:signal("basal"), f:signal("output").
local function part_signal(self, part)
    if type(self) ~= "table" or type(rawget(self, "_parts")) ~= "table" then
        raise("signal: call it with a colon on a population or block handle (h:signal(\"soma\"))")
    end
    local sig = rawget(self, "_parts")[part]
    if not sig then
        local parts = {}
        for k in pairs(rawget(self, "_parts")) do parts[#parts + 1] = k end
        table.sort(parts)
        raise(string.format("%s %q has no part %s (parts: %s)", self.kind, self.name, show(part),
            table.concat(parts, ", ")))
    end
    return sig
end

local pop_mt = {
    __name = "apical.Population",
    __index = { signal = part_signal },
    __tostring = function(p)
        return string.format("apical.Population %s (%d %s neurons, %s)", p.name, p.size,
            p.neuron, p.activation)
    end,
}

local block_mt = {
    __name = "apical.Block",
    __index = { signal = part_signal },
    __tostring = function(b)
        return string.format("apical.Block %s (%s)", b.name, b.type)
    end,
}

-- Fields a part (compartment, port) must not shadow.
local RESERVED = { name = true, size = true, kind = true, neuron = true, activation = true,
    compartments = true, type = true, outputs = true, states = true, inputs = true,
    signal = true, _parts = true, rate = true }

local Projection = {}
local proj_mt = {
    __name = "apical.Projection",
    __index = Projection,
    __tostring = function(p)
        return string.format("apical.Projection %s (%s -> %s, %d x %d)", p.name, p.source,
            p.target, p.rows, p.cols)
    end,
}
local proj_private = setmetatable({}, { __mode = "k" }) -- handle -> { model, id }

-- ---- the model object -----------------------------------------------------------------------

local Model = {}

local function open_model(self, method)
    if not core.is_model(self) then
        raise(string.format("%s: call it with a colon on a model (m:%s ...), got %s as self",
            method, method, show(self)))
    end
    if core.model_closed(self) then raise(method .. ": the model is closed") end
    return core.model_data(self)
end

local function building(self, method)
    local d = open_model(self, method)
    if d.compiled then
        raise(method .. ": the model is compiled, its structure is fixed (weights may still " ..
            "change)")
    end
    return d
end

local function opts_table(opts, what, example)
    if type(opts) ~= "table" then
        raise(string.format("%s: expected a table like %s, got %s", what, example, show(opts)))
    end
end

local function label(kind, name)
    if type(name) == "string" then return string.format("%s %q", kind, name) end
    return kind
end

-- apical.model { batch = 1 }
function M.new(opts)
    if opts == nil then opts = {} end
    opts_table(opts, "apical.model", "{ batch = 4 }")
    errors.fields(opts, { "batch" }, "apical.model")
    local batch = errors.check(opts.batch, "size", "apical.model", "batch") or 1
    local m, err = core.model_new(batch)
    if not m then raise(err) end
    local d = core.model_data(m)
    d.objects = {}      -- name -> handle (inputs, populations, blocks)
    d.projections = {}  -- in declaration order
    d.proj_by_name = {}
    d.compiled = false
    return m
end

-- m:input { name =, size = } -> signal handle
function Model:input(opts)
    local d = building(self, "input")
    opts_table(opts, "input", "{ name = \"x\", size = 3 }")
    local what = label("input", opts.name)
    errors.fields(opts, { "name", "size" }, what)
    local name = errors.check(opts.name, "name", what, "name", true)
    local size = errors.check(opts.size, "size", what, "size", true)
    local ok, err = core.model_add_input(self, errors.where(), name, size)
    if not ok then raise(err) end
    local h = signal(name, size, "input")
    d.objects[name] = h
    return h
end

local POP_FIELDS = { "name", "size", "neuron", "params", "activation", "start", "start_values" }

-- m:population { name =, size =, neuron =, params =, activation =, start =, start_values = }
function Model:population(opts)
    local d = building(self, "population")
    opts_table(opts, "population", "{ name = \"h1\", size = 5 }")
    local what = label("population", opts.name)
    errors.fields(opts, POP_FIELDS, what)
    local name = errors.check(opts.name, "name", what, "name", true)
    local size = errors.check(opts.size, "size", what, "size", true)
    local spec
    if opts.neuron == nil or type(opts.neuron) == "string" then
        spec = types.check({ kind = "neuron", type = opts.neuron or "rate", params = opts.params },
            "neuron", what)
    else
        if opts.params ~= nil then
            raise(what .. ": give the parameters in the neuron spec " ..
                "(neuron = apical.rate { tau = 1 }), not in params")
        end
        spec = types.check(opts.neuron, "neuron", what .. ": field neuron")
    end
    local info = types.info("neuron", spec.type, what)
    local act = opts.activation
    if act == nil then
        act = "linear"
    elseif type(act) == "table" then
        act = types.check(act, "activation", what .. ": field activation").type
    elseif type(act) ~= "string" then
        raise(string.format("%s: field activation must be an activation name like \"tanh\", " ..
            "got %s", what, show(act)))
    end
    types.info("activation", act, what)
    local start = errors.choice(opts.start, { "zero", "settled" }, what, "start")
    local start_values = {}
    if opts.start_values ~= nil then
        errors.check(opts.start_values, "table", what, "start_values")
        if start == "settled" then
            raise(what .. ": start_values apply to start = \"zero\" only (a settled start " ..
                "begins every dynamic compartment at its drive)")
        end
        local comps = {}
        for _, c in ipairs(info.compartments) do comps[c.name] = c end
        for comp, v in pairs(opts.start_values) do
            local c = comps[comp]
            if not c then
                local names = {}
                for _, x in ipairs(info.compartments) do names[#names + 1] = x.name end
                raise(string.format("%s: start_values: %s is not a compartment of %s " ..
                    "(compartments: %s)", what, show(comp), spec.type, table.concat(names, ", ")))
            end
            if type(v) ~= "number" or v ~= v or v == math.huge or v == -math.huge then
                raise(string.format("%s: start_values.%s must be a finite number, got %s",
                    what, comp, show(v)))
            end
            local tau = 0
            if c.tau_param then
                tau = spec.params[c.tau_param]
                if tau == nil then
                    for _, p in ipairs(info.params) do
                        if p.name == c.tau_param then tau = p.default end
                    end
                end
            end
            if not (tau and tau > 0) then
                raise(string.format("%s: start_values.%s: the compartment is instantaneous " ..
                    "(time constant 0); only dynamic compartments have start values", what,
                    comp))
            end
            start_values[#start_values + 1] = { comp, v }
        end
        table.sort(start_values, function(a, b) return a[1] < b[1] end)
    end
    local where = errors.where()
    local ok, err = core.model_add_population(self, where, name, size, spec.type, act,
        spec.params)
    if not ok then raise(err) end
    if start then
        ok, err = core.model_set_start(self, where, name, start)
        if not ok then raise(err) end
    end
    for _, sv in ipairs(start_values) do
        ok, err = core.model_set_start_value(self, where, name .. "." .. sv[1], sv[2])
        if not ok then raise(err) end
    end
    local h = { name = name, size = size, kind = "population", neuron = spec.type,
        activation = act, compartments = {}, _parts = {} }
    h.rate = signal(name .. ".rate", size, "rate")
    h._parts.rate = h.rate
    for _, c in ipairs(info.compartments) do
        local sig = signal(name .. "." .. c.name, size, "compartment")
        h.compartments[#h.compartments + 1] = c.name
        h._parts[c.name] = sig
        if not RESERVED[c.name] then h[c.name] = sig end
    end
    setmetatable(h, pop_mt)
    d.objects[name] = h
    return h
end

-- m:block { name =, type = spec or name, params =, inputs = { port = signal } }
function Model:block(opts)
    local d = building(self, "block")
    opts_table(opts, "block", "{ name = \"f\", type = apical.lowpass { tau = 2 }, " ..
        "inputs = { input = h1 } }")
    local what = label("block", opts.name)
    errors.fields(opts, { "name", "type", "params", "inputs" }, what)
    local name = errors.check(opts.name, "name", what, "name", true)
    if opts.type == nil then
        raise(what .. ": field type is required (a block spec like apical.lowpass { tau = 2 }, " ..
            "or a block type name)")
    end
    local spec
    if type(opts.type) == "string" then
        spec = types.check({ kind = "block", type = opts.type, params = opts.params }, "block",
            what)
    else
        if opts.params ~= nil then
            raise(what .. ": give the parameters in the block spec, not in params")
        end
        spec = types.check(opts.type, "block", what .. ": field type")
    end
    local info = types.info("block", spec.type, what)
    local inputs = opts.inputs
    if inputs == nil then inputs = {} end
    errors.check(inputs, "table", what, "inputs")
    local port_set = {}
    for _, p in ipairs(info.inputs) do port_set[p] = true end
    local ports = {}
    for port, sig in pairs(inputs) do
        if type(port) ~= "string" or not port_set[port] then
            raise(string.format("%s: block type %s has no input %s (inputs: %s)", what, spec.type,
                show(port), #info.inputs > 0 and table.concat(info.inputs, ", ") or "none"))
        end
        ports[port] = errors.signal(sig, what .. ": input " .. port)
    end
    for _, p in ipairs(info.inputs) do
        if ports[p] == nil then
            raise(string.format("%s: input %s is not connected (inputs = { %s = a signal })",
                what, p, p))
        end
    end
    local ok, err = core.model_add_block(self, errors.where(), name, spec.type, spec.params,
        ports)
    if not ok then raise(err) end
    local h = { name = name, kind = "block", type = spec.type, outputs = {}, states = {},
        _parts = {} }
    local function add(list, port)
        local n, e = core.model_signal_size(self, name .. "." .. port)
        if not n then raise(e) end
        local sig = signal(name .. "." .. port, n, list == h.outputs and "output" or "state")
        list[#list + 1] = port
        h._parts[port] = sig
        if not RESERVED[port] then h[port] = sig end
    end
    for _, p in ipairs(info.outputs) do add(h.outputs, p) end
    for _, p in ipairs(info.states) do add(h.states, p) end
    if #info.outputs == 1 then h.size = h._parts[info.outputs[1]].size end
    setmetatable(h, block_mt)
    d.objects[name] = h
    return h
end

local function make_projection(self, d, id)
    local info = core.model_projection_info(self, id)
    local h = setmetatable({ name = info.name, source = info.source, target = info.target,
        kind = info.kind, rows = info.rows, cols = info.cols, has_bias = info.bias,
        plastic = info.plastic, rule = info.rule }, proj_mt)
    proj_private[h] = { model = self, id = id }
    d.projections[#d.projections + 1] = h
    d.proj_by_name[info.name] = h
    return h
end

-- m:connect(source, target, { name =, kind =, bias =, init =, plastic =, aux = }) -> projection
-- aux (with plastic = a rule): the rule's auxiliary signal (m:set_rule_aux)
function Model:connect(source, target, opts)
    local d = building(self, "connect")
    local src = errors.signal(source, "connect: the source (argument 1)")
    local tgt = errors.signal(target, "connect: the target (argument 2)")
    local what = string.format("connect %s -> %s", src, tgt)
    if opts == nil then opts = {} end
    opts_table(opts, what, "{ init = apical.init.normal { std = 0.1 }, bias = true }")
    errors.fields(opts, { "name", "kind", "bias", "init", "plastic", "aux" }, what)
    local spec = {}
    spec.name = errors.check(opts.name, "string", what, "name")
    spec.kind = errors.choice(opts.kind, { "dense", "one_to_one" }, what, "kind", "dense")
    spec.bias = errors.check(opts.bias, "boolean", what, "bias") or false
    if opts.init ~= nil then
        local init
        if type(opts.init) == "string" then
            init = types.check({ kind = "init", type = opts.init }, "init", what .. ": field init")
        else
            init = types.check(opts.init, "init", what .. ": field init")
        end
        spec.init, spec.init_params, spec.seed = init.type, init.params, init.seed
    end
    local rule
    local plastic = opts.plastic
    if type(plastic) == "table" then
        rule = types.check(plastic, "rule", what .. ": field plastic")
        if spec.kind ~= "dense" then
            raise(what .. ": a plasticity rule needs a dense projection")
        end
        spec.plastic = true
    elseif plastic == nil or type(plastic) == "boolean" then
        spec.plastic = plastic or false
    else
        raise(string.format("%s: field plastic must be true, false or a rule spec like " ..
            "apical.hebb { eta = 0.1 }, got %s", what, show(plastic)))
    end
    local aux
    if opts.aux ~= nil then
        if not rule then
            raise(what .. ": field aux names a plasticity rule's auxiliary signal; it needs " ..
                "plastic = a rule spec")
        end
        aux = errors.signal(opts.aux, what .. ": field aux")
    end
    local where = errors.where()
    local id, err = core.model_connect(self, where, src, tgt, spec)
    if not id then raise(err) end
    if rule then
        local ok, e = core.model_add_rule(self, where, id, rule.type, rule.params)
        if not ok then raise(e) end
    end
    if aux then
        local ok, e = core.model_set_rule_aux(self, where, id, aux)
        if not ok then raise(e) end
    end
    local h = make_projection(self, d, id)
    h.aux = aux
    return h
end

-- m:add_rule(projection, rule spec [, { aux = signal }]) -> projection: attaches a plasticity
-- rule to a dense projection made earlier (what connect's plastic = rule does), with an
-- optional auxiliary signal (m:set_rule_aux). The projection keeps its plastic flag (made with
-- plastic = true, an optimiser may train it; without, the rule only accumulates).
function Model:add_rule(proj, spec, opts)
    local d = building(self, "add_rule")
    local h = proj
    if type(proj) == "string" then h = d.proj_by_name[proj] end
    local pp = h ~= nil and proj_private[h] or nil
    if not pp or pp.model ~= self then
        raise("add_rule: argument 1 must be a projection of this model (a handle or a name), " ..
            "got " .. show(proj))
    end
    local what = string.format("add_rule %s", h.name)
    local rule = types.check(spec, "rule", what .. ": argument 2")
    if h.kind ~= "dense" then raise(what .. ": a plasticity rule needs a dense projection") end
    if opts == nil then opts = {} end
    opts_table(opts, what, "{ aux = \"lp.output\" }")
    errors.fields(opts, { "aux" }, what)
    local aux
    if opts.aux ~= nil then aux = errors.signal(opts.aux, what .. ": field aux") end
    local where = errors.where()
    local ok, e = core.model_add_rule(self, where, pp.id, rule.type, rule.params)
    if not ok then raise(e) end
    if aux then
        ok, e = core.model_set_rule_aux(self, where, pp.id, aux)
        if not ok then raise(e) end
    end
    h.rule, h.aux = rule.type, aux
    return h
end

-- m:set_rule_aux(projection, signal) -> projection: gives the projection's plasticity rule an
-- auxiliary signal (any signal name or handle; nil removes it), resolved at m:compile(), so it
-- may be declared later. The rule reads it as its ctx->aux (docs/plugin-api.md).
function Model:set_rule_aux(proj, sig)
    local d = building(self, "set_rule_aux")
    local h = proj
    if type(proj) == "string" then h = d.proj_by_name[proj] end
    local pp = h ~= nil and proj_private[h] or nil
    if not pp or pp.model ~= self then
        raise("set_rule_aux: argument 1 must be a projection of this model (a handle or a " ..
            "name), got " .. show(proj))
    end
    local name
    if sig ~= nil then name = errors.signal(sig, "set_rule_aux: the signal (argument 2)") end
    local ok, e = core.model_set_rule_aux(self, errors.where(), pp.id, name)
    if not ok then raise(e) end
    h.aux = name
    return h
end

-- m:compile() -> simulation
function Model:compile()
    local d = open_model(self, "compile")
    local s, err = core.compile(self)
    if not s then raise(err) end
    d.compiled = true
    return s
end

-- m:projection(name) -> the projection handle of that name
function Model:projection(name)
    local d = open_model(self, "projection")
    if type(name) ~= "string" then
        raise("projection: expected a projection name, got " .. show(name))
    end
    local h = d.proj_by_name[name]
    if not h then
        local names = {}
        for _, p in ipairs(d.projections) do names[#names + 1] = p.name end
        raise(string.format("no projection %q (projections: %s)", name,
            #names > 0 and table.concat(names, ", ") or "none"))
    end
    return h
end

-- m:projections() -> list of projection handles in declaration order
function Model:projections()
    local d = open_model(self, "projections")
    return table.move(d.projections, 1, #d.projections, 1, {})
end

-- m:get(name) -> the handle of an input, population or block
function Model:get(name)
    local d = open_model(self, "get")
    local h = d.objects[name]
    if not h then
        local names = {}
        for _, o in ipairs(core.model_objects(self)) do names[#names + 1] = o.name end
        raise(string.format("the model has no object %s (objects: %s)", show(name),
            #names > 0 and table.concat(names, ", ") or "none"))
    end
    return h
end

-- m:signal(name) -> a signal handle for any signal name ("h1.basal", "f.output")
function Model:signal(name)
    open_model(self, "signal")
    local sname = errors.signal(name, "signal: the argument")
    local n, err = core.model_signal_size(self, sname)
    if not n then raise(err) end
    return signal(sname, n, "signal")
end

-- m:objects() -> list of { kind, name, size } in declaration order
function Model:objects()
    open_model(self, "objects")
    return core.model_objects(self)
end

-- m:population_info(name) -> { name, size, neuron, activation, params = { name = value },
-- start = "zero" | "settled" }: what a population is, its parameters with defaults filled in
function Model:population_info(pop)
    open_model(self, "population_info")
    local name = pop
    if type(pop) == "table" and getmetatable(pop) == pop_mt then name = pop.name end
    if type(name) ~= "string" then
        raise("population_info: expected a population (a handle or its name), got " .. show(pop))
    end
    local info, err = core.model_population_info(self, name)
    if not info then raise("population_info: " .. err) end
    return info
end

-- m:close(): frees the model now (or, while a simulation uses it, when the last one goes).
function Model:close()
    if not core.is_model(self) then raise("close: call it with a colon on a model (m:close())") end
    core.model_close(self)
end

local model_mt = core.metatable("apical.Model")
model_mt.__index = function(self, key)
    local method = Model[key]
    if method then return method end
    if key == "batch" then
        if core.model_closed(self) then raise("batch: the model is closed") end
        return core.model_batch(self)
    end
    return nil
end

-- ---- projections ----------------------------------------------------------------------------

local function proj_of(self, method)
    local p = type(self) == "table" and proj_private[self]
    if not p then
        raise(string.format("%s: call it with a colon on a projection (p:%s ...)", method,
            method))
    end
    if core.model_closed(p.model) then raise(method .. ": the model is closed") end
    return p.model, p.id
end

-- p:weights() -> a copy of the weights (rows x cols: target size x source size)
function Projection:weights()
    local m, id = proj_of(self, "weights")
    return (core.model_weights(m, id))
end

-- p:bias() -> a copy of the bias {rows}, or nil without one
function Projection:bias()
    local m, id = proj_of(self, "bias")
    local b = core.model_bias(m, id)
    if b == false then return nil end
    return b
end

local function to_array(v, what)
    local a, err = core.try_array(v)
    if not a then raise(what .. ": " .. err) end
    return a
end

function Projection:set_weights(v)
    local m, id = proj_of(self, "set_weights")
    local a = to_array(v, string.format("projection %q: set_weights", self.name))
    local ok, err = core.model_set_weights(m, id, a)
    if not ok then raise(err) end
    return self
end

function Projection:set_bias(v)
    local m, id = proj_of(self, "set_bias")
    local a = to_array(v, string.format("projection %q: set_bias", self.name))
    local ok, err = core.model_set_bias(m, id, a)
    if not ok then raise(err) end
    return self
end

-- p:load(weights.npy [, bias.npy]): checks both files before changing anything.
function Projection:load(path, bias_path)
    local m, id = proj_of(self, "load")
    local what = string.format("projection %q: load", self.name)
    if type(path) ~= "string" then raise(what .. ": expected a file name, got " .. show(path)) end
    if bias_path ~= nil and type(bias_path) ~= "string" then
        raise(what .. ": the bias file name must be a string, got " .. show(bias_path))
    end
    local w, err = core.try_load_npy(path)
    if not w then raise(what .. ": " .. err) end
    local ok
    ok, err = core.model_set_weights(m, id, w, "file " .. path, true)
    if not ok then raise(err) end
    local b
    if bias_path then
        b, err = core.try_load_npy(bias_path)
        if not b then raise(what .. ": " .. err) end
        ok, err = core.model_set_bias(m, id, b, "file " .. bias_path, true)
        if not ok then raise(err) end
    end
    core.model_set_weights(m, id, w)
    if b then core.model_set_bias(m, id, b) end
    return self
end

-- p:save(weights.npy [, bias.npy])
function Projection:save(path, bias_path)
    local m, id = proj_of(self, "save")
    local what = string.format("projection %q: save", self.name)
    if type(path) ~= "string" then raise(what .. ": expected a file name, got " .. show(path)) end
    local b
    if bias_path ~= nil then
        if type(bias_path) ~= "string" then
            raise(what .. ": the bias file name must be a string, got " .. show(bias_path))
        end
        b = core.model_bias(m, id)
        if not b then raise(what .. ": the projection has no bias") end
    end
    local w = core.model_weights(m, id)
    errors.call(w.save_npy, w, path)
    if b then errors.call(b.save_npy, b, bias_path) end
    return self
end

-- Used by apical/sim.lua: the index of a projection given as a handle or a name.
function M.projection_id(m, p, what)
    if type(p) == "table" and proj_private[p] then
        if proj_private[p].model ~= m then raise(what .. ": the projection belongs to another model") end
        return proj_private[p].id, p.name
    end
    if type(p) == "string" then
        local id, err = core.model_find_projection(m, p)
        if not id then raise(what .. ": " .. err) end
        return id, p
    end
    raise(what .. ": expected a projection (a handle from m:connect, or its name), got " ..
        show(p))
end

M.Model = Model
M.signal = signal
return M
