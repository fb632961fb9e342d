-- apical.plugins.dfc — the Lua half of the DFC plugin, loaded by apical.plugin "dfc": adds the
-- layered network constructor (dfc.network), the tasks (dfc.tasks) and the trainers
-- (dfc.trainer, dfc.train) and the measures (dfc.measures) to the plugin's table of constructors
-- and kernels.
local network = require "apical.plugins.dfc.network"
local train = require "apical.plugins.dfc.train"
local tasks = require "apical.plugins.dfc.tasks"
local sleep = require "apical.plugins.dfc.sleep"
local measures = require "apical.plugins.dfc.measures"
local paper = require "apical.plugins.dfc.paper"
local pathways = require "apical.plugins.dfc.pathways"
local rundir = require "apical.plugins.dfc.rundir"
local gradients = require "apical.plugins.dfc.gradients"

return function(dfc)
  network.install(dfc)
  train.install(dfc)
  sleep.install(dfc)
  measures.install(dfc)
  gradients.install(dfc)
  dfc.paper = paper
  -- the methods of the objects the Lua half returns raise their errors at the user's line
  -- (apical.plugin wraps the functions of this table itself)
  local errors = require "apical.errors"
  for _, class in ipairs { network.Net, train.Trainer, sleep.Sleep, measures.Measures,
    pathways.Pathway, rundir } do
    if class then errors.wrap_table(class) end
  end
  dfc.tasks = {
    student_teacher = function(o) return tasks.student_teacher(dfc, o) end,
    mnist = tasks.mnist,
    fashion_mnist = tasks.fashion_mnist,
    mnist_autoencoder = tasks.mnist_autoencoder,
    data_dir = tasks.data_dir,
    MNIST_MEAN = tasks.MNIST_MEAN,
    MNIST_STD = tasks.MNIST_STD,
  }
  return dfc
end
