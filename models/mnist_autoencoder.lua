-- models/mnist_autoencoder.lua — the MNIST autoencoder of the paper: 784-256-32-256-784,
-- tanh-linear-tanh hidden layers, linear output, MSE, Adam, 25 epochs, with the MNIST
-- controller settings. The paper freezes Q_L = I (freeze_QL): with the fixed weight-product
-- feedback used here Q_L = I already; with --set feedback=trained Q_1..Q_3 are learned in the
-- sleep phase with the MNIST feedback-phase configuration (models/mnist.lua) and the output
-- layer gets no noise.
--   build/bin/apical run models/mnist_autoencoder.lua [--set method=dfa] [--set epochs=2]
local apical = require "apical"
local dfc = apical.plugin "dfc"

local p = apical.params {
  method = "dfc-ssa", solver = "euler", epochs = 25, seed = 42, lr = 9.27e-5, lambda = 0.0779,
  eps = 9.45e-8, k_p = 2.0, alpha = 0.00139, tau_v = 0.2, dt = 0.02, tmax = 1000,
  feedback = "weight_product", out_dir = "runs", resume = "", progress = true, n_train = 55000, measures_every = 0,
  k_p_fb = 0.157, alpha_fb = 0.613, tau_v_fb = 0.0063, dt_fb = 0.00203, tmax_fb = 48,
  tau_A = 0.325, sigma = 0.00152, lr_fb = 5.27e-4, lr_fb_init = 3.17e-4, eps_fb = 1.56e-6,
  beta = 0.001, epochs_fb = 10, extra_fb_epochs = 2,
}

dfc.train {
  task = "mnist_autoencoder", task_opts = { n_train = p.n_train }, measures_every = p.measures_every, hidden = { 256, 32, 256 },
  activations = { "tanh", "linear", "tanh", "linear" }, batch = 128, optimizer = "adam", beta1 = 0.99, beta2 = 0.99,
  eps = p.eps, clip = 1.0, normalize_lr = true, method = p.method, solver = p.solver,
  epochs = p.epochs, seed = p.seed, lr = p.lr, lambda = p.lambda, k_p = p.k_p, alpha = p.alpha,
  tau_v = p.tau_v, dt = p.dt, tmax = p.tmax, feedback = p.feedback, out_dir = p.out_dir,
  resume = p.resume, progress = p.progress, freeze_QL = true,
  k_p_fb = p.k_p_fb, alpha_fb = p.alpha_fb, tau_v_fb = p.tau_v_fb, dt_fb = p.dt_fb,
  tmax_fb = p.tmax_fb, tau_A = p.tau_A, sigma = p.sigma, optimizer_fb = "adam", lr_fb = p.lr_fb,
  lr_fb_init = p.lr_fb_init, eps_fb = p.eps_fb, beta = p.beta, clip_fb = 1.0,
  epochs_fb = p.epochs_fb, extra_fb_epochs = p.extra_fb_epochs,
}
