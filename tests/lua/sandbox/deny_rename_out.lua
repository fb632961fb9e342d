-- os.rename out of the model's directory (the file made for it is removed again)
local name = "apical_sandbox_rename.txt"
local f = assert(io.open(name, "w"))
f:close()
local ok, err = pcall(os.rename, name, "/tmp/apical_sandbox_renamed.txt")
os.remove(name)
error((tostring(err):gsub("^.-:%d+: ", ""))) -- error: sandbox: os.rename "/tmp/apical_sandbox_renamed.txt"
