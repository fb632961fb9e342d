-- os.execute under --sandbox: no process is started
local ok = os.execute("touch apical_sandbox_pwned") -- error: sandbox: os.execute: no process may be started under --sandbox
