-- test_paper.lua — dfc.paper: the published per-method configurations come out with the
-- configs' values (spot checks per task, method and feedback), every option is one dfc.train
-- knows, and bad tasks or methods are errors naming them.
local apical = require "apical"
local dfc = apical.plugin "dfc"
package.path = (arg[0]:match("^(.*)/") or ".") .. "/?.lua;" .. package.path
local fx = require "dfc_fixture"
local check, assert = fx.check, fx.check.assert

local function eq(a, b, what) assert(a == b, string.format("%s: %s, expected %s", what, tostring(a), tostring(b))) end

local c = dfc.paper.config("mnist", "bp")
eq(c.lr, 2.97764587844326e-07, "mnist bp lr")
eq(c.lambda, 0.001, "mnist bp lambda")
eq(c.eps, 5.770311627459478e-08, "mnist bp eps")
eq(c.normalize_lr, true, "normalize_lr")
eq(c.clip, 0, "the reference's BP does not clip")
eq(dfc.paper.config("mnist", "dfa").clip, 1.0, "DFA clips")
eq(c.optimizer, "adam", "optimizer")
eq(c.beta1, 0.99, "beta1")

c = dfc.paper.config("mnist", "dfc-ssa", "weight_product")
eq(c.lr, 6.043454783083358e-05, "mnist fixed lr")
eq(c.lambda, 0.1, "mnist fixed lambda")
eq(c.alpha, 0.00024658638831547176, "mnist fixed alpha")
eq(c.tmax, 500, "mnist fixed tmax")
eq(c.feedback, "weight_product", "feedback kept")

c = dfc.paper.config("mnist", "dfc", "trained")
eq(c.lr, 9.265965477237583e-05, "mnist trained lr")
eq(c.alpha, 0.0013890445062125412, "mnist trained alpha")
eq(c.tmax, 1000, "mnist trained tmax")
eq(c.sigma, 0.001524181852173024, "mnist sigma")
eq(c.freeze_QL, false, "mnist trains Q_L")
eq(c.convergence_test, true, "convergence test")

c = dfc.paper.config("fashion_mnist", "dfc-ss", "weight_product")
eq(c.dt, 0.0005, "fmnist fixed dfc-ss dt")
eq(c.tmax, 3000, "fmnist fixed dfc-ss tmax")
eq(c.alpha, 0.7985041176538932, "fmnist fixed alpha")
eq(c.convergence_test, false, "fmnist fixed dfc-ss keeps every sample")
eq(dfc.paper.config("fashion_mnist", "dfc-ssa", "weight_product").convergence_test, true, "fmnist fixed ssa")
eq(dfc.paper.config("fashion_mnist", "dfc", "trained").proactive, false, "fmnist trained: no proactive controller")

c = dfc.paper.config("mnist_autoencoder", "dfc-ssa", "trained")
eq(c.epochs_fb, 15, "autoencoder pre-training epochs")
eq(c.freeze_QL, true, "autoencoder freezes Q_L")
eq(#c.activations, 4, "autoencoder activations")
eq(c.activations[2], "linear", "bottleneck")
eq(c.hidden[2], 32, "bottleneck size")
-- tables are fresh copies
c.hidden[2] = 7
eq(dfc.paper.config("mnist_autoencoder", "bp").hidden[2], 32, "no shared tables")

-- every option of every configuration is a dfc.train option
for _, task in ipairs { "mnist", "fashion_mnist", "mnist_autoencoder" } do
  for _, m in ipairs { "bp", "dfa", "dfc", "dfc-ss", "dfc-ssa" } do
    for _, fb in ipairs { "weight_product", "trained" } do
      for k in pairs(dfc.paper.config(task, m, fb)) do
        assert(dfc.train_defaults[k] ~= nil, string.format("%s %s %s: option %s unknown to dfc.train", task, m, fb, k))
      end
    end
  end
end

local ok, err = pcall(dfc.paper.config, "cifar10", "bp")
assert(not ok and err:find('task "cifar10"', 1, true), err)
ok, err = pcall(dfc.paper.config, "mnist", "tp")
assert(not ok and err:find('method "tp"', 1, true), err)
check.done("test_paper")
