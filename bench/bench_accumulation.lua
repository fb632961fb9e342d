-- bench_accumulation.lua — cost and accuracy of the plasticity accumulators on the MNIST-sized
-- DFC network (784-256-256-256-10, batch 128, forward rules with biases on W1..W4), all in one
-- run. Results: bench/ACCUMULATION.md.
--   build/bin/apical run bench/bench_accumulation.lua --set mode=euler [--set reps=5]
--       declared-order Euler, dt 0.02, 999 steps: s per run with and without accumulation
--   build/bin/apical run bench/bench_accumulation.lua --set mode=cvode [--set rtols=1e-4,1e-5]
--       cvode-bdf: s per run and relative error of the update against a reference (cvode-bdf,
--       rtol 1e-10, quadrature with quad_errcon), for the quadrature with and without
--       quad_errcon, and without accumulation ("none"); --set ref=false skips the reference
--   The method "gauss" (--set methods=gauss, and --set check_ref=true) needs the experiment
--   bench/gauss_accumulation.patch applied (see bench/ACCUMULATION.md).
local apical = require "apical"
local dfc = apical.plugin "dfc"
local p = apical.params { mode = "cvode", reps = 5, rtols = "1e-4,1e-5,1e-6,1e-7", ref_rtol = 1e-10,
  methods = "quadrature,quadrature+errcon,none", check_ref = false, ref = true }

local function median(t)
  local c = {}
  for i, v in ipairs(t) do c[i] = v end
  table.sort(c)
  local n = #c
  return n % 2 == 1 and c[(n + 1) // 2] or 0.5 * (c[n // 2] + c[n // 2 + 1])
end

local net = dfc.network { sizes = { 784, 256, 256, 256, 10 }, batch = 128, k_p = 2, alpha = 0.00139, tau_v = 0.2 }
dfc.weight_product { model = net.model }
local sim = net.model:compile()
local X, Y = apical.zeros { 128, 784 }, apical.zeros { 128, 10 }
local R, RS = apical.zeros { 128, 10 }, apical.zeros { 128, 10 }
for i = 1, #X do X[i] = (i * 7919 % 1000) / 1000 end
for b = 0, 127 do Y[b * 10 + (b % 10) + 1] = 1 end
dfc.forward { model = net.model, x = X, out = R }
dfc.targets { rL = R, y = Y, loss = "ce", lambda = 0.0779, mode = "mean", out = RS }
sim:set_input("x", X)
sim:set_input("target", RS)

-- every accumulated update (dW and db of W1..W4) as one list of numbers
local function updates(out)
  local v = {}
  for i = 1, net.L do
    local dW, db = out:update(net.W[i])
    for k = 1, #dW do v[#v + 1] = dW[k] end
    for k = 1, #db do v[#v + 1] = db[k] end
  end
  return v
end

local function rel_err(a, ref)
  local num, den = 0.0, 0.0
  for i = 1, #ref do
    num = num + (a[i] - ref[i]) ^ 2
    den = den + ref[i] ^ 2
  end
  return math.sqrt(num / den)
end

local function timed(opts, reps)
  local times, out = {}, nil
  for _ = 1, reps do
    local t0 = apical.clock()
    out = sim:run(opts)
    times[#times + 1] = apical.clock() - t0
  end
  return median(times), out
end

if p.mode == "euler" then
  print("| accumulate | s / run (median) | steps |")
  print("|---|---|---|")
  for _, acc in ipairs { true, false } do
    local opts = { solver = "euler", dt = 0.02, steps = 999, ordered = true,
      order = { "ctl", "h1", "h2", "h3", "h4" }, accumulate = acc, accumulation = "all" }
    sim:run(opts) -- warm-up
    local t, out = timed(opts, p.reps)
    print(string.format("| %s | %.3f | %d |", tostring(acc), t, out.stats.steps))
  end
  return
end

-- the run options of a method; accumulation_method is passed for "gauss" only (experiment patch)
local function cvode_opts(m, rtol)
  local o = { solver = "cvode-bdf", t_end = 19.98, rtol = rtol, atol = rtol * 1e-2,
    accumulate = m ~= "none", quad_errcon = m == "quadrature+errcon" }
  if m == "gauss" then o.accumulation_method = "gauss" end
  return o
end

local ref = nil
if p.ref then
  local t0 = apical.clock()
  local ref_out = sim:run(cvode_opts("quadrature+errcon", p.ref_rtol))
  ref = updates(ref_out)
  print(string.format("reference: cvode-bdf rtol %g, quadrature + quad_errcon: %d steps, %.1f s",
    p.ref_rtol, ref_out.stats.steps, apical.clock() - t0))
  if p.check_ref then
    -- the same update by the other method, and at a tighter tolerance
    for _, c in ipairs { { "gauss", p.ref_rtol }, { "quadrature+errcon", p.ref_rtol * 0.1 },
      { "gauss", p.ref_rtol * 0.1 } } do
      local o = sim:run(cvode_opts(c[1], c[2]))
      print(string.format("%s at rtol %g: %d steps, rel. difference from the reference %.2e", c[1],
        c[2], o.stats.steps, rel_err(updates(o), ref)))
    end
  end
end
print()
print("| rtol | method | s / run (median) | steps | rhs evals | rel. error of the update |")
print("|---|---|---|---|---|---|")
for rs in p.rtols:gmatch("[^,]+") do
  local rtol = tonumber(rs)
  for m in p.methods:gmatch("[^,]+") do
    local opts = cvode_opts(m, rtol)
    sim:run(opts) -- warm-up (first-touch page faults, BLAS threads)
    local t, out = timed(opts, p.reps)
    local err = (m == "none" or not ref) and "-" or string.format("%.2e", rel_err(updates(out), ref))
    print(string.format("| %g | %s | %.3f | %d | %d | %s |", rtol, m, t, out.stats.steps,
      out.stats.rhs_evals, err))
  end
end
