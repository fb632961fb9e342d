-- writing a file outside the allowed directories
local f = io.open("/tmp/apical_sandbox_written", "w") -- error: outside the directories a model may write under --sandbox
