-- models/mnist_autoencoder.lua — the MNIST autoencoder of the paper: 784-256-32-256-784,
-- tanh-linear-tanh hidden layers, linear output, MSE, Adam, 25 epochs, with the MNIST
-- controller settings. The paper freezes Q_L = I (freeze_QL): with the fixed weight-product
-- feedback used here Q_L = I already; with --set feedback=trained Q_1..Q_3 are learned in the
-- sleep phase (the trainer's default feedback-phase settings) and the output layer gets no noise.
--   build/bin/apical run models/mnist_autoencoder.lua [--set method=dfa] [--set epochs=2]
local apical = require "apical"
local dfc = apical.plugin "dfc"

local p = apical.params {
  method = "dfc-ssa", solver = "euler", epochs = 25, seed = 42, lr = 9.27e-5, lambda = 0.0779,
  eps = 9.45e-8, k_p = 2.0, alpha = 0.00139, tau_v = 0.2, dt = 0.02, tmax = 1000,
  feedback = "weight_product", out_dir = "runs", resume = "", progress = true,
}

dfc.train {
  task = "mnist_autoencoder", hidden = { 256, 32, 256 },
  activations = { "tanh", "linear", "tanh", "linear" }, batch = 128, optimizer = "adam", beta1 = 0.99, beta2 = 0.99,
  eps = p.eps, clip = 1.0, normalize_lr = true, method = p.method, solver = p.solver,
  epochs = p.epochs, seed = p.seed, lr = p.lr, lambda = p.lambda, k_p = p.k_p, alpha = p.alpha,
  tau_v = p.tau_v, dt = p.dt, tmax = p.tmax, feedback = p.feedback, out_dir = p.out_dir,
  resume = p.resume, progress = p.progress, freeze_QL = true,
}
