-- models/mnist.lua — MNIST classification with the paper's DFC configuration: 784-256-256-256-10,
-- tanh hidden, softmax + cross-entropy, Adam (beta1 = beta2 = 0.99, eps = 9.45e-8), batch 128,
-- 55,000/5,000 train/validation split, lr 9.27e-5 divided by lambda = 0.0779, k_p = 2,
-- alpha = 0.00139, dt = 0.02, tmax = 1000, tau_v/tau_u = 0.2, clip 1, the reference's
-- convergence test. Data: scripts/get-data.sh. Feedback: the fixed weight-product feedback;
-- --set feedback=trained learns Q in the sleep phase (12), (13) with the paper's
-- feedback-phase configuration: k_p_fb = 0.157, alpha_fb = 0.613, tau_v_fb = 0.0063,
-- dt_fb = 0.00203, tmax_fb = 48, tau_A = 0.325, sigma = 0.00152, Adam (beta1 = beta2 = 0.99,
-- eps_fb = 1.56e-6) with lr_fb = 5.27e-4 (pre-training lr_fb_init = 3.17e-4), weight decay
-- beta = 0.001, clip 1, 10 pre-training epochs, 2 feedback epochs after each forward epoch.
--   build/bin/apical run models/mnist.lua [--set method=dfc-ssa] [--set epochs=3]
local apical = require "apical"
local dfc = apical.plugin "dfc"

local p = apical.params {
  method = "dfc", solver = "euler", epochs = 100, seed = 42, lr = 9.27e-5, lambda = 0.0779,
  eps = 9.45e-8, k_p = 2.0, alpha = 0.00139, tau_v = 0.2, dt = 0.02, tmax = 1000, rtol = 1e-6,
  atol = 1e-8, settle_tol = 0.0, convergence_test = true, feedback = "weight_product",
  out_dir = "runs", resume = "", progress = true, n_train = 55000, measures_every = 0,
  k_p_fb = 0.157, alpha_fb = 0.613, tau_v_fb = 0.0063, dt_fb = 0.00203, tmax_fb = 48,
  tau_A = 0.325, sigma = 0.00152, lr_fb = 5.27e-4, lr_fb_init = 3.17e-4, eps_fb = 1.56e-6,
  beta = 0.001, epochs_fb = 10, extra_fb_epochs = 2,
}

dfc.train {
  task = "mnist", task_opts = { n_train = p.n_train }, measures_every = p.measures_every, hidden = { 256, 256, 256 }, activation = "tanh", output_activation = "linear",
  batch = 128, optimizer = "adam", beta1 = 0.99, beta2 = 0.99, eps = p.eps, clip = 1.0,
  normalize_lr = true, method = p.method, solver = p.solver, epochs = p.epochs, seed = p.seed,
  lr = p.lr, lambda = p.lambda, k_p = p.k_p, alpha = p.alpha, tau_v = p.tau_v, dt = p.dt,
  tmax = p.tmax, rtol = p.rtol, atol = p.atol, settle_tol = p.settle_tol,
  convergence_test = p.convergence_test, feedback = p.feedback, out_dir = p.out_dir,
  resume = p.resume, progress = p.progress,
  k_p_fb = p.k_p_fb, alpha_fb = p.alpha_fb, tau_v_fb = p.tau_v_fb, dt_fb = p.dt_fb,
  tmax_fb = p.tmax_fb, tau_A = p.tau_A, sigma = p.sigma, optimizer_fb = "adam", lr_fb = p.lr_fb,
  lr_fb_init = p.lr_fb_init, eps_fb = p.eps_fb, beta = p.beta, clip_fb = 1.0,
  epochs_fb = p.epochs_fb, extra_fb_epochs = p.extra_fb_epochs,
}
