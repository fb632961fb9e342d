-- apical.plugins.dfc.gradients — dfc.gradients(kernel, args): an update kernel's gradients
-- returned directly instead of through an optimiser the caller builds. The kernel (dfc.ssa,
-- dfc.bp, dfc.dfa, dfc.mn_update, dfc.gn_update, dfc.feedback_grad, or its name) runs into a
-- fresh optimiser over `projections` (default: every plastic projection of the model), whose
-- buffers are then copied out.
local apical = require "apical"

local M = {}

-- The update kernels, which take an `optim` argument.
M.kernels = { "ssa", "bp", "dfa", "mn_update", "gn_update", "feedback_grad" }

-- Returns { [name] = { dW = array, db = array or nil }, ... } and the list of names in the
-- optimiser's order. args are the kernel's, without optim; args.projections (optional, handles
-- or names) picks the projections whose gradients are returned.
function M.gradients(dfc, kernel, args)
  local name = kernel
  if type(kernel) == "string" then
    local ok = false
    for _, k in ipairs(M.kernels) do ok = ok or k == kernel end
    if not ok then
      error(string.format("dfc.gradients: kernel %q is not an update kernel (%s)", kernel,
        table.concat(M.kernels, ", ")), 0)
    end
    kernel = dfc[kernel]
  elseif type(kernel) ~= "function" then
    error("dfc.gradients: the kernel must be a name (" .. table.concat(M.kernels, ", ") ..
      ") or a function, got " .. type(kernel), 0)
  end
  if type(args) ~= "table" then error("dfc.gradients: expected the kernel's arguments as a table", 0) end
  if args.optim ~= nil then
    error("dfc.gradients: optim is dfc.gradients' own (it returns the gradients); call dfc." ..
      tostring(name) .. " itself to add them to an optimiser", 0)
  end
  local model = args.model or (args.sim and args.sim:model())
  if model == nil then error("dfc.gradients: model is required", 0) end
  local a = {}
  for k, v in pairs(args) do
    if k ~= "projections" then a[k] = v end
  end
  local opt = apical.optim.sgd { model = model, projections = args.projections, lr = 1 }
  opt:zero()
  a.optim = opt
  kernel(a)
  local out, names = {}, {}
  local list = {}
  for i, p in ipairs(args.projections or {}) do list[i] = p end
  if #list == 0 then
    for _, p in ipairs(model:projections()) do
      if opt:has(p) then list[#list + 1] = p end
    end
  end
  for _, p in ipairs(list) do
    local pname = type(p) == "string" and p or p.name
    local dW, db = opt:grad(p)
    out[pname] = { dW = dW, db = db }
    names[#names + 1] = pname
  end
  opt:close()
  return out, names
end

function M.install(dfc)
  function dfc.gradients(kernel, args) return M.gradients(dfc, kernel, args) end
end

return M
