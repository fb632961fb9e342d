-- models/small.lua — a small, fast default: the student-teacher task with 200 simulation
-- steps per minibatch and 5 epochs; a first run of any method takes seconds. Per-sample targets
-- and lr / lambda, as in models/student_teacher.lua.
--   build/bin/apical run models/small.lua [--set method=bp] [--set solver=cvode-bdf]
--     [--set linear_solver=krylov --set preconditioner=block] (docs/solvers.md)
--   [--set stability_check=false] (no fixed-step stability guard: docs/solvers.md)
local apical = require "apical"
local dfc = apical.plugin "dfc"

local p = apical.params {
  method = "dfc", solver = "euler", epochs = 5, seed = 42, lr = 0.05, lambda = 0.05, k_p = 1.5,
  alpha = 0.0015, tau_v = 0.2, dt = 0.025, tmax = 200, rtol = 1e-6, atol = 1e-8,
  out_dir = "runs", resume = "", progress = true, target_mode = "sample", normalize_lr = true,
  linear_solver = "default", preconditioner = "default",
  stability_check = true,
}

-- p as dfc.train's defaults: the options the run does not read (rtol/atol under Euler, the
-- controller's with method = bp) are not read, unless given with --set (then refused)
dfc.train {
  task = "student_teacher", hidden = { 10, 10 }, batch = 128, optimizer = "sgd", clip = 1.0,
  defaults = p,
  task_opts = { variant = "small" }, -- the cheap teacher (dfc.tasks.student_teacher)
}
