-- reading a file outside the allowed directories
local f = io.open("/etc/passwd") -- error: sandbox: io.open "/etc/passwd" (/etc/passwd): outside the directories a model may read
