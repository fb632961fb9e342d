-- the model cannot widen its limits by enabling the sandbox again with a directory of its choice
local sb = require "apical.sandbox"
sb.enable("/x", function(p) return p end) -- error: sandbox: the sandbox is already enabled
