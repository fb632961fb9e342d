-- examples/sweeps/halving.lua — successive halving with examples/sweep.lua: 4 trials of
-- models/small.lua (a grid over lr, two log-uniform draws of alpha each); all 4 run 1 epoch,
-- the best 2 go on to 2 epochs (resuming their run directories), the best of those to 4.
return {
  model = "models/small.lua",
  set = { epochs = 4 },
  grid = { lr = { 0.02, 0.05 } },
  random = { trials = 2, seed = 7, alpha = { 0.0005, 0.005, "log" } },
  halving = { budget = "epochs", min = 1, eta = 2 },
  metric = "valid_loss",
  out = "runs/sweep-halving",
}
