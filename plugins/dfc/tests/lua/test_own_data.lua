-- test_own_data.lua — dfc.train on a user's own dataset (task = an apical dataset): regression
-- (mse) and classification (cross-entropy on labels), a validation split or a given validation
-- set, an optional test set, a run directory that resumes; and the task options it refuses, each
-- at the line of the call.
local apical = require "apical"
local dfc = apical.plugin "dfc"
package.path = (arg[0]:match("^(.*)/") or ".") .. "/?.lua;" .. package.path
local fx = require "dfc_fixture"
local check, assert = fx.check, fx.check.assert

local tmp = fx.tmpdir()

local fails = fx.fails

-- a seeded generator (the trainer's tasks use the same), so the data are the same everywhere
local seed = 12345
local function uniform()
  seed = (seed * 1103515245 + 12345) % 2147483648
  return seed / 2147483648
end

-- regression: y = (sin(2 a) b, a c) of three inputs in [-1, 1]
local n = 640
local X, Y = apical.zeros { n, 3 }, apical.zeros { n, 2 }
for i = 0, n - 1 do
  local a, b, c = 2 * uniform() - 1, 2 * uniform() - 1, 2 * uniform() - 1
  X[i * 3 + 1], X[i * 3 + 2], X[i * 3 + 3] = a, b, c
  Y[i * 2 + 1], Y[i * 2 + 2] = math.sin(2 * a) * b, a * c
end
local reg = apical.dataset.arrays { inputs = X, targets = Y }
local base = { hidden = { 16 }, batch = 32, optimizer = "adam", lr = 0.01, defaults = { tmax = 100, dt = 0.05 },
  progress = false, out_dir = tmp, seed = 4 }
local cfg = fx.config(base)

for _, method in ipairs { "dfc", "dfc-ssa" } do
  local r = dfc.train(cfg { task = reg, method = method, epochs = 6,
    solver = method == "dfc" and "cvode-bdf" or nil,
    task_opts = { valid_split = 0.25, name = "regression" } })
  local first, last = r.log[1].valid_loss, r.log[#r.log].valid_loss
  print(string.format("regression %-8s valid loss %.4g -> %.4g", method, first, last))
  assert(last < 0.6 * first, method .. " did not lower the validation loss")
  assert(r.trainer.task.loss == "mse" and r.trainer.task.train:size() == 480 and r.trainer.task.valid:size() == 160)
  assert(r.log[#r.log].test_loss ~= r.log[#r.log].test_loss, "no test set: test_loss is NaN")
  assert(r.run_dir:find("/regression-" .. method .. "-", 1, true), r.run_dir)
  -- the run directory records the dataset's shape, not the dataset
  local saved = dofile(r.run_dir .. "/config.lua")
  assert(saved.task == "dataset" and saved.task_opts.n_train == 480 and saved.task_opts.inputs == 3
    and saved.task_opts.loss == "mse" and saved.task_opts.valid_split == 0.25)
end

-- resuming a run on a dataset: the same numbers as a run that never stopped
do
  local c = cfg { task = reg, method = "dfc-ssa", epochs = 2, task_opts = { valid_split = 128 } }
  local r2 = dfc.train(c)
  c.epochs, c.name = 1, "split"
  local r1 = dfc.train(c)
  c.epochs, c.resume = 2, r1.run_dir
  local r12 = dfc.train(c)
  assert(r12.log[3].valid_loss == r2.log[3].valid_loss, "a resumed run on a dataset differs")
  c.epochs, c.task_opts = 3, { valid_split = 64 }
  fails(function() dfc.train(c) end, "option task_opts")
end

-- classification: three Gaussian blobs in the plane, labels 0..2, a given validation set and a
-- test set; cross-entropy by default (the dataset has labels)
local function blobs(count)
  local centres = { { 1, 0 }, { -0.5, 0.87 }, { -0.5, -0.87 } }
  local P, labels = apical.zeros { count, 2 }, {}
  for i = 0, count - 1 do
    local k = i % 3
    local r, t = 0.35 * math.sqrt(-2 * math.log(uniform())), 2 * math.pi * uniform()
    P[i * 2 + 1], P[i * 2 + 2] = centres[k + 1][1] + r * math.cos(t), centres[k + 1][2] + r * math.sin(t)
    labels[i + 1] = k
  end
  return apical.dataset.arrays { inputs = P, labels = labels }
end
local train, valid, test = blobs(480), blobs(96), blobs(96)
local r = dfc.train(cfg { task = train, method = "dfc", epochs = 4,
  task_opts = { valid = valid, test = test } })
local last = r.log[#r.log]
print(string.format("classification valid error %.3f -> %.3f, test error %.3f", r.log[1].valid_error,
  last.valid_error, r.best.test_error))
assert(r.trainer.task.loss == "ce" and r.trainer.n_out == 3)
assert(last.valid_error < 0.1 and r.best.test_error < 0.1, "the blobs are separable")
assert(r.best.test_loss == r.best.test_loss, "with a test set, test_loss is a number")
-- the same labels under mse on the one-hot targets
local rm = dfc.train(cfg { task = train, method = "dfc-ssa", epochs = 4, task_opts = { valid = valid, loss = "mse" } })
assert(rm.trainer.task.loss == "mse" and rm.log[#rm.log].valid_loss < rm.log[1].valid_loss)

-- refusals, at the line of the call
fails(function() dfc.train(cfg { task = reg, task_opts = { loss = "ce" } }) end, 'task_opts.loss = "ce" needs a dataset with labels')
fails(function() dfc.train(cfg { task = reg, task_opts = { loss = "l1" } }) end, 'task_opts.loss = l1 must be "mse"')
fails(function() dfc.train(cfg { task = train, task_opts = { valid = valid, valid_split = 0.1 } }) end, "valid and valid_split both given")
fails(function() dfc.train(cfg { task = train, task_opts = { valid = reg } }) end, "task_opts.valid has 3 inputs and 2 targets per sample; the training set has 2 and 3")
fails(function() dfc.train(cfg { task = train, task_opts = { test = 5 } }) end, "task_opts.test must be an apical dataset")
fails(function() dfc.train(cfg { task = reg, task_opts = { valid_split = 1.5 } }) end, "task_opts.valid_split = 1.5 must be a fraction in (0, 1)")
fails(function() dfc.train(cfg { task = reg, task_opts = { valid_split = 640 } }) end, "valid_split = 640 leaves 640 of 640 samples")
fails(function() dfc.train(cfg { task = reg, batch = 640 }) end, "fewer than batch = 640")
fails(function() dfc.train(cfg { task = reg, task_opts = { n_train = 100 } }) end, "task_opts.n_train: task dataset has no option n_train")
fails(function() dfc.train(cfg { task = "student_teacher", task_opts = { n_trian = 100 } }) end, "task_opts.n_trian: task student_teacher has no option n_trian")
fails(function() dfc.train(cfg { task = "dataset" }) end, 'unknown task "dataset"')
fails(function() dfc.train(cfg { task = "student_teacher", task_opts = { n_train = -5 } }) end, "task_opts.n_train = -5 must be an integer >= 1")
fails(function() dfc.train(cfg { task = "student_teacher", task_opts = { teacher_hidden = { 4, 0 } } }) end, "task_opts.teacher_hidden[2] = 0 must be a positive integer")
fails(function() dfc.train(cfg { task = "options" }) end, 'unknown task "options"')
fails(function() dfc.train(cfg { task = {} }) end, "option task must be a string or an apical dataset, got table")
fails(function() dfc.train(cfg { task = reg, epochs = -1 }) end, "epochs = -1 must be an integer >= 0")
fails(function() dfc.train(cfg { task = reg, seed = -1 }) end, "seed = -1 must be an integer >= 0")
fails(function() dfc.train(cfg { task = reg, epochs = 1.5 }) end, "epochs = 1.5 must be an integer >= 0")

check.done("test_own_data")
