-- test_robustness.lua — every public function and method called with wrong arguments: each
-- call must either work or raise a string error that points at this file (never a line inside
-- the library, never a crash).
local apical = require "apical"
package.path = (arg[0]:match("^(.*)/") or ".") .. "/?.lua;" .. package.path
local check = require "check"

local src = debug.getinfo(1, "S").short_src

local m = apical.model { batch = 2 }
local x = m:input { name = "x", size = 2 }
local h = m:population { name = "h", size = 2 }
local f = m:block { name = "f", type = apical.lowpass {}, inputs = { input = h } }
local p = m:connect(x, h.soma, { bias = true, plastic = apical.hebb {} })
local m2 = apical.model { batch = 1 }
local sim = apical.model({ batch = 2 }):compile()
local msim = m:compile()
local out = msim:run { solver = "euler", steps = 2, record = { h }, every = 1 }
local a = apical.array { { 1, 2 }, { 3, 4 } }
local ds = apical.dataset.arrays { inputs = { { 1 }, { 2 } }, labels = { 0, 1 } }

local bad = { false, 0, -1, 1e300, 0 / 0, "", "x", "h.soma", {}, { 1, 2 }, { { 1 } },
    { name = 3 }, function() end, io.stdout, a, m2, sim, coroutine.create(function() end) }

local calls, errors_seen = 0, 0
local function try(label, fn, ...)
    calls = calls + 1
    local ok, err = pcall(fn, ...)
    if ok then return end
    errors_seen = errors_seen + 1
    if type(err) == "table" and err.usage then return end -- apical.params' usage errors
    if type(err) ~= "string" then
        error(string.format("%s: raised a %s, not a message", label, type(err)))
    end
    if err:sub(1, #src + 1) ~= src .. ":" then
        error(string.format("%s: the error does not point at %s: %s", label, src, err))
    end
end

-- Methods that write files get no strings or numbers (they would be valid file names: this
-- test must not leave files behind); test_arrays.lua checks unwritable paths.
local writes = { save_npy = true, save_csv = true, save = true }

local function each_method(label, obj, names)
    for _, name in ipairs(names) do
        local method = obj[name]
        check.truthy(method, label .. ":" .. name .. " exists")
        for _, v in ipairs(bad) do
            if writes[name] and (type(v) == "string" or type(v) == "number") then goto next end
            try(label .. ":" .. name .. "(" .. tostring(v) .. ")", function() return method(obj, v, v) end)
            try(label .. "." .. name .. "(" .. tostring(v) .. ")", function() return method(v, v) end)
            ::next::
        end
        try(label .. ":" .. name .. "()", function() return method(obj) end)
    end
end

for _, name in ipairs { "model", "plugin", "neuron", "block", "rule", "activation", "rate",
    "lowpass", "hebb", "array", "zeros", "load_npy", "params", "types", "is_array" } do
    for _, v in ipairs(bad) do
        try("apical." .. name, function() return apical[name](v, v) end)
    end
end
for _, name in ipairs { "zeros", "constant", "normal", "uniform", "xavier_normal", "identity" } do
    for _, v in ipairs(bad) do try("apical.init." .. name, function() return apical.init[name](v) end) end
end
for _, v in ipairs(bad) do
    try("apical.init()", function() return apical.init(v, v) end)
    try("dataset.idx", function() return apical.dataset.idx(v, v, v) end)
    try("dataset.arrays", function() return apical.dataset.arrays(v) end)
    try("dataset.arrays inputs", function() return apical.dataset.arrays { inputs = v, labels = v } end)
    try("connect", function() return m2:connect(v, v, v) end)
    try("population", function() return m2:population { name = "q", size = 1, neuron = v } end)
    try("population act", function() return m2:population { name = "q", size = 1, activation = v } end)
    try("population sv", function() return m2:population { name = "q", size = 1, start_values = v } end)
    try("block", function() return m2:block { name = "q", type = v, inputs = v } end)
    try("run", function() return msim:run { solver = v } end)
    try("run times", function() return msim:run { steps = 1, record = { h }, times = v } end)
    try("run noise", function() return msim:run { solver = "euler-maruyama", steps = 1, noise = v } end)
    try("run order", function() return msim:run { steps = 1, ordered = true, order = v } end)
    try("run seed", function() return msim:run { steps = 1, seed = v, every = v } end)
    try("array index", function() return a[v] end)
    try("array newindex", function() a[v] = v end)
    try("batches", function() return ds:batches(v) end)
    try("batches batch", function() return ds:batches { batch = v } end)
end
each_method("m", m, { "input", "population", "block", "connect", "projection", "get",
    "signal", "objects", "compile" })
each_method("sim", msim, { "set_input", "run", "read", "write_state", "state_size", "model" })
each_method("p", p, { "weights", "bias", "set_weights", "set_bias", "load", "save" })
each_method("out", out, { "get", "update", "save_csv" })
each_method("a", a, { "at", "set", "totable", "reshape", "copy", "fill", "sum", "max_abs",
    "save_npy", "save_csv" })
each_method("ds", ds, { "size", "input_dim", "target_dim", "split", "subset", "sample", "batches" })
each_method("f", f, { "signal" })

-- nothing above changed what the good objects do
local o = msim:run { solver = "euler", steps = 2, record = { h }, every = 1 }
check.shape(o:get(h), { 3, 2, 2 })
check.truthy(errors_seen > 500, "most calls fail")
print(string.format("test_robustness: %d calls, %d errors, all at this file's lines", calls,
    errors_seen))
check.done("test_robustness")
