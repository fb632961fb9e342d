-- apical/data.lua — datasets: apical.dataset.idx(images, labels [, classes]) and
-- apical.dataset.arrays { inputs =, targets =, labels =, classes = }. The dataset objects and
-- their batch iterator are C (lua/lapi_data.c).
local core = require "apical.core"
local errors = require "apical.errors"
errors.internal(debug.getinfo(1, "S").source)

local M = {}

-- C, so its errors point at the caller's line directly.
M.idx = core.dataset_idx

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

return M
