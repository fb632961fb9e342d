-- models/student_teacher.lua — the student-teacher regression of the paper (Fig. 3) on the
-- reference's task (dfc.tasks.student_teacher, variant "reference": inputs U[-1, 1]^15, a
-- 15-1000-1000-1000-1000-5 ReLU teacher, xavier_normal gain 3; --set teacher=small for the cheap
-- 15-20-20-5 tanh teacher): student 15-10-10-5 (tanh hidden, linear output), MSE, SGD, batch 128,
-- 5000/1000/1000 samples, k_p = 1.5, alpha = 0.0015, tau_v/tau_u = 0.2, dt = 0.005, tmax = 1000,
-- lambda = 0.05, lr = 0.05 (divided by lambda). Targets per sample (target_mode = "sample"):
-- with the reference's minibatch-mean targets and plain SGD, every DFC update is 2/B times the
-- size of BP's at the same learning rate (the 1/B of the mean loss meets the 1/B of the batch
-- average); --set target_mode=mean gives the reference's form. Feedback: the fixed
-- weight-product feedback; --set feedback=trained learns Q in the sleep phase (12), (13) with
-- the paper's feedback-phase configuration: k_p_fb = 0.1, alpha_fb = 0.25, tau_v_fb = 0.01,
-- dt_fb = 0.002, tmax_fb = 50, tau_A = 0.3, sigma = 0.01, SGD with lr_fb = 0.002 (pre-training
-- lr_fb_init = 0.1), weight decay beta = 0.025, 10 pre-training epochs, 1 feedback epoch after
-- each forward epoch. --set single_phase=true (with feedback=trained) merges the sleep phase into
-- forward learning (App. C.3): noisy forward simulations (sigma, tau_A, euler-maruyama) train Q
-- with the high-pass filtered u - u_lp (tau_hp) while W learns; the pre-training stays, the
-- feedback epochs after forward epochs go.
--   build/bin/apical run models/student_teacher.lua [--set method=dfc-ssa] [--set solver=cvode-bdf]
--   build/bin/apical run models/student_teacher.lua --set feedback=trained --set single_phase=true
local apical = require "apical"
local dfc = apical.plugin "dfc"

local p = apical.params {
  method = "dfc", solver = "euler", epochs = 50, seed = 42, lr = 0.05, lambda = 0.05,
  k_p = 1.5, alpha = 0.0015, tau_v = 0.2, dt = 0.005, tmax = 1000, rtol = 1e-6, atol = 1e-8,
  inst_transmission = true, proactive = true, feedback = "weight_product", out_dir = "runs",
  resume = "", progress = true, target_mode = "sample", normalize_lr = true,
  k_p_fb = 0.1, alpha_fb = 0.25, tau_v_fb = 0.01, dt_fb = 0.002, tmax_fb = 50, tau_A = 0.3,
  sigma = 0.01, lr_fb = 0.002, lr_fb_init = 0.1, beta = 0.025, epochs_fb = 10, extra_fb_epochs = 1,
  single_phase = false, tau_hp = 1.0, measures_every = 0, teacher = "reference",
}

dfc.train {
  task = "student_teacher", hidden = { 10, 10 }, activation = "tanh", output_activation = "linear",
  batch = 128, optimizer = "sgd", clip = 1.0, method = p.method, solver = p.solver,
  epochs = p.epochs, seed = p.seed, lr = p.lr, lambda = p.lambda, k_p = p.k_p, alpha = p.alpha,
  tau_v = p.tau_v, dt = p.dt, tmax = p.tmax, rtol = p.rtol, atol = p.atol,
  inst_transmission = p.inst_transmission, proactive = p.proactive, feedback = p.feedback,
  out_dir = p.out_dir, resume = p.resume, progress = p.progress,
  target_mode = p.target_mode, normalize_lr = p.normalize_lr,
  k_p_fb = p.k_p_fb, alpha_fb = p.alpha_fb, tau_v_fb = p.tau_v_fb, dt_fb = p.dt_fb,
  tmax_fb = p.tmax_fb, tau_A = p.tau_A, sigma = p.sigma, optimizer_fb = "sgd", lr_fb = p.lr_fb,
  lr_fb_init = p.lr_fb_init, beta = p.beta, clip_fb = 1.0, epochs_fb = p.epochs_fb,
  -- single phase: no feedback epochs after forward epochs
  extra_fb_epochs = not p.single_phase and p.extra_fb_epochs or nil,
  single_phase = p.single_phase, tau_hp = p.tau_hp,
  measures_every = p.measures_every, -- the App. F.1 measures into measures.csv (0: off)
  task_opts = { variant = p.teacher },
}
