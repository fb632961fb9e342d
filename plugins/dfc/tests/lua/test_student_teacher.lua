-- test_student_teacher.lua — dfc.tasks.student_teacher: the reference's task (the default
-- variant) and the small one. Checked: the split sizes (5000/1000/1000 by default), inputs in
-- [-1, 1] with the uniform distribution's mean and variance, the teacher's shape (15-1000-1000-
-- 1000-1000-5, ReLU hidden, linear output), zero biases and xavier_normal weights scaled by the
-- gain (their sample standard deviation against gain sqrt(2 / (fan_in + fan_out))), the targets
-- against the teacher's forward pass written out here, determinism by seed, the options
-- overriding a variant, the errors.
local apical = require "apical"
local dfc = apical.plugin "dfc"
package.path = (arg[0]:match("^(.*)/") or ".") .. "/?.lua;" .. package.path
local fx = require "dfc_fixture"
local check, assert = fx.check, fx.check.assert

local function approx(a, b, rel, what)
  assert(math.abs(a - b) <= rel * math.abs(b), string.format("%s: %.6g, expected %.6g (rel %g)", what, a, b, rel))
end

local function fails(o, msg)
  local ok, err = pcall(dfc.tasks.student_teacher, o)
  assert(not ok and tostring(err):find(msg, 1, true), tostring(err))
end

-- the defaults: the reference's split
local full = dfc.tasks.student_teacher {}
assert(full.train:size() == 5000 and full.valid:size() == 1000 and full.test:size() == 1000)
assert(full.n_in == 15 and full.n_out == 5 and full.loss == "mse" and full.variant == "reference")

-- a smaller reference task for the checks below
local o = { seed = 7, n_train = 300, n_valid = 50, n_test = 50 }
local t = dfc.tasks.student_teacher(o)
local T = t.teacher
assert(T.L == 5, "teacher layers " .. T.L)
local want_sizes = { 15, 1000, 1000, 1000, 1000, 5 }
for i = 1, 6 do assert(T.sizes[i] == want_sizes[i], "teacher size " .. i) end
assert(T.activations[1] == "relu" and T.activations[4] == "relu" and T.activations[5] == "linear")

-- weights: xavier_normal with gain 3, std 3 sqrt(2 / (fan_in + fan_out)); biases zero
for i = 1, T.L do
  local w, b = T.W[i]:weights(), T.W[i]:bias()
  local s, s2 = 0, 0
  for k = 1, #w do s, s2 = s + w[k], s2 + w[k] ^ 2 end
  local sd = math.sqrt(s2 / #w - (s / #w) ^ 2)
  local want = 3 * math.sqrt(2 / (want_sizes[i] + want_sizes[i + 1]))
  -- the sample std of n normals is within about 3 / sqrt(2 n) of the true one (5 sigma)
  approx(sd, want, math.max(0.01, 5 / math.sqrt(2 * #w)), "weight std of layer " .. i)
  for k = 1, #b do assert(b[k] == 0, "teacher bias") end
end

-- inputs uniform in [-1, 1]: range, mean 0, variance 1/3 (400 x 15 values)
local X = apical.dataset.arrays { inputs = t.train:inputs(), targets = t.train:targets() }:inputs()
local s, s2, lo, hi = 0, 0, math.huge, -math.huge
for k = 1, #X do
  s, s2 = s + X[k], s2 + X[k] ^ 2
  lo, hi = math.min(lo, X[k]), math.max(hi, X[k])
end
assert(lo >= -1 and hi <= 1 and lo < -0.99 and hi > 0.99, string.format("range %g %g", lo, hi))
assert(math.abs(s / #X) < 0.05, "input mean " .. s / #X)
approx(s2 / #X, 1 / 3, 0.06, "input second moment")

-- the targets: the teacher's forward pass written out (ReLU, linear output) for a few samples
local Ws, bs = {}, {}
for i = 1, T.L do Ws[i], bs[i] = T.W[i]:weights(), T.W[i]:bias() end
local function teacher_out(x)
  local r = x
  for i = 1, T.L do
    local n_in, n_out, v = want_sizes[i], want_sizes[i + 1], {}
    for j = 1, n_out do
      local acc = bs[i][j]
      local row = (j - 1) * n_in
      for k = 1, n_in do acc = acc + Ws[i][row + k] * r[k] end
      v[j] = (i < T.L) and math.max(acc, 0) or acc
    end
    r = v
  end
  return r
end
for _, ds in ipairs { t.train, t.valid, t.test } do
  for _, k in ipairs { 1, 17, ds:size() } do
    local x, y = ds:sample(k)
    local want = teacher_out(x)
    for j = 1, 5 do approx(y[j], want[j], 1e-9, string.format("target %d of sample %d", j, k)) end
  end
end

-- the targets' scale: gain 3 makes the output variance tens (the reference's initial loss ~72)
local Y = t.train:targets()
local m2 = 0
for k = 1, #Y do m2 = m2 + Y[k] ^ 2 end
m2 = m2 / #Y
assert(m2 > 10 and m2 < 500, "target second moment " .. m2)

-- determinism by seed
local t2 = dfc.tasks.student_teacher(o)
local t3 = dfc.tasks.student_teacher { seed = 8, n_train = 300, n_valid = 50, n_test = 50 }
local xa, ya = t.train:sample(5)
local xb, yb = t2.train:sample(5)
local xc = t3.train:sample(5)
for k = 1, 15 do assert(xa[k] == xb[k]) end
for k = 1, 5 do assert(ya[k] == yb[k]) end
assert(xa[1] ~= xc[1], "another seed gives other data")

-- options override the variant: a one-hidden-layer tanh teacher with gain 1 and biases
local u = dfc.tasks.student_teacher { seed = 3, n_train = 20, n_valid = 5, n_test = 5, teacher_hidden = { 30 },
  teacher_activation = "tanh", gain = 1, bias_std = 0.5, input = "normal", n_in = 4, n_out = 2 }
assert(u.teacher.L == 2 and u.teacher.sizes[2] == 30 and u.teacher.activations[1] == "tanh")
assert(u.n_in == 4 and u.n_out == 2 and u.train:input_dim() == 4)
local nz = 0
local ub = u.teacher.W[1]:bias()
for k = 1, #ub do if ub[k] ~= 0 then nz = nz + 1 end end
assert(nz == 30, "bias_std gives nonzero biases")
local xu = u.train:sample(1)
assert(math.abs(xu[1]) > 0, "normal inputs")

-- the small variant: N(0, 1) inputs, a 15-20-20-5 tanh teacher
local sm = dfc.tasks.student_teacher { variant = "small", seed = 5, n_train = 100, n_valid = 20, n_test = 30 }
assert(sm.variant == "small" and sm.teacher.sizes[2] == 20 and sm.teacher.L == 3)
assert(sm.teacher.activations[1] == "tanh")

-- errors
fails({ variant = "big" }, 'variant = "big"')
fails({ teacher_size = 3 }, 'unknown option "teacher_size"')
fails({ gain = 0 }, "gain = 0")
fails({ input = "gauss" }, "input = gauss")
fails({ n_train = 0 }, "n_train = 0")
fails({ n_valid = 1.5 }, "n_valid = 1.5")
fails({ bias_std = -1 }, "bias_std = -1")
fails({ teacher_hidden = 5 }, "teacher_hidden must be a list")
check.done("test_student_teacher")
