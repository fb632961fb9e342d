-- models/small.lua — a small, fast default: the student-teacher task with 200 simulation
-- steps per minibatch and 5 epochs; a first run of any method takes seconds. Per-sample targets
-- and lr / lambda, as in models/student_teacher.lua.
--   build/bin/apical run models/small.lua [--set method=bp] [--set solver=cvode-bdf]
--   [--set stability_check=false] (no fixed-step stability guard: docs/solvers.md)
local apical = require "apical"
local dfc = apical.plugin "dfc"

local p = apical.params {
  method = "dfc", solver = "euler", epochs = 5, seed = 42, lr = 0.05, lambda = 0.05, k_p = 1.5,
  alpha = 0.0015, tau_v = 0.2, dt = 0.025, tmax = 200, rtol = 1e-6, atol = 1e-8,
  out_dir = "runs", resume = "", progress = true, target_mode = "sample", normalize_lr = true,
  stability_check = true,
}

dfc.train {
  task = "student_teacher", hidden = { 10, 10 }, batch = 128, optimizer = "sgd", clip = 1.0,
  method = p.method, solver = p.solver, epochs = p.epochs, seed = p.seed, lr = p.lr,
  lambda = p.lambda, k_p = p.k_p, alpha = p.alpha, tau_v = p.tau_v, dt = p.dt, tmax = p.tmax,
  rtol = p.rtol, atol = p.atol, out_dir = p.out_dir, resume = p.resume, progress = p.progress,
  target_mode = p.target_mode, normalize_lr = p.normalize_lr, stability_check = p.stability_check,
}
