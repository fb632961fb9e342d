-- test_stability.lua — the fixed-step stability guard (docs/solvers.md, "Fixed-step
-- stability") on closed forms: a leaky unit tau v' = -v + x, whose Jacobian is -1/tau, so that
-- euler, euler-maruyama and declared-order euler are stable exactly for dt <= 2 tau (one step
-- multiplies a perturbation by 1 - dt/tau) and rk4 for dt <= 2.7853 tau (by R(-dt/tau),
-- R(z) = 1 + z + z^2/2 + z^3/6 + z^4/24). The warning at an unstable dt and none at a stable one
-- for each scheme, the estimated bound, the growth watch, a circuit that grows by itself (no
-- warning), results unchanged by the guard, the option's errors.
local apical = require "apical"
package.path = (arg[0]:match("^(.*)/") or ".") .. "/?.lua;" .. package.path
local check = require "check"

local TAU = 0.5
local m = apical.model { batch = 2 }
local x = m:input { name = "x", size = 3 }
local h = m:population { name = "h", size = 3, neuron = apical.rate { tau = TAU } }
m:connect(x, h.soma, { init = "identity" })
local sim = m:compile()
sim:set_input(x, { { 1.0, -2.0, 0.5 }, { 0.5, 3.0, -1.0 } })

-- the stderr lines of fn() (sim:run writes its warning there)
local function stderr_of(fn)
  local real, lines = io.stderr, {}
  io.stderr = { write = function(_, ...) lines[#lines + 1] = table.concat({ ... }) end }
  local ok, res = pcall(fn)
  io.stderr = real
  if not ok then error(res, 0) end
  return lines, res
end

-- rk4's bound, the root of R(z) = 1 below 0, by bisection (independent of the guard)
local function R(z) return 1 + z + z * z / 2 + z ^ 3 / 6 + z ^ 4 / 24 end
local lo, hi = -3, -2
for _ = 1, 200 do
  local mid = (lo + hi) / 2
  if R(mid) > 1 then lo = mid else hi = mid end
end
local RK4_BOUND = -hi
check.near(RK4_BOUND, 2.785293563, 1e-8, "rk4 bound")

local schemes = {
  { name = "euler", opts = { solver = "euler" }, bound = 2, amp = function(z) return math.abs(1 + z) end },
  { name = "euler-maruyama", opts = { solver = "euler-maruyama", noise = { [h.soma] = 0.01 }, seed = 7 },
    bound = 2, amp = function(z) return math.abs(1 + z) end },
  { name = "euler (declared order)", opts = { solver = "euler", ordered = true }, bound = 2,
    amp = function(z) return math.abs(1 + z) end },
  { name = "rk4", opts = { solver = "rk4" }, bound = RK4_BOUND, amp = function(z) return math.abs(R(z)) end },
}

for _, sc in ipairs(schemes) do
  for _, ratio in ipairs { 0.9, 1.1 } do
    local dt = ratio * sc.bound * TAU
    local o = { steps = 20, dt = dt }
    for k, v in pairs(sc.opts) do o[k] = v end
    local lines, out = stderr_of(function() return sim:run(o) end)
    local st = out.stats
    local what = string.format("%s at %.1f x the bound", sc.name, ratio)
    -- the amplification of one step, exactly |1 + z| or |R(z)| with z = -dt / tau
    check.near(st.stability_growth, sc.amp(-dt / TAU), 1e-6, what .. ": growth")
    check.truthy(st.stability_evals > 0, what .. ": evaluations counted")
    if ratio < 1 then
      check.eq(st.stability_warning, nil, what .. ": no warning")
      check.eq(#lines, 0, what .. ": nothing on stderr")
      check.eq(st.stability_dt, 0, what .. ": no bound searched")
    else
      local w = st.stability_warning
      check.truthy(w, what .. ": a warning")
      -- the bound: the largest step found stable, within 0.5 % below the exact one
      local b = sc.bound * TAU
      check.truthy(st.stability_dt <= b * (1 + 1e-6) and st.stability_dt >= 0.995 * b,
        string.format("%s: bound %.6g, exact %.6g", what, st.stability_dt, b))
      check.truthy(w:find(sc.name .. " with dt = " .. string.format("%g", dt), 1, true), what .. ": names scheme and dt: " .. w)
      check.truthy(w:find(string.format("stable for dt < %.3g", st.stability_dt), 1, true), what .. ": names the bound: " .. w)
      check.truthy(w:find("stability_check = false", 1, true), what .. ": says how to silence it")
      check.eq(#lines, 1, what .. ": one line on stderr")
      check.truthy(lines[1]:find("apical: warning: " .. w, 1, true), what .. ": stderr " .. tostring(lines[1]))
      -- silenced: no estimate, no warning
      o.stability_check = false
      local quiet, out2 = stderr_of(function() return sim:run(o) end)
      check.eq(#quiet, 0, what .. ": silenced")
      check.eq(out2.stats.stability_growth, nil, what .. ": no estimate when silenced")
    end
  end
end

-- results are the same with and without the guard (the estimate leaves the start state as it
-- found it), for every scheme
for _, sc in ipairs(schemes) do
  local function final(check_opt)
    local o = { steps = 30, dt = 0.2 * TAU, stability_check = check_opt }
    for k, v in pairs(sc.opts) do o[k] = v end
    sim:run(o)
    -- and on from where it ended (the estimate starts from that state too)
    o.keep_state = true
    sim:run(o)
    return sim:read(h.soma):totable()
  end
  local a, b = final(true), final(false)
  for i = 1, #a do
    for j = 1, #a[i] do check.eq(a[i][j], b[i][j], sc.name .. ": same result with the guard") end
  end
end

-- the growth watch: an unstable run stops before the state overflows, naming the variable,
-- the time and the scheme; with the watch only, no estimate is made; off, the run goes on
do
  local o = { solver = "euler", dt = 2.5 * TAU, steps = 400 }
  local ok, err = pcall(sim.run, sim, o)
  check.truthy(not ok, "watch: the run stops")
  check.truthy(err:find("explosive growth: h.soma%[sample %d, unit %d%] = %-?[%d.e+]+ at t = [%d.]+"),
    "watch: names variable, value and time: " .. err)
  check.truthy(err:find("euler with dt = 1.25", 1, true) and err:find("stable for dt < 0.99", 1, true),
    "watch: the estimate's note: " .. err)
  -- |1 - 2.5| = 1.5 per step: 1e6-fold within about 35 steps, stopped long before 400
  local t = tonumber(err:match("at t = ([%d.]+)"))
  check.truthy(t < 60 * 1.25, "watch: stops early, t = " .. tostring(t))
  o.stability_check = "watch"
  local ok2, err2 = pcall(sim.run, sim, o)
  check.truthy(not ok2 and err2:find("explosive growth", 1, true) and not err2:find("estimated", 1, true),
    "watch only: " .. tostring(err2))
  o.stability_check, o.steps = false, 100
  local lines, out = stderr_of(function() return sim:run(o) end)
  check.eq(#lines, 0, "off: no warning")
  check.truthy(math.abs(sim:read(h.soma)[1]) > 1e15, "off: the run went on (and grew)")
  check.eq(out.stats.steps, 100, "off: every step")
end

-- a circuit that grows by itself (tau v' = -v + 2 v + x: v grows like e^(t / tau)) is no fault
-- of the scheme: no warning, and the watch lets it grow
do
  local g = apical.model { batch = 1 }
  local gx = g:input { name = "x", size = 1 }
  local gh = g:population { name = "h", size = 1, neuron = apical.rate { tau = 1 } }
  g:connect(gx, gh.soma, { init = "identity" })
  g:connect(gh, gh.soma, { kind = "one_to_one" }):set_weights({ 2 })
  local gs = g:compile()
  gs:set_input(gx, { { 1.0 } })
  local lines, out = stderr_of(function() return gs:run { solver = "euler", dt = 0.2, steps = 200 } end)
  check.near(out.stats.stability_growth, 1.2, 1e-6, "growing circuit: growth 1 + dt")
  check.eq(out.stats.stability_warning, nil, "growing circuit: no warning")
  check.eq(#lines, 0, "growing circuit: nothing on stderr")
  check.near(gs:read(gh.soma)[1], 1.2 ^ 200 - 1, 1e-9 * 1.2 ^ 200, "growing circuit: the run went on")
end

-- apical.run_parallel: one warning per call
do
  local sims = {}
  for k = 1, 2 do
    sims[k] = m:compile()
    sims[k]:set_input(x, { { 1.0, -2.0, 0.5 }, { 0.5, 3.0, -1.0 } })
  end
  local o = { solver = "euler", dt = 2.2 * TAU, steps = 10 }
  local lines, outs = stderr_of(function() return apical.run_parallel { { sims[1], o }, { sims[2], o } } end)
  check.eq(#lines, 1, "run_parallel: one warning")
  check.truthy(outs[1].stats.stability_warning and outs[2].stats.stability_warning, "run_parallel: in each run's stats")
end

-- the option's errors
check.fails(function() sim:run { solver = "euler", dt = 0.1, steps = 2, stability_check = 1 } end,
  "stability_check must be true, false or \"watch\", got 1")
check.fails(function() sim:run { solver = "cvode-bdf", t_end = 1, stability_check = false } end,
  "stability_check is for the fixed-step solvers (euler, rk4, euler-maruyama), not cvode-bdf")

check.done("test_stability")
