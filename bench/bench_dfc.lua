-- bench_dfc.lua — time per minibatch (MNIST network 784-256-256-256-10, batch 128, the paper's
-- settings) of every trainer step, medians of several minibatches, all in one run. A method is
-- method[:solver[:threads]]; threads > 1 splits each minibatch's simulation into that many
-- parts run at once (dfc.train's threads).
--   build/bin/apical run bench/bench_dfc.lua [--set reps=5] [--set methods=bp,dfc-ssa,dfc:euler:2]
--     [--set detail=true]  (a line of the last minibatch's solver statistics under each row)
local apical = require "apical"
local dfc = apical.plugin "dfc"
local p = apical.params { reps = 5, methods = "bp,dfa,dfc-ssa,dfc-ss:euler,dfc:euler,dfc:cvode-bdf,dfc:cvode-adams",
  rtol = 1e-6, atol = 1e-8, settle_tol = 0.0, ref_rtol = 0.0, tau_v = 0.2,
  linear_solver = "default", preconditioner = "default", detail = false }
-- ref_rtol > 0: the continuous DFC rows also give the relative difference of their update on the
-- first minibatch from the exact flow's (cvode-bdf at ref_rtol, atol ref_rtol x 1e-2, one
-- simulation), before any step; tau_v, linear_solver and preconditioner as in dfc.train (the
-- last two for the CVODE rows only)

local function median(t)
  table.sort(t)
  local n = #t
  return n % 2 == 1 and t[(n + 1) // 2] or 0.5 * (t[n // 2] + t[n // 2 + 1])
end

local blas_default = apical.blas_threads()
local function trainer(method, solver, threads, rtol, atol)
  local cvode = method:sub(1, 3) == "dfc" and solver:sub(1, 5) == "cvode"
  -- the paper's settings as dfc.train's defaults: those a method does not read (the controller's
  -- with bp, rtol under Euler, ...) are not read, where given options would be refused
  return dfc.trainer { task = "mnist", hidden = { 256, 256, 256 }, method = method,
    progress = false, checkpoint = false,
    defaults = { solver = solver, optimizer = "adam", beta1 = 0.99, beta2 = 0.99, eps = 9.45e-8,
      lr = 9.27e-5, normalize_lr = true, lambda = 0.0779, k_p = 2.0, alpha = 0.00139, tau_v = p.tau_v,
      dt = 0.02, tmax = 1000, rtol = rtol, atol = atol, settle_tol = p.settle_tol, threads = threads,
      linear_solver = cvode and p.linear_solver or nil, preconditioner = cvode and p.preconditioner or nil } }
end
local function first_update(t)
  for X, Y in t.task.train:batches { batch = 128 } do
    t.opt:zero()
    t:gradient(X, Y)
    local g = {}
    for i = 1, t.L do
      local dW, db = t.opt:grad(t.net.W[i])
      for k = 1, #dW do g[#g + 1] = dW[k] end
      for k = 1, #db do g[#g + 1] = db[k] end
    end
    t.opt:zero()
    return g
  end
end
local ref
if p.ref_rtol > 0 then ref = first_update(trainer("dfc", "cvode-bdf", 1, p.ref_rtol, p.ref_rtol * 1e-2)) end
-- cpu s: the process's processor time per minibatch (every thread's), a steadier measure than
-- the wall time on a loaded machine
print(string.format("| method | solver | threads | s / minibatch | cpu s / minibatch | steps | rhs evals | update vs exact flow |"))
print("|---|---|---|---|---|---|---|---|")
for spec in p.methods:gmatch("[^,]+") do
  local method, solver, threads = spec:match("^([^:]+):?([^:]*):?(%d*)$")
  if not method then error("bench_dfc: method " .. spec .. " is not method[:solver[:threads]]", 0) end
  if solver == "" then solver = "euler" end
  threads = tonumber(threads) or 1
  -- one simulation: BLAS with its default threads; a split minibatch: BLAS single-threaded
  apical.blas_threads(threads > 1 and 1 or blas_default)
  local t = trainer(method, solver, threads, p.rtol, p.atol)
  local err = "-"
  if ref and method == "dfc" then
    local g, num, den = first_update(t), 0, 0
    for k = 1, #g do num, den = num + (g[k] - ref[k]) ^ 2, den + ref[k] ^ 2 end
    err = string.format("%.2e", math.sqrt(num / den))
  end
  local times, cpus, steps, evals, last = {}, {}, 0, 0, nil
  local k = 0
  for X, Y in t.task.train:batches { batch = 128 } do
    local t0, c0 = apical.clock(), os.clock()
    local st = t:step(X, Y)
    times[#times + 1] = apical.clock() - t0
    cpus[#cpus + 1] = os.clock() - c0
    if st then steps, evals, last = st.steps, st.rhs_evals, st end
    k = k + 1
    if k >= p.reps then break end
  end
  print(string.format("| %s | %s | %d | %.4f | %.4f | %s | %s | %s |", method, method:sub(1, 3) == "dfc" and method ~= "dfc-ssa" and solver or "-",
    threads, median(times), median(cpus), steps > 0 and string.format("%.0f", steps) or "-", evals > 0 and string.format("%.0f", evals) or "-", err))
  if p.detail and last then -- the last minibatch's solver statistics (per part)
    print(string.format("  (last minibatch: %.1f Newton iterations, %.1f linear iterations, %.1f Jacobian setups or J.v products, %.1f error test and %.1f convergence failures)",
      last.nonlin_iters or 0, last.lin_iters or 0, last.jac_evals or 0, last.err_test_fails or 0, last.conv_fails or 0))
  end
end
