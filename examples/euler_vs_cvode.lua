-- euler_vs_cvode.lua — how far the published fixed-step scheme is from the exact flow, for a
-- trained network: per-sample difference of the controlled steady state and relative
-- difference of the DFC weight update, as functions of Euler's dt (same simulated time), next
-- to the cost of each; CVODE at several tolerances for comparison. Writes a CSV and a picture.
--   build/bin/apical run examples/euler_vs_cvode.lua [--set epochs=3] [--set out=runs/euler-vs-cvode]
--   build/bin/apical run examples/euler_vs_cvode.lua --set run=runs/<a finished run directory>
-- Without `run`, a student-teacher network trained briefly with DFC-SSA is used over T; with
-- it, the network of that run's last checkpoint (any task, e.g. MNIST) over its own simulated
-- time (tmax - 1) dt, with its controller settings.
local apical = require "apical"
local dfc = apical.plugin "dfc"
local plot = require "apical.plot"
local p = apical.params { epochs = 3, T = 5.0, out = "runs/euler-vs-cvode", seed = 42, run = "",
  ref_rtol = 1e-11 }

local t
if p.run ~= "" then
  -- the trained network of a run directory: its configuration (simulated as DFC), the weights
  -- of its last checkpoint (read as data: rundir.read)
  local rundir = require "apical.plugins.dfc.rundir"
  local cfg, state = rundir.read(p.run)
  cfg.resume, cfg.progress, cfg.measures_every, cfg.method = "", false, 0, "dfc"
  if cfg.single_phase then cfg.single_phase, cfg.extra_fb_epochs = false, nil end
  t = dfc.trainer(cfg)
  rundir.load_weights(t, p.run)
  p.T = (cfg.tmax - 1) * cfg.dt
  print(string.format("network of %s (epoch %d), T = %g", p.run, state.epoch, p.T))
else
  -- a network trained briefly with DFC-SSA (fast), then one fixed minibatch
  local r = dfc.train { task = "student_teacher", method = "dfc-ssa", optimizer = "adam", lr = 0.01,
    epochs = p.epochs, seed = p.seed, progress = false, checkpoint = false, out_dir = p.out,
    task_opts = { variant = "small" } }
  t = r.trainer
end
local X, Y
for bx, by in t.task.test:batches { batch = t.B } do X, Y = bx, by break end
t:targets(X, Y)
local sim = t.sim or t.net.model:compile()
sim:set_input("x", X)
sim:set_input("target", t.rstar)

local function run(opts)
  local t0 = apical.clock()
  local out = sim:run(opts)
  local wall = apical.clock() - t0
  local g = {}
  for i = 1, t.L do
    local dw, db = out:update(t.net.W[i])
    g[#g + 1], g[#g + 2] = dw, db
  end
  return g, sim:read(t.net.h[t.L].rate), wall, out.stats
end
-- the reference: CVODE at ref_rtol (--set ref_rtol=1e-9 keeps a large network's reference
-- affordable)
local ref_g, ref_r = run { solver = "cvode-bdf", t_end = p.T, rtol = p.ref_rtol, atol = p.ref_rtol * 1e-2,
  quad_errcon = true }

local function compare(g, rL)
  local num, den = 0, 0
  for k = 1, #g do
    for i = 1, #g[k] do
      num = num + (g[k][i] - ref_g[k][i]) ^ 2
      den = den + ref_g[k][i] ^ 2
    end
  end
  local n = rL.shape[2]
  local worst = 0
  for b = 0, rL.shape[1] - 1 do
    local d = 0
    for j = 1, n do d = d + (rL[b * n + j] - ref_r[b * n + j]) ^ 2 end
    worst = math.max(worst, math.sqrt(d))
  end
  return math.sqrt(num / den), worst
end

apical.mkdir(p.out)
local rows = { "scheme,dt_or_rtol,update_rel_diff,max_sample_state_diff,wall_seconds,rhs_evals" }
print(string.format("%-22s %12s %14s %10s %10s", "scheme", "update diff", "state diff", "wall s", "rhs evals"))
local order = { "ctl" }
for i = 1, t.L do order[#order + 1] = "h" .. i end
-- Euler at the network's own dt (the run's, or 0.005) and at 8x, 4x, 2x, 1/2, 1/4, 1/8 of it
local dt0 = p.run ~= "" and t.cfg.dt or 0.005
for _, f in ipairs { 8, 4, 2, 1, 0.5, 0.25, 0.125 } do
  local dt = dt0 * f
  local g, rL, wall, st = run { solver = "euler", dt = dt, steps = math.floor(p.T / dt + 0.5), ordered = true,
    order = order, accumulation = "left" }
  local du, ds = compare(g, rL)
  print(string.format("%-22s %12.3e %14.3e %10.4f %10d", "euler dt " .. dt, du, ds, wall, st.rhs_evals))
  rows[#rows + 1] = string.format("euler,%g,%.6e,%.6e,%.6g,%d", dt, du, ds, wall, st.rhs_evals)
end
for _, rt in ipairs { 1e-4, 1e-6, 1e-8 } do
  if rt <= p.ref_rtol then break end
  local g, rL, wall, st = run { solver = "cvode-bdf", t_end = p.T, rtol = rt, atol = rt * 1e-2, quad_errcon = true }
  local du, ds = compare(g, rL)
  print(string.format("%-22s %12.3e %14.3e %10.4f %10d", "cvode-bdf rtol " .. rt, du, ds, wall, st.rhs_evals))
  rows[#rows + 1] = string.format("cvode,%g,%.6e,%.6e,%.6g,%d", rt, du, ds, wall, st.rhs_evals)
end
local csv = p.out .. "/euler_vs_cvode.csv"
local f = assert(io.open(csv .. ".tmp", "w"))
f:write(table.concat(rows, "\n"), "\n")
f:close()
assert(os.rename(csv .. ".tmp", csv))
-- the Euler rows: error against dt (log-log)
local ecsv = p.out .. "/euler_only.csv"
f = assert(io.open(ecsv .. ".tmp", "w"))
f:write("dt,update_rel_diff,max_sample_state_diff\n")
for k = 2, #rows do
  local scheme, dt, du, ds = rows[k]:match("^(%a+),([^,]+),([^,]+),([^,]+)")
  if scheme == "euler" then f:write(dt, ",", du, ",", ds, "\n") end
end
f:close()
assert(os.rename(ecsv .. ".tmp", ecsv))
plot.lines { out = p.out .. "/euler_vs_cvode.png", title = "Euler against the exact flow (first order in dt)",
  xlabel = "dt", ylabel = "difference", logy = true, series = {
    { file = ecsv, x = "dt", y = "update_rel_diff", title = "weight update (relative)" },
    { file = ecsv, x = "dt", y = "max_sample_state_diff", title = "steady state (max over samples)" } } }
print("wrote " .. csv .. " and " .. p.out .. "/euler_vs_cvode.png")
