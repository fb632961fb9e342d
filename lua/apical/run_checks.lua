-- apical/run_checks.lua — the options of sim:run that the chosen solver does not use, and those
-- that contradict each other, refused with the option named and why (nothing a user gives is
-- silently ignored). Table-driven: an option that only some solvers read is one line of
-- `used_by`; every other option of sim:run is read by every solver.
local errors = require "apical.errors"
errors.internal(debug.getinfo(1, "S").source)

local M = {}

local FIXED = { euler = true, rk4 = true, ["euler-maruyama"] = true }
local EULER = { euler = true, ["euler-maruyama"] = true }
local CVODE = { ["cvode-bdf"] = true, ["cvode-adams"] = true }
M.kinds = { [FIXED] = "fixed-step solvers (euler, rk4, euler-maruyama)",
  [EULER] = "euler and euler-maruyama", [CVODE] = "CVODE (cvode-bdf, cvode-adams)" }

-- option -> the solvers that read it
M.used_by = {
  dt = FIXED, steps = FIXED, accumulation = FIXED,
  ordered = EULER, order = EULER, previous = EULER,
  noise = { ["euler-maruyama"] = true }, seed = { ["euler-maruyama"] = true },
  rtol = CVODE, atol = CVODE, max_step = CVODE, init_step = CVODE, max_order = CVODE,
  linear_solver = CVODE, preconditioner = CVODE, quad_errcon = CVODE,
  across_ranks = CVODE,
}

local DEFAULT_SOLVER = "euler" -- ap_run_opts_default

-- Raises (at the user's line) for an option `opts` gives that its solver does not use, and for
-- contradictory ones. An unknown solver is left to the engine, which names the known ones.
function M.check(opts, what)
  local solver = opts.solver or DEFAULT_SOLVER
  if type(solver) ~= "string" or not (FIXED[solver] or CVODE[solver]) then return end
  local names = errors.sorted_keys(M.used_by)
  for _, k in ipairs(names) do
    local set = M.used_by[k]
    if opts[k] ~= nil and not set[solver] then
      local kind = M.kinds[set] or ("solver " .. table.concat(errors.sorted_keys(set), ", "))
      errors.raise(string.format("%s: option %s = %s is not used by solver %s (only by %s)%s", what, k,
        errors.show(opts[k]), solver, kind, opts.solver and "" or " (no solver given: euler)"))
    end
  end
  if opts.steps ~= nil and opts.t_end ~= nil then
    errors.raise(string.format("%s: steps = %s and t_end = %s both given: give t_end (with dt) or " ..
      "steps, not both", what, errors.show(opts.steps), errors.show(opts.t_end)))
  end
  if (opts.order ~= nil or opts.previous ~= nil) and opts.ordered ~= true then
    errors.raise(string.format("%s: option %s needs ordered = true (the declared-order Euler scheme)",
      what, opts.order ~= nil and "order" or "previous"))
  end
end

return M
