-- apical.mkdir is checked
local apical = require "apical"
apical.mkdir("/tmp/apical_sandbox_dir/sub") -- error: sandbox: mkdir "/tmp/apical_sandbox_dir/sub"
