-- models/fashion_mnist.lua — Fashion-MNIST classification with the paper's published
-- configurations: 784-256-256-256-10, tanh hidden, softmax + cross-entropy, Adam
-- (beta1 = beta2 = 0.99), batch 128, clipping at 1, lr / lambda, 55,000/5,000 split, pixels
-- x/255 (the reference does not standardise Fashion-MNIST). Data: scripts/get-data.sh.
--
-- Every method has its own tuned values (dfc.paper, plugins/dfc/lua/dfc/paper.lua), chosen by
-- --set method= and --set feedback=; any of them can be --set by name:
--   method    feedback          lr          lambda   eps        alpha     dt      tmax (steps)
--   bp        -                 5.442e-07   0.001    2.709e-08  -         -       -
--   dfa       -                 7.676e-06   0.001    3.252e-07  -         -       -
--   dfc*      trained           4.406e-05   0.05607  3.661e-08  2.061e-04 0.02     300
--   dfc       weight_product    5.424e-05   0.1      1.465e-10  0.7985    0.001   1500
--   dfc-ss    weight_product    (as dfc)                                  0.0005  3000
--   dfc-ssa   weight_product    (as dfc)
-- Trained feedback: Q_L = I frozen, proactive controller off, its own sleep phase (k_p_fb =
-- 0.0064, alpha_fb = 0.234, tau_v_fb = 0.0055, dt_fb = 0.0031, tmax_fb = 34, tau_A = 0.135,
-- sigma = 0.00245, lr_fb = 2.37e-4, lr_fb_init = 4.54e-4, beta = 0.1). The fixed DFC and DFC-SS
-- configs train on every sample (no convergence test).
--   build/bin/apical run models/fashion_mnist.lua [--set method=dfc-ssa] [--set epochs=3]
-- On two or more cores, --set threads=2 --set fb_threads=2 splits each minibatch over two
-- threads (DFC, DFC-SS and the sleep phase; docs/training.md).
local apical = require "apical"
local dfc = apical.plugin "dfc"

dfc.train(dfc.paper.params("fashion_mnist", {
  method = "dfc", feedback = "weight_product", solver = "euler", epochs = 100, seed = 42,
  rtol = 1e-6, atol = 1e-8, settle_tol = 0.0, out_dir = "runs", resume = "", progress = true,
  n_train = 55000, measures_every = 0, threads = 1, fb_threads = 1,
}))
