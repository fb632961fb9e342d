-- dofile of a file outside the allowed directories
dofile("/etc/hostname") -- error: sandbox: loadfile "/etc/hostname"
