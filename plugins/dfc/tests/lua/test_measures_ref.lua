-- test_measures_ref.lua — the reference code's measures of Fig. 3 in measures.lua beside ours:
-- condition1_ref (the kernel's power = 1) and condition1 (power 2), stability_mean (the batch
-- mean of the per-sample largest real part; stability stays the batch maximum), the mn_ref and
-- gn_ref updates (dfc.mn_update weighted + nonlinear, and unweighted, both with gamma_ref, 0.1
-- by default), their angles (0 with themselves), gamma_ref overriding per call; and the
-- trainer's measures.csv and log.csv carrying the new columns.
local apical = require "apical"
local dfc = apical.plugin "dfc"
package.path = (arg[0]:match("^(.*)/") or ".") .. "/?.lua;" .. package.path
local fx = require "dfc_fixture"
local check, assert = fx.check, fx.check.assert

local near = check.near

local function inputs(B, n)
  local X = apical.zeros { B, n }
  for k = 1, #X do X[k] = 1.5 * math.sin(12.9898 * k) end
  return X
end

local B = 8
local net = dfc.network { sizes = { 4, 6, 5, 3 }, batch = B, activation = "tanh", output_activation = "linear",
  k_p = 1.5, alpha = 0.05, tau_v = 0.2, seed = 7 }
dfc.weight_product { model = net.model }
local m = net.model
local X = inputs(B, 4)
local rl, T = apical.zeros { B, 3 }, apical.zeros { B, 3 }
dfc.forward { model = m, x = X, out = rl }
for k = 1, #T do T[k] = rl[k] + 0.3 * math.cos(3.1 * k) end

local ms = dfc.measures_new(net)
local r = ms:compute { x = X, target = T }
assert(next(r.errors) == nil, "errors: " .. tostring(next(r.errors)))

-- Condition 1 both ways, against the kernel
local c1 = apical.zeros { B }
dfc.condition1 { model = m, x = X, out = c1, power = 1 }
near(r.condition1_ref, c1:sum() / B, 1e-15, "condition1_ref")
dfc.condition1 { model = m, x = X, out = c1 }
near(r.condition1, c1:sum() / B, 1e-15, "condition1")
assert(r.condition1_ref ~= r.condition1)

-- stability: the batch mean beside the batch maximum
local st = apical.zeros { B }
dfc.stability { model = m, x = X, target = T, alpha = 0.05, k_p = 1.5, tau_v = 0.2, out = st }
local hi = -math.huge
for k = 1, #st do hi = math.max(hi, st[k]) end
near(r.stability_mean, st:sum() / B, 1e-15, "stability_mean")
near(r.stability, hi, 0, "stability")
assert(r.stability_mean <= r.stability)

-- the updates: the kernels with gamma 0.1 (the default gamma_ref)
local function flat(o)
  local v = {}
  for i = 1, 3 do
    local dW, db = o:grad(net.W[i])
    for k = 1, #dW do v[#v + 1] = dW[k] end
    for k = 1, #db do v[#v + 1] = db[k] end
  end
  return v
end
local function concat(layers)
  local v = {}
  for i = 1, 3 do for _, x in ipairs(layers[i]) do v[#v + 1] = x end end
  return v
end
local o = apical.optim.sgd { model = m, projections = net.W, lr = 1 }
dfc.mn_update { model = m, x = X, target = T, gamma = 0.1, optim = o, weighted = 1, nonlinear = 1 }
local mn_ref = flat(o)
local got = concat(r.updates.mn_ref)
assert(#got == #mn_ref)
for k = 1, #got do near(got[k], mn_ref[k], 0, "mn_ref " .. k) end
o:zero()
dfc.mn_update { model = m, x = X, target = T, gamma = 0.1, optim = o }
local gn_ref = flat(o)
got = concat(r.updates.gn_ref)
for k = 1, #got do near(got[k], gn_ref[k], 0, "gn_ref " .. k) end

-- angles: the update equal to mn_ref is 0 degrees from it, and its angle with gn_ref is
-- dfc.angle of the two vectors
o:zero()
dfc.mn_update { model = m, x = X, target = T, gamma = 0.1, optim = o, weighted = 1, nonlinear = 1 }
local ra = ms:compute { x = X, target = T, update = o }
assert(ra.angles.mn_ref.all < 1e-6, "mn_ref with itself " .. ra.angles.mn_ref.all)
near(ra.angles.gn_ref.all, dfc.angle(mn_ref, gn_ref), 1e-9, "angle(mn_ref, gn_ref)")
print(string.format("mn_ref vs gn_ref %.2f degrees, vs wmn %.2f, vs bp %.2f", ra.angles.gn_ref.all,
  ra.angles.wmn.all, ra.angles.bp.all))
assert(ra.angles.gn_ref.all > 0.01)

-- gamma_ref: per call and per object
local r0 = ms:compute { x = X, target = T, update = o, gamma_ref = 0, skip = { "gn", "stability" } }
assert(math.abs(r0.angles.mn_ref.all - ra.angles.mn_ref.all) > 1e-3, "gamma_ref has no effect")
local ms0 = dfc.measures_new(net, { gamma_ref = 0 })
local r00 = ms0:compute { x = X, target = T, update = o, skip = { "gn", "stability" } }
near(r00.angles.mn_ref.all, r0.angles.mn_ref.all, 0, "gamma_ref per object")
local ok, err = pcall(dfc.measures_new, net, { gamma_ref = -1 })
assert(not ok and tostring(err):find("gamma_ref = -1", 1, true), tostring(err))

-- the trainer: the new columns in measures.csv and log.csv
local out = os.getenv("TMPDIR") or "/tmp"
local res = dfc.train { task = "student_teacher", method = "dfc-ssa", hidden = { 6, 5 }, epochs = 1, batch = 32,
  progress = false, checkpoint = false, out_dir = out, measures_every = 2, measures_gamma_ref = 0.2,
  task_opts = { variant = "small", n_train = 128, n_valid = 32, n_test = 32 } }
local f = assert(io.open(res.run_dir .. "/measures.csv"))
local header = f:read("l")
f:close()
for _, c in ipairs { "condition1_ref", "stability_mean", "angle_mn_ref", "angle_gn_ref", "angle_mn_ref_1" } do
  assert(header:find(c, 1, true), "measures.csv lacks " .. c)
end
local last = res.log[#res.log]
assert(last.angle_mn_ref == last.angle_mn_ref and last.angle_mn_ref > 0, "log angle_mn_ref")
assert(last.condition1_ref > 0 and last.stability_mean < 0, "log condition1_ref / stability_mean")
os.execute("rm -rf '" .. res.run_dir .. "'")
check.done("test_measures_ref")
