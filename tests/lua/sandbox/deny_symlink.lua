-- a symbolic link in the model's directory does not lead out (etc_link -> /etc)
for l in io.lines("etc_link/hostname") do print(l) end -- error: sandbox: io.lines "etc_link/hostname" (/etc/hostname): outside
