-- examples/sweeps/small.lua — a sweep spec for examples/sweep.lua: models/small.lua (DFC on
-- the student-teacher task), two epochs, a grid over lr and two log-uniform draws of alpha per
-- grid point (4 trials), ranked by the validation loss.
return {
  model = "models/small.lua",
  set = { epochs = 2 },
  grid = { lr = { 0.02, 0.05 } },
  random = { trials = 2, seed = 7, alpha = { 0.0005, 0.005, "log" } },
  metric = "valid_loss",
  out = "runs/sweep-small",
}
