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

return function(dfc)
  network.install(dfc)
  train.install(dfc)
  sleep.install(dfc)
  measures.install(dfc)
  dfc.paper = paper
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
