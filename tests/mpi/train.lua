-- tests/mpi/train.lua — a small training run for the MPI tests (test_mpi.lua runs it under
-- mpirun and in one process): the student-teacher task, 2 epochs, the options as --set.
local apical = require "apical"
local dfc = apical.plugin "dfc"

local p = apical.params {
  method = "dfc", solver = "euler", feedback = "weight_product", threads = 1, fb_threads = 1,
  batch = 32, epochs = 2, out_dir = "runs", name = "", resume = "", optimizer = "adam",
  convergence_test = false, ranks = 0,
}

dfc.train {
  task = "student_teacher", task_opts = { n_train = 256, n_valid = 96, n_test = 70 },
  hidden = { 8, 6 }, method = p.method, solver = p.solver, feedback = p.feedback,
  threads = p.threads, fb_threads = p.fb_threads, batch = p.batch, epochs = p.epochs,
  optimizer = p.optimizer, lr = 0.01, tmax = 60, dt = 0.04, seed = 5, epochs_fb = 1,
  out_dir = p.out_dir, name = p.name, resume = p.resume, progress = false,
  convergence_test = p.convergence_test, ranks = p.ranks > 0 and p.ranks or nil,
  rtol = 1e-7, atol = 1e-9,
}
