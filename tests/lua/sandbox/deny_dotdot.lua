-- a path through .. is resolved before it is checked
local f = io.open("../../../../../../../../../../etc/hostname") -- error: (/etc/hostname): outside the directories
