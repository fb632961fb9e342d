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

-- every run setting, each --set-able; given to dfc.train as its defaults, so the options a run
-- does not read (the sleep phase's with fixed feedback, rtol/atol under Euler, ...) are simply
-- not read, unless given with --set (then they are refused: docs/training.md)
-- the task's teacher (not an option of dfc.train)
local teacher = apical.params { teacher = "reference" }.teacher
local p = apical.params {
  method = "dfc", solver = "euler", epochs = 50, seed = 42, lr = 0.05, lambda = 0.05,
  k_p = 1.5, alpha = 0.0015, tau_v = 0.2, dt = 0.005, tmax = 1000, rtol = 1e-6, atol = 1e-8,
  inst_transmission = true, proactive = true, feedback = "weight_product", out_dir = "runs",
  resume = "", progress = true, target_mode = "sample", normalize_lr = true,
  k_p_fb = 0.1, alpha_fb = 0.25, tau_v_fb = 0.01, dt_fb = 0.002, tmax_fb = 50, tau_A = 0.3,
  sigma = 0.01, optimizer_fb = "sgd", lr_fb = 0.002, lr_fb_init = 0.1, beta = 0.025,
  clip_fb = 1.0, epochs_fb = 10, extra_fb_epochs = 1, -- single phase: extra_fb_epochs not read
  single_phase = false, tau_hp = 1.0,
  measures_every = 0, -- the App. F.1 measures into measures.csv (0: off)
}

dfc.train {
  task = "student_teacher", hidden = { 10, 10 }, activation = "tanh", output_activation = "linear",
  batch = 128, optimizer = "sgd", clip = 1.0, defaults = p,
  task_opts = { variant = teacher },
}
