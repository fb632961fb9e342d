-- run.lua — the training run the kill-and-resume test (kill_resume.lua) kills and resumes: a
-- tiny DFC network (Euler, 29 steps per minibatch) on a small student-teacher task, Adam, so
-- that weights, moments and the log all have to come back exactly.
local apical = require "apical"
local dfc = apical.plugin "dfc"

local p = apical.params { out_dir = "", resume = "", epochs = 4 }

dfc.train {
  task = "student_teacher", method = "dfc", solver = "euler", hidden = { 6 }, batch = 32,
  tmax = 30, dt = 0.05, optimizer = "adam", lr = 0.01, seed = 5, epochs = p.epochs,
  task_opts = { n_train = 256, n_valid = 64, n_test = 64 },
  out_dir = p.out_dir, resume = p.resume, progress = false,
}
