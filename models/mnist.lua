-- models/mnist.lua — MNIST classification with the paper's published configurations:
-- 784-256-256-256-10, tanh hidden, softmax + cross-entropy, Adam (beta1 = beta2 = 0.99),
-- batch 128, per-tensor clipping at 1, the reference's lr / lambda, 55,000/5,000
-- train/validation split, pixels standardised as the reference does ((x/255 - 0.1307)/0.3081),
-- tau_v/tau_u = 0.2, the reference's convergence test. Data: scripts/get-data.sh.
--
-- Every method has its own tuned values (dfc.paper, plugins/dfc/lua/dfc/paper.lua), chosen by
-- --set method= and --set feedback=; any of them can be --set by name:
--   method    feedback          lr          lambda   eps        alpha     dt    tmax (steps)
--   bp        -                 2.978e-07   0.001    5.770e-08  -         -     -
--   dfa       -                 2.630e-07   0.001    2.483e-08  -         -     -
--   dfc*      trained           9.266e-05   0.07794  9.446e-08  1.389e-03 0.02  1000
--   dfc*      weight_product    6.043e-05   0.1      1.333e-08  2.466e-04 0.02   500
-- (dfc* = dfc, dfc-ss, dfc-ssa; k_p = 2). Trained feedback learns Q in the sleep phase (12),
-- (13): k_p_fb = 0.157, alpha_fb = 0.613, tau_v_fb = 0.0063, dt_fb = 0.00203, tmax_fb = 48,
-- tau_A = 0.325, sigma = 0.00152, Adam (eps_fb = 1.56e-6), lr_fb = 5.27e-4 (pre-training
-- lr_fb_init = 3.17e-4), weight decay beta = 0.001, clip 1, 10 pre-training epochs, 2 feedback
-- epochs after each forward epoch. The fixed variants set Q once from the initial weights.
--   build/bin/apical run models/mnist.lua [--set method=dfc-ssa] [--set feedback=trained] [--set epochs=3]
-- On two or more cores, --set threads=2 --set fb_threads=2 splits each minibatch over two
-- threads (DFC, DFC-SS and the sleep phase; docs/training.md).
local apical = require "apical"
local dfc = apical.plugin "dfc"

dfc.train(dfc.paper.params("mnist", {
  method = "dfc", feedback = "weight_product", solver = "euler", epochs = 100, seed = 42,
  rtol = 1e-6, atol = 1e-8, settle_tol = 0.0, out_dir = "runs", resume = "", progress = true,
  n_train = 55000, measures_every = 0, threads = 1, fb_threads = 1, mpi_cvode = "local",
}))
