-- no shared object is written, even in the model's directory
local f = io.open("apical_evil.so", "wb") -- error: sandbox: io.open "apical_evil.so": no shared object may be written
