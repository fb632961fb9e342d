-- A plugin that is not in the search path.
local apical = require "apical"
local dfc = apical.plugin "no_such_plugin" -- error: plugin "no_such_plugin" not found
