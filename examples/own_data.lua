-- own_data.lua — DFC on your own data: dfc.train's task is an apical dataset. Two small
-- problems, made here and written to files as your data would be (.npy, CSV), then read back:
--   regression      y = (sin(2 a) b, a c) of three inputs in [-1, 1]; mse; the last quarter of
--                   the samples validates (task_opts.valid_split)
--   classification  three Gaussian clusters in the plane, integer labels 0..2; cross-entropy;
--                   a validation set and a test set of their own (task_opts.valid, .test)
-- Each trains with DFC under CVODE and prints the losses per epoch and the run directory.
--   build/bin/apical run examples/own_data.lua [--set epochs=10] [--set method=dfc-ssa]
local apical = require "apical"
local dfc = apical.plugin "dfc"

local p = apical.params { epochs = 5, method = "dfc", solver = "cvode-bdf", n = 640, batch = 32,
  lr = 0.01, seed = 1, out_dir = "runs" }

-- a seeded generator, so that the data are the same on every machine
local state = p.seed
local function uniform()
  state = (state * 1103515245 + 12345) % 2147483648
  return (state + 0.5) / 2147483648
end

-- your data: here written to .npy files (any numeric dtype NumPy writes reads the same way)
local dir = p.out_dir .. "/own-data-files"
apical.mkdir(dir)
local X, Y = apical.zeros { p.n, 3 }, apical.zeros { p.n, 2 }
for i = 0, p.n - 1 do
  local a, b, c = 2 * uniform() - 1, 2 * uniform() - 1, 2 * uniform() - 1
  X[i * 3 + 1], X[i * 3 + 2], X[i * 3 + 3] = a, b, c
  Y[i * 2 + 1], Y[i * 2 + 2] = math.sin(2 * a) * b, a * c
end
X:save_npy(dir .. "/x.npy")
Y:save_npy(dir .. "/y.npy")

-- regression: inputs and targets from the files, mse, a validation split
local reg = apical.dataset.arrays { inputs = apical.load_npy(dir .. "/x.npy"),
  targets = apical.load_npy(dir .. "/y.npy") }
local common = { method = p.method, hidden = { 16 }, batch = p.batch,
  epochs = p.epochs, optimizer = "adam", lr = p.lr, seed = p.seed,
  progress = false, out_dir = p.out_dir }
-- the simulation's settings: only DFC and DFC-SS simulate (the others would refuse them)
if p.method == "dfc" or p.method == "dfc-ss" then
  common.solver, common.tmax, common.dt = p.solver, 100, 0.05
end
local function with(t)
  local c = {}
  for k, v in pairs(common) do c[k] = v end
  for k, v in pairs(t) do c[k] = v end
  return c
end
local r = dfc.train(with { task = reg, task_opts = { loss = "mse", valid_split = 0.25, name = "own-regression" } })
print("epoch  train_loss  valid_loss")
for _, row in ipairs(r.log) do print(string.format("%5d  %10.5f  %10.5f", row.epoch, row.train_loss, row.valid_loss)) end

-- classification: labels (integers from 0) make one-hot targets; cross-entropy. The samples
-- are written to CSV files (a header, one sample per line) and read back by column name.
local function clusters(count, name)
  local centres = { { 1, 0 }, { -0.5, 0.87 }, { -0.5, -0.87 } }
  local path = dir .. "/" .. name .. ".csv"
  local f = assert(io.open(path, "w"))
  f:write("x1,x2,class\n")
  for i = 0, count - 1 do
    local k = i % 3
    local rad, t = 0.35 * math.sqrt(-2 * math.log(uniform())), 2 * math.pi * uniform()
    f:write(string.format("%.17g,%.17g,%d\n", centres[k + 1][1] + rad * math.cos(t),
      centres[k + 1][2] + rad * math.sin(t), k))
  end
  f:close()
  return apical.dataset.csv(path, { label = "class" })
end
local train, valid, test = clusters(p.n, "train"), clusters(p.n // 5, "valid"), clusters(p.n // 5, "test")
r = dfc.train(with { task = train, task_opts = { loss = "ce", valid = valid, test = test,
  name = "own-classes" } })
print("epoch  train_loss  valid_error")
for _, row in ipairs(r.log) do
  print(string.format("%5d  %10.5f  %10.3f", row.epoch, row.train_loss, row.valid_error))
end
print(string.format("test error at the best validation epoch (%d): %.3f", r.best.epoch, r.best.test_error))
apical.fs.remove_tree(dir)
