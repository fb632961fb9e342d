-- test_data.lua — the datasets of the paper's tasks as the trainers see them: MNIST and
-- Fashion-MNIST with the reference's 55,000/5,000 split and 10,000 test images (MNIST
-- standardised as the reference does, (x/255 - 0.1307)/0.3081; Fashion-MNIST x/255), the
-- autoencoder's targets equal to its (standardised) inputs, and the generated student-teacher task.
-- Without the data (scripts/get-data.sh) the MNIST parts are skipped with a message.
local apical = require "apical"
local dfc = apical.plugin "dfc"
package.path = (arg[0]:match("^(.*)/") or ".") .. "/?.lua;" .. package.path
local fx = require "dfc_fixture"
local check, assert = fx.check, fx.check.assert

-- student-teacher: seeded, reproducible, teacher bigger than the student
local a = dfc.tasks.student_teacher { variant = "small", seed = 5, n_train = 100, n_valid = 20, n_test = 30 }
local b = dfc.tasks.student_teacher { variant = "small", seed = 5, n_train = 100, n_valid = 20, n_test = 30 }
local c = dfc.tasks.student_teacher { variant = "small", seed = 6, n_train = 100, n_valid = 20, n_test = 30 }
assert(a.train:size() == 100 and a.valid:size() == 20 and a.test:size() == 30)
assert(a.train:input_dim() == 15 and a.train:target_dim() == 5)
local xa, ya = a.train:sample(7)
local xb, yb = b.train:sample(7)
local xc = c.train:sample(7)
for i = 1, 15 do assert(xa[i] == xb[i]) end
for i = 1, 5 do assert(ya[i] == yb[i]) end
assert(xa[1] ~= xc[1], "another seed gives other data")
-- inputs ~ N(0, 1): the sample mean and variance of all 150 x 15 inputs
local X = apical.dataset.arrays { inputs = a.train:inputs(), targets = a.train:targets() }:inputs()
local s, s2 = 0, 0
for i = 1, #X do s, s2 = s + X[i], s2 + X[i] ^ 2 end
local mean, var = s / #X, s2 / #X - (s / #X) ^ 2
assert(math.abs(mean) < 0.1 and math.abs(var - 1) < 0.15, string.format("mean %g var %g", mean, var))

local dir = dfc.tasks.data_dir()
local f = io.open(dir .. "/mnist/train-images-idx3-ubyte", "rb")
if not f then
  print("SKIP: MNIST is not in " .. dir .. "/mnist (run scripts/get-data.sh or set APICAL_DATA)")
  os.exit(77)
end
f:close()
local m0, s0 = dfc.tasks.MNIST_MEAN, dfc.tasks.MNIST_STD
assert(m0 == 0.1307 and s0 == 0.3081)
local cases = {
  { "mnist", nil, (0 - m0) / s0, (1 - m0) / s0 },
  { "mnist", { normalize = false }, 0, 1 },
  { "fashion_mnist", nil, 0, 1 },
  { "fashion_mnist", { normalize = { 0.5, 0.25 } }, -2, 2 },
}
local raw
for _, case in ipairs(cases) do
  local name, opts, lo, hi = case[1], case[2], case[3], case[4]
  local t = dfc.tasks[name](opts)
  assert(t.train:size() == 55000 and t.valid:size() == 5000 and t.test:size() == 10000, name)
  assert(t.train:input_dim() == 784 and t.train:target_dim() == 10 and t.loss == "ce")
  local x, y, label = t.test:sample(1)
  local xv = t.valid:sample(5)
  local mn, mx = math.huge, -math.huge
  for i = 1, 784 do
    mn, mx = math.min(mn, x[i]), math.max(mx, x[i])
  end
  assert(math.abs(mn - lo) < 1e-15 and math.abs(mx - hi) < 1e-15,
    string.format("%s: pixels span [%.17g, %.17g], expected [%.17g, %.17g]", name, mn, mx, lo, hi))
  assert(y[label + 1] == 1, name .. ": one-hot target")
  -- the standardised validation images are the raw ones shifted and scaled, pixel by pixel
  if name == "mnist" and not opts then
    raw = xv
  elseif name == "mnist" then
    for i = 1, 784 do assert(math.abs(raw[i] - (xv[i] - m0) / s0) < 1e-14, "mnist standardised pixel") end
  end
  print(name, "ok, first test label", label, string.format("pixels [%.4f, %.4f]", mn, mx))
end
local ok, err = pcall(dfc.tasks.mnist, { normalize = { 0.1, 0 } })
assert(not ok and err:find("normalize = { 0.1, 0 }", 1, true), err)
local ae = dfc.tasks.mnist_autoencoder()
local x, y = ae.valid:sample(3)
for i = 1, 784 do assert(x[i] == y[i]) end
assert(x[1] == (0 - m0) / s0, "the autoencoder sees standardised pixels (a blank corner)")
assert(ae.loss == "mse" and ae.train:target_dim() == 784)

-- the autoencoder's run directory gets reconstructions.csv: 28 rows of the first 8 test images
-- side by side, then 28 rows of the network's outputs for them
local tmp = fx.tmpdir()
local r = dfc.train { task = "mnist_autoencoder", task_opts = { n_train = 256 }, hidden = { 16, 4, 16 },
  activations = { "tanh", "linear", "tanh", "linear" }, method = "dfa", epochs = 1, out_dir = tmp,
  progress = false, checkpoint = false }
local rows = {}
for line in io.lines(r.run_dir .. "/reconstructions.csv") do
  local row = {}
  for v in line:gmatch("[^,]+") do row[#row + 1] = tonumber(v) end
  assert(#row == 8 * 28, "a row of 8 images 28 pixels wide")
  rows[#rows + 1] = row
end
assert(#rows == 56, "28 rows of inputs, 28 of outputs")
local out = apical.zeros { 8, 784 }
local X8 = apical.zeros { 8, 784 }
for k = 1, 8 do
  local xk = ae.test:sample(k)
  for i = 1, 784 do X8[(k - 1) * 784 + i] = xk[i] end
end
dfc.forward { model = r.trainer.net.model, x = X8, out = out }
for k = 0, 7 do
  for py = 1, 28 do
    for px = 1, 28 do
      local i = k * 784 + (py - 1) * 28 + px
      assert(math.abs(rows[py][k * 28 + px] - X8[i]) <= 1e-5 * (1 + math.abs(X8[i])), "input pixel") -- %.6g
      assert(math.abs(rows[28 + py][k * 28 + px] - out[i]) <= 1e-5 * (1 + math.abs(out[i])), "output pixel")
    end
  end
end
check.done("test_data")
