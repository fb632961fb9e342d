-- test_stiff.lua — a stiff DFC circuit (15-10-10-5 student-teacher, tau_v = 1e-4, tau_u = 1,
-- T = 5): every CVODE linear solver and preconditioner gives the minibatch's weight update
-- within 10 x rtol of a dense cvode-bdf run at rtol 1e-11 (docs/solvers.md, "Stiff circuits");
-- options a solver would not use are refused.
local apical = require "apical"
local dfc = apical.plugin "dfc"
package.path = (arg[0]:match("^(.*)/") or ".") .. "/?.lua;" .. package.path
local fx = require "dfc_fixture"
local check, assert = fx.check, fx.check.assert

local B = 8
local t = dfc.trainer { task = "student_teacher", hidden = { 10, 10 }, batch = B, method = "dfc",
  solver = "cvode-bdf", tau_v = 1e-4, tau_u = 1, dt = 0.005, tmax = 1001, progress = false,
  checkpoint = false, target_mode = "sample", task_opts = { n_train = 64, n_valid = 8, n_test = 8 } }
local X, Y
for x, y in t.task.train:batches { batch = B } do X, Y = x, y break end

-- the accumulated update of every weight and bias for run options `o`, and the run's stats
local function update(o)
  t.run_opts = t:solver_options()
  for k, v in pairs(o) do t.run_opts[k] = v end
  t.opt:zero()
  local st = t:gradient(X, Y)
  local g = {}
  for i = 1, t.L do
    local dW, db = t.opt:grad(t.net.W[i])
    for k = 1, #dW do g[#g + 1] = dW[k] end
    for k = 1, #db do g[#g + 1] = db[k] end
  end
  return g, st
end

local ref = update { rtol = 1e-11, atol = 1e-13, linear_solver = "dense" }
local choices = {
  { label = "default" },
  { label = "krylov, no preconditioner", linear_solver = "krylov", preconditioner = "none" },
  { label = "krylov, diagonal", linear_solver = "krylov", preconditioner = "diagonal" },
  { label = "krylov, block", linear_solver = "krylov", preconditioner = "block" },
  { label = "dfc.layered (exact solve)", preconditioner = "dfc.layered" },
  { label = "krylov, dfc.layered", linear_solver = "krylov", preconditioner = "dfc.layered" },
  { label = "dense", linear_solver = "dense" },
}
for _, rtol in ipairs { 1e-6, 1e-8 } do
  for _, c in ipairs(choices) do
    local g, st = update { rtol = rtol, atol = rtol * 1e-2, linear_solver = c.linear_solver,
      preconditioner = c.preconditioner }
    local num, den = 0, 0
    for k = 1, #g do num, den = num + (g[k] - ref[k]) ^ 2, den + ref[k] ^ 2 end
    local err = math.sqrt(num / den)
    print(string.format("rtol %g %-26s error %.2e (%.1f x rtol), %d steps, %d rhs evaluations",
      rtol, c.label, err, err / rtol, st.steps, st.rhs_evals))
    assert(err < 10 * rtol, string.format("%s at rtol %g: update off by %.3g", c.label, rtol, err))
  end
end

-- dfc.train refuses what the chosen solver would not use, naming it
local function refused(cfg, needle)
  cfg.task, cfg.epochs, cfg.progress, cfg.checkpoint = "student_teacher", 1, false, false
  local ok, msg = pcall(dfc.trainer, cfg)
  assert(not ok and msg:find(needle, 1, true), "expected an error with " .. needle .. ", got " .. tostring(msg))
end
refused({ solver = "euler", preconditioner = "block" }, "solves no linear system")
refused({ solver = "cvode-bdf", linear_solver = "dense", preconditioner = "diagonal" }, "the dense solver uses none")
refused({ solver = "cvode-adams", preconditioner = "diagonal" }, "functional iteration")
refused({ solver = "cvode-bdf", preconditioner = "ilu" }, "unknown preconditioner \"ilu\"")
refused({ solver = "cvode-bdf", linear_solver = "klu" }, "unknown linear_solver \"klu\"")
check.done("test_stiff")
