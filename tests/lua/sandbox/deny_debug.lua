-- the debug library is not available under --sandbox
local r = debug.getregistry() -- error: sandbox: debug.getregistry: the debug library is not available
