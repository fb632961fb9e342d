-- expect_error.lua — runs a bad model file through the apical program and checks that it
-- fails properly: exit status 1, and stderr exactly one line
--     apical: <file>:<line>: ... <text> ...
-- where <line> is the line of the file marked `-- error: <text>`.
-- Usage (from the model's directory): apical run expect_error.lua -- APICAL MODEL.lua [FLAG ...]
-- (the FLAGs, such as --sandbox, go to `apical run` before the model)
local apical_bin, model = arg[1], arg[2]
assert(apical_bin and model, "usage: apical run expect_error.lua -- APICAL MODEL.lua")

local line, text
local n = 0
for l in io.lines(model) do
    n = n + 1
    local t = l:match("%-%- error: (.*)$")
    if t then line, text = n, t end
end
assert(line, model .. ": no line is marked `-- error: <text>`")

local function quote(s)
    return "'" .. s:gsub("'", "'\\''") .. "'"
end
-- stderr into the pipe, stdout discarded; nothing is written to files
local flags = {}
for i = 3, #arg do flags[#flags + 1] = quote(arg[i]) .. " " end
local p = assert(io.popen(quote(apical_bin) .. " run " .. table.concat(flags) .. quote(model) ..
    " 2>&1 >/dev/null"))
local err = p:read("a")
local _, how, code = p:close()

local function fail(msg)
    io.stderr:write(string.format("%s: %s\nstderr was:\n%s", model, msg, err))
    os.exit(1)
end
if how ~= "exit" or code ~= 1 then fail(string.format("exit status %s %s, want exit 1", how, code)) end
local lines = {}
for l in err:gmatch("[^\n]+") do lines[#lines + 1] = l end
if #lines ~= 1 then fail(string.format("%d lines on stderr, want 1", #lines)) end
local want = string.format("apical: %s:%d: ", model, line)
if err:sub(1, #want) ~= want then fail(string.format("stderr does not start with %q", want)) end
if not err:find(text, 1, true) then fail(string.format("stderr does not contain %q", text)) end
print(string.format("%s: fails at line %d as expected: %s", model, line, lines[1]))
