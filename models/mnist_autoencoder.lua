-- models/mnist_autoencoder.lua — the MNIST autoencoder of the paper: 784-256-32-256-784,
-- tanh-linear-tanh hidden layers, linear output, MSE on standardised pixels (the reference's
-- (x/255 - 0.1307)/0.3081, inputs and targets), Adam, 25 epochs, Q_L = I frozen (freeze_QL),
-- with the paper's published per-method configurations (dfc.paper; any value can be --set):
--   method    feedback          lr          lambda   eps        alpha     dt      tmax (steps)
--   bp        -                 1.367e-06   0.001    9.191e-07  -         -       -
--   dfa       -                 3.151e-07   0.001    5.150e-08  -         -       -
--   dfc*      trained           1.867e-04   0.02028  2.779e-08  0.03688   0.02    1000
--   dfc       weight_product    5.519e-06   0.1      1.063e-07  1.884e-04 0.0005  2000
--   dfc-ss    weight_product    (as dfc)                                  0.001   1000
-- Trained feedback: 15 pre-training epochs, 2 feedback epochs per forward epoch, its own sleep
-- phase (k_p_fb = 0.0063, alpha_fb = 0.733, tau_v_fb = 0.0065, dt_fb = 0.0033, tmax_fb = 60,
-- tau_A = 0.273, sigma = 0.00184, lr_fb = 1.23e-5, lr_fb_init = 1.64e-4, beta = 0.1); the
-- output layer gets no noise.
--   build/bin/apical run models/mnist_autoencoder.lua [--set method=dfa] [--set epochs=2]
-- On two or more cores, --set threads=2 --set fb_threads=2 splits each minibatch over two
-- threads (DFC, DFC-SS and the sleep phase; docs/training.md).
local apical = require "apical"
local dfc = apical.plugin "dfc"

dfc.train(dfc.paper.params("mnist_autoencoder", {
  method = "dfc-ssa", feedback = "weight_product", solver = "euler", epochs = 25, seed = 42,
  rtol = 1e-6, atol = 1e-8, settle_tol = 0.0,
  out_dir = "runs", resume = "", progress = true, n_train = 55000, measures_every = 0,
  threads = 1, fb_threads = 1,
  freeze_QL = true,
}))
