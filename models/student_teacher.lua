-- models/student_teacher.lua — the student-teacher regression of the paper (Fig. 3):
-- student 15-10-10-5 (tanh hidden, linear output), MSE, SGD, batch 128, 5000/1000/1000
-- samples, k_p = 1.5, alpha = 0.0015, tau_v/tau_u = 0.2, dt = 0.005, tmax = 1000,
-- lambda = 0.05, lr = 0.05 (divided by lambda). Targets per sample (target_mode = "sample"):
-- with the reference's minibatch-mean targets and plain SGD, every DFC update is 2/B times the
-- size of BP's at the same learning rate (the 1/B of the mean loss meets the 1/B of the batch
-- average); --set target_mode=mean gives the reference's form. Feedback: the fixed
-- weight-product feedback (trained feedback comes with the sleep phase).
--   build/bin/apical run models/student_teacher.lua [--set method=dfc-ssa] [--set solver=cvode-bdf]
local apical = require "apical"
local dfc = apical.plugin "dfc"

local p = apical.params {
  method = "dfc", solver = "euler", epochs = 50, seed = 42, lr = 0.05, lambda = 0.05,
  k_p = 1.5, alpha = 0.0015, tau_v = 0.2, dt = 0.005, tmax = 1000, rtol = 1e-6, atol = 1e-8,
  inst_transmission = true, proactive = true, feedback = "weight_product", out_dir = "runs",
  resume = "", progress = true,
}

dfc.train {
  task = "student_teacher", hidden = { 10, 10 }, activation = "tanh", output_activation = "linear",
  batch = 128, optimizer = "sgd", clip = 1.0, method = p.method, solver = p.solver,
  epochs = p.epochs, seed = p.seed, lr = p.lr, lambda = p.lambda, k_p = p.k_p, alpha = p.alpha,
  tau_v = p.tau_v, dt = p.dt, tmax = p.tmax, rtol = p.rtol, atol = p.atol,
  inst_transmission = p.inst_transmission, proactive = p.proactive, feedback = p.feedback,
  out_dir = p.out_dir, resume = p.resume, progress = p.progress,
  target_mode = p.target_mode, normalize_lr = p.normalize_lr,
}
