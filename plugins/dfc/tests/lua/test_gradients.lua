-- test_gradients.lua — dfc.gradients returns an update kernel's gradients directly: the same
-- values the kernel adds to an optimiser's buffers (read back with opt:grad), for dfc.ssa,
-- dfc.bp and dfc.dfa, per projection; and it refuses what it cannot do.
local apical = require "apical"
local dfc = apical.plugin "dfc"
package.path = (arg[0]:match("^(.*)/") or ".") .. "/?.lua;" .. package.path
local fx = require "dfc_fixture"
local check, assert = fx.check, fx.check.assert

local net = dfc.network { sizes = { 4, 5, 3 }, batch = 6, k_p = 1.5, alpha = 0.01, seed = 3 }
net:set_weight_product()
local X, Y = apical.zeros { 6, 4 }, apical.zeros { 6, 3 }
for k = 1, #X do X[k] = math.sin(k) end
for k = 1, #Y do Y[k] = math.cos(3 * k) end

local cases = {
  ssa = { model = net.model, x = X, y = Y, loss = "mse", lambda = 0.05, alpha = 0.01 },
  bp = { model = net.model, x = X, y = Y, loss = "mse" },
  dfa = { model = net.model, x = X, y = Y, loss = "mse" },
}
for kernel, args in pairs(cases) do
  local g, names = dfc.gradients(kernel, args)
  assert(#names == 2 and names[1] == "W1" and names[2] == "W2", table.concat(names, ","))
  -- the same through an optimiser
  local opt = apical.optim.sgd { model = net.model, lr = 1 }
  opt:zero()
  local a = {}
  for k, v in pairs(args) do a[k] = v end
  a.optim = opt
  dfc[kernel](a)
  local nonzero = 0
  for _, name in ipairs(names) do
    local dW, db = opt:grad(name)
    for k = 1, #dW do
      assert(g[name].dW[k] == dW[k], kernel .. " " .. name .. " dW differs")
      if dW[k] ~= 0 then nonzero = nonzero + 1 end
    end
    for k = 1, #db do assert(g[name].db[k] == db[k], kernel .. " " .. name .. " db differs") end
  end
  assert(nonzero > 0, kernel .. ": all-zero gradients")
  -- the function form and a projection subset
  local g1 = dfc.gradients(dfc[kernel], { model = net.model, x = X, y = Y, loss = "mse", lambda = args.lambda,
    alpha = args.alpha, projections = { "W2" } })
  assert(g1.W2 and not g1.W1)
  for k = 1, #g1.W2.dW do assert(g1.W2.dW[k] == g.W2.dW[k]) end
end

local ok, err = pcall(dfc.gradients, "forward", { model = net.model })
assert(not ok and err:find('kernel "forward" is not an update kernel', 1, true), err)
ok, err = pcall(dfc.gradients, "ssa", { model = net.model, optim = apical.optim.sgd { model = net.model, lr = 1 } })
assert(not ok and err:find("optim is dfc.gradients' own", 1, true), err)
check.done("test_gradients")
