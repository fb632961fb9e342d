-- io.popen under --sandbox: no process is started
local p = io.popen("id") -- error: sandbox: io.popen: no process may be started under --sandbox
