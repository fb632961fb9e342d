-- bench_stiff.lua — the stiff DFC circuit of issue 11 (student-teacher 15-10-10-5, tau_v = 1e-4,
-- tau_u = 1, T = 5, one minibatch): every cvode-bdf linear solver and preconditioner at each
-- rtol, the weight update's relative error against a tight dense reference, steps, right-hand-
-- side evaluations (the dense solver's count as the baseline) and wall time (median of reps).
-- A choice is default, dense, dfc.layered (its exact solve) or a Krylov preconditioner (none,
-- diagonal, block, krylov:dfc.layered).
--   build/bin/apical run bench/bench_stiff.lua [--set batch=128] [--set rtols=1e-6,1e-8]
--     [--set tau_v=0.2] [--set ref_rtol=1e-11] [--set reps=3]
local apical = require "apical"
local dfc = apical.plugin "dfc"
local p = apical.params { batch = 128, tau_v = 1e-4, rtols = "1e-6,1e-8", ref_rtol = 1e-11, reps = 3,
  choices = "default,none,diagonal,block,dense" }

local t = dfc.trainer { task = "student_teacher", hidden = { 10, 10 }, batch = p.batch, method = "dfc",
  solver = "cvode-bdf", tau_v = p.tau_v, tau_u = 1, dt = 0.005, tmax = 1001, progress = false,
  checkpoint = false, target_mode = "sample" }
local X, Y
for x, y in t.task.train:batches { batch = p.batch } do X, Y = x, y break end

local function median(v)
  table.sort(v)
  local n = #v
  return n % 2 == 1 and v[(n + 1) // 2] or 0.5 * (v[n // 2] + v[n // 2 + 1])
end

-- the minibatch's accumulated update (every weight and bias), stats and wall time
local function update(o)
  t.run_opts = t:solver_options()
  for k, v in pairs(o) do t.run_opts[k] = v end
  t.opt:zero()
  local t0 = apical.clock()
  local st = t:gradient(X, Y)
  local wall = apical.clock() - t0
  local g = {}
  for i = 1, t.L do
    local dW, db = t.opt:grad(t.net.W[i])
    for k = 1, #dW do g[#g + 1] = dW[k] end
    for k = 1, #db do g[#g + 1] = db[k] end
  end
  return g, st, wall
end

local t0 = apical.clock()
local ref = update { rtol = p.ref_rtol, atol = p.ref_rtol * 1e-2, linear_solver = "dense" }
print(string.format("batch %d (%d states), tau_v %g; reference: cvode-bdf dense, rtol %g (%.1f s)",
  p.batch, 30 * p.batch, p.tau_v, p.ref_rtol, apical.clock() - t0))
print("| rtol | linear solver | error | error / rtol | steps | rhs evals | rhs / dense | s (median) |")
print("|---|---|---|---|---|---|---|---|")
for rs in p.rtols:gmatch("[^,]+") do
  local rtol = tonumber(rs)
  local rows, dense_evals = {}, nil
  for c in p.choices:gmatch("[^,]+") do
    local o = { rtol = rtol, atol = rtol * 1e-2 }
    if c == "dense" then o.linear_solver = "dense"
    elseif c == "dfc.layered" then o.preconditioner = c -- its exact solve, no GMRES
    elseif c ~= "default" then o.linear_solver, o.preconditioner = "krylov", c:gsub("^krylov:", "") end
    local walls, g, st = {}, nil, nil
    for r = 1, p.reps do
      local w
      g, st, w = update(o)
      walls[r] = w
    end
    local num, den = 0, 0
    for k = 1, #g do num, den = num + (g[k] - ref[k]) ^ 2, den + ref[k] ^ 2 end
    local err = math.sqrt(num / den)
    rows[#rows + 1] = { c = c, err = err, st = st, wall = median(walls) }
    if c == "dense" then dense_evals = st.rhs_evals end
  end
  for _, r in ipairs(rows) do
    local label = (r.c == "default" or r.c == "dense" or r.c == "dfc.layered") and r.c or "krylov, " .. r.c:gsub("^krylov:", "")
    print(string.format("| %g | %s | %.2e | %.1f | %d | %d | %s | %.3f |", rtol, label, r.err, r.err / rtol,
      r.st.steps, r.st.rhs_evals, dense_evals and string.format("%.2f", r.st.rhs_evals / dense_evals) or "-", r.wall))
  end
end
