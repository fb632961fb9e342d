-- tests/mpi/train.lua — a small training run for the MPI tests (test_mpi.lua runs it under
-- mpirun and in one process): the student-teacher task, 2 epochs, the options as --set.
local apical = require "apical"
local dfc = apical.plugin "dfc"

local p = apical.params {
  method = "dfc", solver = "euler", feedback = "weight_product", threads = 1, fb_threads = 1,
  batch = 32, epochs = 2, out_dir = "runs", name = "", resume = "", optimizer = "adam",
  convergence_test = false, ranks = 0, mpi_cvode = "local", settle_tol = 0.0, drop_last = true,
  n_train = 256, measures_every = 0,
}

-- the fixed settings and the parameters as defaults: each method reads those it uses
-- (docs/training.md, "Options a run does not read")
local d = { lr = 0.01, tmax = 60, dt = 0.04, seed = 5, epochs_fb = 1, rtol = 1e-7, atol = 1e-9,
  progress = false }
for k, v in pairs(p) do d[k] = v end
d.ranks = p.ranks > 0 and p.ranks or nil
d.n_train = nil -- the task's

dfc.train {
  task = "student_teacher", task_opts = { variant = "small", n_train = p.n_train, n_valid = 96, n_test = 70 },
  hidden = { 8, 6 }, defaults = d,
}
