-- dynamics_one_sample.lua — the dynamics of one sample (the paper's Fig. 1D): the output rates
-- and the control signal over time as the controller pushes the output to its target, with
-- the CVODE and the published Euler trajectories overlaid. Writes dynamics.csv and
-- dynamics.png (gnuplot) into the output directory.
--   build/bin/apical run examples/dynamics_one_sample.lua [--set out=runs/dynamics] [--set lambda=0.5]
local apical = require "apical"
local dfc = apical.plugin "dfc"
local plot = require "apical.plot"
local p = apical.params { out = "runs/dynamics", lambda = 0.5, k_p = 1.5, alpha = 0.0015, dt = 0.005,
  tmax = 1000, seed = 42 }

apical.mkdir(p.out)
local task = dfc.tasks.student_teacher { variant = "small", seed = p.seed, n_train = 128, n_valid = 1, n_test = 1 }
local net = dfc.network { sizes = { 15, 10, 10, 5 }, batch = 1, k_p = p.k_p, alpha = p.alpha, tau_v = 0.2, seed = p.seed }
dfc.weight_product { model = net.model }
local sim = net.model:compile()
local x, y = task.train:sample(1)
local X, Y = apical.array(x, { 1, 15 }), apical.array(y, { 1, 5 })
local rminus, rstar = apical.zeros { 1, 5 }, apical.zeros { 1, 5 }
dfc.forward { model = net.model, x = X, out = rminus }
dfc.targets { rL = rminus, y = Y, loss = "mse", lambda = p.lambda, mode = "sample", out = rstar }
sim:set_input("x", X)
sim:set_input("target", rstar)

local T = (p.tmax - 1) * p.dt
local times = {}
for k = 0, p.tmax - 1, 10 do times[#times + 1] = k * p.dt end
local cv = sim:run { solver = "cvode-bdf", t_end = T, rtol = 1e-8, atol = 1e-10, record = { net.h[3].rate, net.ctl.u }, times = times }
local eu = sim:run { solver = "euler", dt = p.dt, steps = p.tmax - 1, ordered = true, order = { "ctl", "h1", "h2", "h3" },
  record = { net.h[3].rate, net.ctl.u }, times = times }

local rc, uc, re, ue = cv:get(net.h[3].rate), cv:get(net.ctl.u), eu:get(net.h[3].rate), eu:get(net.ctl.u)
local cols = { "t" }
for j = 1, 5 do cols[#cols + 1] = "r" .. j .. "_cvode" end
for j = 1, 5 do cols[#cols + 1] = "r" .. j .. "_euler" end
for j = 1, 5 do cols[#cols + 1] = "u" .. j .. "_cvode" end
for j = 1, 5 do cols[#cols + 1] = "u" .. j .. "_euler" end
for j = 1, 5 do cols[#cols + 1] = "target" .. j end
local lines = { table.concat(cols, ",") }
for k = 1, #times do
  local row = { string.format("%.6g", times[k]) }
  for j = 1, 5 do row[#row + 1] = string.format("%.10g", rc[(k - 1) * 5 + j]) end
  for j = 1, 5 do row[#row + 1] = string.format("%.10g", re[(k - 1) * 5 + j]) end
  for j = 1, 5 do row[#row + 1] = string.format("%.10g", uc[(k - 1) * 5 + j]) end
  for j = 1, 5 do row[#row + 1] = string.format("%.10g", ue[(k - 1) * 5 + j]) end
  for j = 1, 5 do row[#row + 1] = string.format("%.10g", rstar[j]) end
  lines[#lines + 1] = table.concat(row, ",")
end
local csv = p.out .. "/dynamics.csv"
local f = assert(io.open(csv .. ".tmp", "w"))
f:write(table.concat(lines, "\n"), "\n")
f:close()
assert(os.rename(csv .. ".tmp", csv))

local series = {}
for j = 1, 2 do
  series[#series + 1] = { file = csv, x = "t", y = "r" .. j .. "_cvode", title = "r_" .. j .. " CVODE", style = "lines" }
  series[#series + 1] = { file = csv, x = "t", y = "r" .. j .. "_euler", title = "r_" .. j .. " Euler", style = "points" }
  series[#series + 1] = { file = csv, x = "t", y = "target" .. j, title = "r*_" .. j, style = "lines dt 2" }
end
plot.lines { out = p.out .. "/dynamics.png", title = "one sample: output rates reaching their targets",
  xlabel = "t / tau_u", ylabel = "rate", series = series }
local us = {}
for j = 1, 2 do
  us[#us + 1] = { file = csv, x = "t", y = "u" .. j .. "_cvode", title = "u_" .. j .. " CVODE", style = "lines" }
  us[#us + 1] = { file = csv, x = "t", y = "u" .. j .. "_euler", title = "u_" .. j .. " Euler", style = "points" }
end
plot.lines { out = p.out .. "/control.png", title = "one sample: control signal", xlabel = "t / tau_u", ylabel = "u", series = us }

local last = #times
local err = 0
for j = 1, 5 do err = math.max(err, math.abs(rc[(last - 1) * 5 + j] - re[(last - 1) * 5 + j])) end
print(string.format("CVODE: %d steps; Euler: %d steps; largest output difference at t = %g: %.3g",
  cv.stats.steps, eu.stats.steps, times[last], err))
print("wrote " .. csv .. ", " .. p.out .. "/dynamics.png, " .. p.out .. "/control.png")
