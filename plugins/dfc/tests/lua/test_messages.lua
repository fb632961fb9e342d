-- test_messages.lua — what a failing training run says: a controller gain that makes the
-- network blow up names the block, its parameters and the non-finite value (it said "a
-- component failed at t = 0.35").
local apical = require "apical"
local dfc = apical.plugin "dfc"
package.path = (arg[0]:match("^(.*)/") or ".") .. "/?.lua;" .. package.path
local fx = require "dfc_fixture"
local check, assert = fx.check, fx.check.assert

local tmp = fx.tmpdir()

local function run(stability_check)
  return pcall(dfc.train, {
    task = "student_teacher", hidden = { 10, 10 }, batch = 32, epochs = 1, seed = 42, lr = 0.05,
    lambda = 0.05, k_p = 1e6, alpha = 0.0015, tau_v = 0.2, dt = 0.025, tmax = 200, solver = "euler",
    out_dir = tmp, progress = false, target_mode = "sample", stability_check = stability_check,
    task_opts = { variant = "small" },
  })
end
-- with the stability guard on, its growth watch stops the run first, naming the variable
local ok, err = run(true)
assert(not ok, "k_p = 1e6 must fail")
err = tostring(err)
print(err)
for _, want in ipairs { "explosive growth: h", ".soma[sample ", "euler (declared order) with dt = 0.025" } do
  assert(err:find(want, 1, true), string.format("message %q lacks %q", err, want))
end
-- without it, the block that fails first is named
ok, err = run(false)
assert(not ok, "k_p = 1e6 must fail")
err = tostring(err)
print(err)
for _, want in ipairs { "block ", "(dfc.pi, k_p = 1e+06", "output u[sample ", "is not finite", "at t = " } do
  assert(err:find(want, 1, true), string.format("message %q lacks %q", err, want))
end
assert(not err:find("a component failed", 1, true), err)
print("ok   k_p = 1e6 names the block, its parameters and the value")
check.done("test_messages")
