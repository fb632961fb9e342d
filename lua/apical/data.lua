-- apical/data.lua — datasets: apical.dataset.idx(images, labels [, classes [, opts]]) and
-- apical.dataset.arrays { inputs =, targets =, labels =, classes = }. The dataset objects and
-- their batch iterator are C (lua/lapi_data.c).
local core = require "apical.core"
local errors = require "apical.errors"
errors.internal(debug.getinfo(1, "S").source)

local M = {}

-- apical.dataset.idx(images, labels [, classes [, { standardize = { mean, std } }]]): with
-- standardize, x' = (x - mean) / std as ds:standardize(mean, std) gives it (the same bits),
-- applied to the loaded array itself instead of a copy (MNIST's training images: 376 MB).
function M.idx(images, labels, classes, opts)
    local what = "apical.dataset.idx"
    local mean, std
    if opts ~= nil then
        if type(opts) ~= "table" then
            errors.raise(what .. ": options: expected a table { standardize = { mean, std } }, got " ..
                errors.show(opts))
        end
        errors.fields(opts, { "standardize" }, what)
        local z = opts.standardize
        if z ~= nil then
            if type(z) ~= "table" or #z ~= 2 or type(z[1]) ~= "number" or type(z[2]) ~= "number" then
                errors.raise(what .. ": standardize = " .. errors.show(z) .. ": expected { mean, std }")
            end
            mean, std = z[1], z[2]
        end
    end
    -- (looked up at the call: the sandbox wraps core.dataset_idx to check the paths)
    local ok, ds = pcall(core.dataset_idx, images, labels, classes, mean, std)
    if not ok then error(errors.relocate(ds), 0) end
    return ds
end

-- apical.dataset.arrays { inputs = X (n x d), targets = Y (n x k), labels = {...}, classes = k }
function M.arrays(opts)
    local what = "apical.dataset.arrays"
    if type(opts) ~= "table" then
        errors.raise(what .. ": expected a table { inputs = X, targets = Y } or " ..
            "{ inputs = X, labels = {...} }, got " .. errors.show(opts))
    end
    errors.fields(opts, { "inputs", "targets", "labels", "classes" }, what)
    if opts.inputs == nil then errors.raise(what .. ": field inputs is required (n x d values)") end
    if opts.targets == nil and opts.labels == nil then
        errors.raise(what .. ": give targets (n x k values) or labels (n integers from 0)")
    end
    local X, err = core.try_array(opts.inputs)
    if not X then errors.raise(what .. ": inputs: " .. err) end
    local Y
    if opts.targets ~= nil then
        Y, err = core.try_array(opts.targets)
        if not Y then errors.raise(what .. ": targets: " .. err) end
    end
    if opts.labels ~= nil then errors.check(opts.labels, "table", what, "labels") end
    local classes = errors.check(opts.classes, "size", what, "classes")
    local ds
    ds, err = core.dataset_arrays(X, Y, opts.labels, classes)
    if not ds then errors.raise(err) end
    return ds
end

-- apical.dataset.csv(path, { targets = { "y1", ... } } or { label = "class" [, classes = k] }
-- [, inputs = { "x1", ... }]): a dataset from a CSV file with a header of column names, one
-- sample per line, numbers only (read as data, nothing evaluated). Targets are the named
-- columns (regression) or one label column of integers from 0 (classification); the inputs are
-- the named columns, by default every other column, in file order.
function M.csv(path, opts)
    local what = "apical.dataset.csv"
    errors.check(path, "string", what, "path", true)
    opts = opts or {}
    if type(opts) ~= "table" then errors.raise(what .. ": options must be a table, got " .. errors.show(opts)) end
    errors.fields(opts, { "inputs", "targets", "label", "classes" }, what)
    if (opts.targets == nil) == (opts.label == nil) then
        errors.raise(what .. ": give targets = { column names } (regression) or label = \"column\" " ..
            "(classification), one of them")
    end
    local f, ferr = io.open(path, "r")
    if not f then errors.raise(string.format("%s: cannot read %s: %s", what, path, tostring(ferr))) end
    local header = f:read("l")
    if not header then
        f:close()
        errors.raise(string.format("%s: %s is empty (it needs a header of column names)", what, path))
    end
    local names, index = {}, {}
    for name in (header:gsub("\r$", "") .. ","):gmatch("([^,]*),") do
        name = name:match("^%s*(.-)%s*$")
        if index[name] then
            f:close()
            errors.raise(string.format("%s: %s:1: column %q appears twice", what, path, name))
        end
        names[#names + 1] = name
        index[name] = #names
    end
    local function col(name, field)
        local k = index[name]
        if not k then
            f:close()
            errors.raise(string.format("%s: %s %s: %s has no column %s (columns: %s)", what, field,
                errors.show(name), path, errors.show(name), table.concat(names, ", ")))
        end
        return k
    end
    local tcols, used = {}, {}
    if opts.label ~= nil then
        tcols[1] = col(opts.label, "label")
    else
        errors.check(opts.targets, "table", what, "targets")
        for i, n in ipairs(opts.targets) do tcols[i] = col(n, "targets") end
    end
    for _, k in ipairs(tcols) do used[k] = true end
    local icols = {}
    if opts.inputs ~= nil then
        errors.check(opts.inputs, "table", what, "inputs")
        for i, n in ipairs(opts.inputs) do icols[i] = col(n, "inputs") end
    else
        for k = 1, #names do if not used[k] then icols[#icols + 1] = k end end
    end
    local X, Y, labels = {}, {}, {}
    local line = 1
    for text in f:lines() do
        line = line + 1
        text = text:gsub("\r$", "")
        if text ~= "" then
            local v = {}
            for field in (text .. ","):gmatch("([^,]*),") do
                local x = tonumber(field)
                if x == nil then
                    f:close()
                    errors.raise(string.format("%s: %s:%d: column %s is %q, not a number", what, path,
                        line, names[#v + 1] or tostring(#v + 1), field))
                end
                v[#v + 1] = x
            end
            if #v ~= #names then
                f:close()
                errors.raise(string.format("%s: %s:%d: %d values for %d columns", what, path, line,
                    #v, #names))
            end
            local row = {}
            for i, k in ipairs(icols) do row[i] = v[k] end
            X[#X + 1] = row
            if opts.label ~= nil then
                labels[#labels + 1] = v[tcols[1]]
            else
                local t = {}
                for i, k in ipairs(tcols) do t[i] = v[k] end
                Y[#Y + 1] = t
            end
        end
    end
    f:close()
    if #X == 0 then errors.raise(string.format("%s: %s has no samples", what, path)) end
    if opts.label ~= nil then
        return M.arrays { inputs = X, labels = labels, classes = opts.classes }
    end
    return M.arrays { inputs = X, targets = Y }
end

return M
