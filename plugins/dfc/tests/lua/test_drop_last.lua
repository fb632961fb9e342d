-- test_drop_last.lua — dfc.train's drop_last = false: the short last minibatch of an epoch (here
-- 12 = 8 + 4 samples) is trained as a minibatch of its own, as the PyTorch reference's DataLoader
-- does. Checked against an independent schedule: a trainer of batch 8 steps on the epoch's first
-- 8 samples, its weights go into a trainer of batch 4, which steps on the last 4; the drop_last =
-- false run must end with the weights of the second (its loss, targets and update means over the
-- 4 samples, not the padded 8). The same for a feedback pre-training epoch (the sleep phase on a
-- network of 4 rows; with fb_threads = 2 split into two parts of 2 as the batch-4 trainer splits
-- its minibatch). drop_last = true (the default) ends where the first trainer does.
local apical = require "apical"
local dfc = apical.plugin "dfc"
local sleep = require "apical.plugins.dfc.sleep"

local tmp = os.tmpname()
os.remove(tmp)
assert(os.execute("mkdir -p '" .. tmp .. "'"))

local SEED = 7
local function cfg(method, extra)
  local c = { task = "student_teacher", method = method, batch = 8, epochs = 1, optimizer = "sgd",
    lr = 0.2, seed = SEED, progress = false, checkpoint = false, out_dir = tmp,
    task_opts = { variant = "small", n_train = 12, n_valid = 4, n_test = 4 } }
  if method == "dfc" or method == "dfc-ss" then c.tmax, c.dt = 40, 0.05 end
  for k, v in pairs(extra or {}) do c[k] = v end
  return c
end

local function close(a, b, what)
  assert(#a == #b, what .. ": sizes")
  for k = 1, #a do
    local tol = 1e-12 * math.max(1, math.abs(a[k]), math.abs(b[k]))
    assert(math.abs(a[k] - b[k]) <= tol,
      string.format("%s[%d]: %.17g vs %.17g", what, k, a[k], b[k]))
  end
end

local function same_weights(ta, tb, what, kinds)
  for i = 1, ta.L do
    for _, p in ipairs(kinds or { "W" }) do
      close(ta.net[p][i]:weights(), tb.net[p][i]:weights(), string.format("%s: %s%d", what, p, i))
      if p == "W" then close(ta.net[p][i]:bias(), tb.net[p][i]:bias(), string.format("%s: b%d", what, i)) end
    end
  end
end

local function differs(ta, tb)
  for i = 1, ta.L do
    local a, b = ta.net.W[i]:weights(), tb.net.W[i]:weights()
    for k = 1, #a do if a[k] ~= b[k] then return true end end
  end
  return false
end

-- the epoch's minibatches in the trainers' order: { X, Y, count } (rows past count are zero)
local function minibatches(task, seed, epoch)
  local out = {}
  for X, Y, _, count in task.train:batches { batch = 8, shuffle = true, seed = seed, epoch = epoch } do
    out[#out + 1] = { apical.array(X), apical.array(Y), count }
  end
  assert(#out == 2 and out[1][3] == 8 and out[2][3] == 4, "12 samples: a minibatch of 8, one of 4")
  return out
end

-- forward learning, each kind of method (simulated, steady state, analytic baselines)
for _, m in ipairs { { "dfc-ssa", "weight_product" }, { "dfc", "weight_product" }, { "dfc-ss", "weight_product" },
  { "dfa" }, { "bp" } } do
  local method, fb = m[1], m[2]
  local run = dfc.train(cfg(method, { feedback = fb, drop_last = false }))
  local kept = dfc.train(cfg(method, { feedback = fb }))
  local t8 = dfc.trainer(cfg(method, { feedback = fb }))
  local t4 = dfc.trainer(cfg(method, { feedback = fb, batch = 4 }))
  local mb = minibatches(t8.task, SEED, 1)
  local l8 = t8:batch_loss(mb[1][1], mb[1][2])
  t8:step(mb[1][1], mb[1][2])
  same_weights(kept.trainer, t8, method .. ", drop_last = true")
  dfc.copy_weights { from = t8.net.model, to = t4.net.model, which = "WQ" }
  local X4, Y4 = mb[2][1]:rows(1, 4), mb[2][2]:rows(1, 4)
  local l4 = t4:batch_loss(X4, Y4)
  t4:step(X4, Y4)
  same_weights(run.trainer, t4, method .. ", drop_last = false")
  assert(differs(run.trainer, kept.trainer), method .. ": the short minibatch moved the weights")
  -- the epoch's training loss: the mean over its two minibatches (each before its update)
  close({ run.log[2].train_loss }, { (l8 + l4) / 2 }, method .. ": train_loss")
  print(string.format("%-8s drop_last = false: the short minibatch trained as one of 4 samples", method))
end

-- trained feedback: a pre-training epoch (epochs = 0: the feedback alone); with fb_threads = 2
-- the short minibatch is split as a full one is (2 + 2 rows, noise streams 1 and 2: those of
-- the batch-4 trainer's two parts)
for _, fb_threads in ipairs { 1, 2 } do
  local extra = { feedback = "trained", epochs = 0, epochs_fb = 1, tmax_fb = 20, stability_check = false,
    fb_threads = fb_threads }
  local function with(e)
    local c = {}
    for k, v in pairs(extra) do c[k] = v end
    for k, v in pairs(e or {}) do c[k] = v end
    return cfg("dfc-ssa", c)
  end
  local run = dfc.train(with { drop_last = false })
  local t8 = dfc.trainer(with())
  local t4 = dfc.trainer(with { batch = 4 })
  local mb = minibatches(t8.task, sleep.shuffle_seed(SEED), 1)
  t8.opt_fb_init:zero()
  t8.sleep:gradient(mb[1][1], t8.opt_fb_init, sleep.noise_seed(SEED, 1, 1))
  t8.opt_fb_init:step()
  dfc.copy_weights { from = t8.net.model, to = t4.net.model, which = "WQ" }
  t4.opt_fb_init:zero()
  t4.sleep:gradient(mb[2][1]:rows(1, 4), t4.opt_fb_init, sleep.noise_seed(SEED, 1, 2))
  t4.opt_fb_init:step()
  same_weights(run.trainer, t4, "feedback pre-training, drop_last = false, fb_threads = " .. fb_threads, { "Q" })
  print(string.format("sleep phase, fb_threads = %d: the short minibatch trained as one of 4 samples", fb_threads))
end

-- the combinations without a short minibatch's simulation of its own are refused
local ok, err = pcall(dfc.trainer, cfg("dfc", { drop_last = false, feedback = "trained", single_phase = true,
  extra_fb_epochs = 0 }))
assert(not ok and tostring(err):find("drop_last = false is not available with single_phase", 1, true), tostring(err))

os.execute("rm -rf '" .. tmp .. "'")
print("drop_last: ok")
