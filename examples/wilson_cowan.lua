-- wilson_cowan.lua — an excitatory/inhibitory pair (Wilson & Cowan 1972) in voltage form:
--   tau_E dv_E/dt = -v_E + w_EE r_E - w_EI r_I + b_E,   r_E = logistic(v_E)
--   tau_I dv_I/dt = -v_I + w_IE r_E - w_II r_I + b_I,   r_I = logistic(v_I)
-- With these weights the pair settles on a limit cycle; the script prints a short trace and the
-- period measured from upward crossings of r_E through 0.5, with two solvers.
--   build/bin/apical run examples/wilson_cowan.lua [--set drive=1.25] [--set t_end=60]
local apical = require "apical"
local p = apical.params { t_end = 60, drive = 1.25, tau_i = 2, every = 4 }

local m = apical.model { batch = 1 }
local one = m:input { name = "one", size = 1 }
local E = m:population { name = "E", size = 1, neuron = apical.rate { tau = 1 }, activation = "logistic" }
local I = m:population { name = "I", size = 1, neuron = apical.rate { tau = p.tau_i }, activation = "logistic" }
-- gains 1.3 (E) and 2 (I) and thresholds 4 and 3.7 folded into the weights and biases
m:connect(E, E.soma, { name = "EE" }):set_weights { { 1.3 * 16 } }
m:connect(I, E.soma, { name = "EI" }):set_weights { { -1.3 * 12 } }
m:connect(E, I.soma, { name = "IE" }):set_weights { { 2 * 15 } }
m:connect(I, I.soma, { name = "II" }):set_weights { { -2 * 3 } }
m:connect(one, E.soma, { name = "bE" }):set_weights { { 1.3 * (p.drive - 4) } }
m:connect(one, I.soma, { name = "bI" }):set_weights { { 2 * (0 - 3.7) } }

local sim = m:compile()
sim:set_input(one, { { 1 } })

local times = {}
for k = 0, math.floor(p.t_end / 0.05) do times[#times + 1] = k * 0.05 end

local function period(out)
  local rE, tt, ups = out:get(E.rate), out.times, {}
  for k = 2, #tt do
    if rE[k - 1] < 0.5 and rE[k] >= 0.5 and tt[k] > p.t_end / 3 then ups[#ups + 1] = tt[k] end
  end
  if #ups < 2 then return nil end
  return (ups[#ups] - ups[1]) / (#ups - 1)
end

local bdf = sim:run { solver = "cvode-bdf", t_end = p.t_end, rtol = 1e-9, atol = 1e-11, times = times, record = { E.rate, I.rate } }
print(string.format("%8s %10s %10s", "t", "r_E", "r_I"))
local rE, rI = bdf:get(E.rate), bdf:get(I.rate)
for k = 1, #times, math.floor(p.every / 0.05) do
  print(string.format("%8.2f %10.4f %10.4f", times[k], rE[k], rI[k]))
end
local eul = sim:run { solver = "euler", dt = 0.001, t_end = p.t_end, times = times, record = { E.rate } }
local pb, pe = period(bdf), period(eul)
print(string.format("period: cvode-bdf %s (%d steps), euler dt 0.001 %s (%d steps)",
  pb and string.format("%.4f", pb) or "none (no oscillation)", bdf.stats.steps,
  pe and string.format("%.4f", pe) or "none", eul.stats.steps))
