-- a binary chunk is not loaded
local f = assert(load(string.dump(function() return 1 end))) -- error: attempt to load a binary chunk
