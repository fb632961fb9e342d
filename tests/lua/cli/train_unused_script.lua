-- For check_cli.lua: a models/-style script (dfc.paper.params, all of it dfc.train's defaults)
-- resolved without training: the options of the paper configuration that the run does not
-- read are fine; a --set value the run does not read is refused at this file's line.
local apical = require "apical"
local dfc = apical.plugin "dfc"
local train = require "apical.plugins.dfc.train"
local cfg = dfc.paper.params("mnist", { method = "dfc", feedback = "weight_product", solver = "euler",
  epochs = 1, rtol = 1e-6, atol = 1e-8, n_train = 64, threads = 1, fb_threads = 1 })
local c = train.resolve(cfg)
print(string.format("resolved %s %s %s lr_fb=%g rtol=%g", c.method, c.feedback, c.solver, c.lr_fb, c.rtol))
