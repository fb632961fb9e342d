-- dfc_cvode_vs_euler.lua — the main job: DFC on the built-in student-teacher task, trained
-- once with the published fixed-step scheme (declared-order Euler, reference-compatible) and
-- once with CVODE (BDF), from the same initial weights and minibatch order. Prints both loss
-- curves' end points, how far apart the two weight updates are on one fixed minibatch, and
-- the time each run took. Settings of models/student_teacher.lua (per-sample targets, lr/lambda).
--   build/bin/apical run examples/dfc_cvode_vs_euler.lua [--set epochs=10] [--set rtol=1e-8]
local apical = require "apical"
local dfc = apical.plugin "dfc"

local p = apical.params { epochs = 5, seed = 42, rtol = 1e-6, atol = 1e-8, tmax = 1000,
  dt = 0.005, out_dir = "runs", progress = false }

local function config(solver)
  local c = { task = "student_teacher", hidden = { 10, 10 }, method = "dfc", solver = solver,
    epochs = p.epochs, seed = p.seed, lr = 0.05, lambda = 0.05, k_p = 1.5, alpha = 0.0015,
    tau_v = 0.2, dt = p.dt, tmax = p.tmax, optimizer = "sgd",
    clip = 1.0, out_dir = p.out_dir, name = "main-" .. solver, progress = p.progress,
    target_mode = "sample", normalize_lr = true, task_opts = { variant = "small" } }
  -- the tolerances are CVODE's (the Euler run would refuse them: it does not read them)
  if solver ~= "euler" then c.rtol, c.atol = p.rtol, p.atol end
  return c
end

-- the update of both schemes on the first minibatch, from the same initial weights
local function first_update(solver)
  local t = dfc.trainer(config(solver))
  local X, Y
  for bx, by in t.task.train:batches { batch = t.B } do
    X, Y = bx, by
    break
  end
  t.opt:zero()
  t:gradient(X, Y)
  local g = {}
  for i = 1, t.L do
    local dw, db = t.opt:grad(t.net.W[i])
    g[#g + 1], g[#g + 2] = dw, db
  end
  return g
end

local ge, gc = first_update("euler"), first_update("cvode-bdf")
local num, den = 0, 0
for k = 1, #ge do
  for i = 1, #ge[k] do
    num = num + (gc[k][i] - ge[k][i]) ^ 2
    den = den + ge[k][i] ^ 2
  end
end

local results = {}
for _, solver in ipairs { "euler", "cvode-bdf" } do
  results[solver] = dfc.train(config(solver))
end

print(string.format("DFC on the student-teacher task, %d epochs, dt = %g, tmax = %d", p.epochs, p.dt, p.tmax))
print(string.format("%-34s %14s %14s %10s %12s", "scheme", "train loss", "test loss", "wall s", "rhs evals/mb"))
for _, solver in ipairs { "euler", "cvode-bdf" } do
  local r = results[solver]
  local first, last = r.log[1], r.log[#r.log]
  local label = solver == "euler" and "euler (published scheme)" or string.format("cvode-bdf (rtol %g)", p.rtol)
  print(string.format("%-34s %6.4g->%-7.4g %6.4g->%-7.4g %10.2f %12.1f", label, first.train_loss,
    last.train_loss, first.test_loss, last.test_loss, r.wall, last.mean_rhs_evals))
end
print(string.format("relative difference of the two weight updates on the first minibatch: %.3g",
  math.sqrt(num / den)))
print(string.format("time: cvode-bdf / euler = %.2f", results["cvode-bdf"].wall / results.euler.wall))
