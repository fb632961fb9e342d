-- test_data.lua — the datasets of the paper's tasks as the trainers see them: MNIST and
-- Fashion-MNIST with the reference's 55,000/5,000 split and 10,000 test images scaled to [0, 1],
-- the autoencoder's targets equal to its inputs, and the generated student-teacher task.
-- Without the data (scripts/get-data.sh) the MNIST parts are skipped with a message.
local apical = require "apical"
local dfc = apical.plugin "dfc"

-- student-teacher: seeded, reproducible, teacher bigger than the student
local a = dfc.tasks.student_teacher { seed = 5, n_train = 100, n_valid = 20, n_test = 30 }
local b = dfc.tasks.student_teacher { seed = 5, n_train = 100, n_valid = 20, n_test = 30 }
local c = dfc.tasks.student_teacher { seed = 6, n_train = 100, n_valid = 20, n_test = 30 }
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
for _, name in ipairs { "mnist", "fashion_mnist" } do
  local t = dfc.tasks[name]()
  assert(t.train:size() == 55000 and t.valid:size() == 5000 and t.test:size() == 10000, name)
  assert(t.train:input_dim() == 784 and t.train:target_dim() == 10 and t.loss == "ce")
  local x, y, label = t.test:sample(1)
  local mx = 0
  for i = 1, 784 do
    assert(x[i] >= 0 and x[i] <= 1)
    mx = math.max(mx, x[i])
  end
  assert(mx == 1.0, name .. ": pixels reach 255/255")
  assert(y[label + 1] == 1, name .. ": one-hot target")
  print(name, "ok, first test label", label)
end
local ae = dfc.tasks.mnist_autoencoder()
local x, y = ae.valid:sample(3)
for i = 1, 784 do assert(x[i] == y[i]) end
assert(ae.loss == "mse" and ae.train:target_dim() == 784)

-- the autoencoder's run directory gets reconstructions.csv: 28 rows of the first 8 test images
-- side by side, then 28 rows of the network's outputs for them
local tmp = os.tmpname()
os.remove(tmp)
assert(os.execute("mkdir -p '" .. tmp .. "'"))
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
      assert(math.abs(rows[py][k * 28 + px] - X8[i]) <= 1e-6, "input pixel")
      assert(math.abs(rows[28 + py][k * 28 + px] - out[i]) <= 1e-5 * (1 + math.abs(out[i])), "output pixel")
    end
  end
end
os.execute("rm -rf '" .. tmp .. "'")
print("1 passed, 0 failed")
