-- package.loadlib under --sandbox: no dynamic loading
local f = package.loadlib("libc.so.6", "system") -- error: sandbox: package.loadlib: no library may be loaded under --sandbox
