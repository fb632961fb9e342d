-- A training script with parameters, for check_cli.lua: dfc.train refuses a --set that no
-- parameter took before it trains, rather than after the run.
local apical = require "apical"
local dfc = apical.plugin "dfc"
local p = apical.params { epochs = 1, lr = 0.05 }
print("declared")
dfc.train { task = "student_teacher", method = "dfc-ssa", epochs = p.epochs, lr = p.lr, progress = false,
  checkpoint = false, out_dir = os.getenv("TMPDIR") or "/tmp",
  task_opts = { variant = "small", n_train = 256, n_valid = 128, n_test = 128 } }
print("trained")
