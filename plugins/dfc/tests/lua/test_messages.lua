-- test_messages.lua — what a failing training run says: a controller gain that makes the
-- network blow up names the block, its parameters and the non-finite value (it said "a
-- component failed at t = 0.35").
local apical = require "apical"
local dfc = apical.plugin "dfc"

local tmp = os.tmpname()
os.remove(tmp)
assert(os.execute("mkdir -p '" .. tmp .. "'"))

local ok, err = pcall(dfc.train, {
  task = "student_teacher", hidden = { 10, 10 }, batch = 32, epochs = 1, seed = 42, lr = 0.05,
  lambda = 0.05, k_p = 1e6, alpha = 0.0015, tau_v = 0.2, dt = 0.025, tmax = 200, solver = "euler",
  out_dir = tmp, progress = false, target_mode = "sample",
})
os.execute("rm -rf '" .. tmp .. "'")
assert(not ok, "k_p = 1e6 must fail")
err = tostring(err)
print(err)
for _, want in ipairs { "block ", "(dfc.pi, k_p = 1e+06", "output u[sample ", "is not finite", "at t = " } do
  assert(err:find(want, 1, true), string.format("message %q lacks %q", err, want))
end
assert(not err:find("a component failed", 1, true), err)
print("ok   k_p = 1e6 names the block, its parameters and the value")
