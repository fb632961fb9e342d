-- doc_snippets.lua — runs the Lua examples of the documentation, so they cannot rot.
-- Every ```lua block of the given Markdown files must follow a line `<!-- runnable -->`; each
-- runs in a fresh `apical run` (a temporary script, removed afterwards) and must succeed,
-- unless a line of it is marked `-- error: <text>`: then it must fail at that line with a
-- message containing <text>.
-- Usage: apical run doc_snippets.lua -- APICAL doc.md ...   (APICAL_DOC_VERBOSE=1 shows the
-- output of each snippet)
local apical_bin = assert(arg[1], "usage: apical run doc_snippets.lua -- APICAL doc.md ...")

local function quote(s)
    return "'" .. s:gsub("'", "'\\''") .. "'"
end

local failures, count = 0, 0

local function fail(doc, line, msg, out)
    failures = failures + 1
    io.stderr:write(string.format("FAIL %s:%d: %s\n%s\n", doc, line, msg, out or ""))
end

local function run_snippet(doc, start, code)
    count = count + 1
    local err_line, err_text
    local n = 0
    for l in (code .. "\n"):gmatch("(.-)\n") do
        n = n + 1
        local t = l:match("%-%- error: (.*)$")
        if t then err_line, err_text = n, t end
    end
    local path = os.tmpname()
    local f = assert(io.open(path, "w"))
    f:write(code)
    f:close()
    local p = assert(io.popen(quote(apical_bin) .. " run " .. quote(path) .. " 2>&1"))
    local out = p:read("a")
    local _, how, status = p:close()
    os.remove(path)
    if os.getenv("APICAL_DOC_VERBOSE") then
        print(string.format("---- %s:%d\n%s", doc, start, out))
    end
    if how ~= "exit" then return fail(doc, start, "killed by a signal", out) end
    if err_line then
        local want = string.format("apical: %s:%d: ", path, err_line)
        if status ~= 1 then
            fail(doc, start, string.format("exit %d, want 1 (an error at line %d)", status, err_line), out)
        elseif not out:find(want, 1, true) or not out:find(err_text, 1, true) then
            fail(doc, start, string.format("want an error %q... containing %q", want, err_text), out)
        end
    elseif status ~= 0 then
        fail(doc, start, "exit " .. status, out)
    end
end

for i = 2, #arg do
    local doc = arg[i]
    local lines = {}
    for l in io.lines(doc) do lines[#lines + 1] = l end
    local k = 1
    while k <= #lines do
        if lines[k]:match("^```lua%s*$") then
            local runnable = k > 1 and lines[k - 1]:match("^<!%-%- runnable %-%->$")
            local body = {}
            local start = k
            k = k + 1
            while k <= #lines and not lines[k]:match("^```%s*$") do
                body[#body + 1] = lines[k]
                k = k + 1
            end
            if not runnable then
                fail(doc, start, "a ```lua block without <!-- runnable --> before it")
            else
                run_snippet(doc, start, table.concat(body, "\n") .. "\n")
            end
        end
        k = k + 1
    end
end

if count == 0 then
    io.stderr:write("no snippets found\n")
    os.exit(1)
end
if failures > 0 then
    io.stderr:write(string.format("%d of %d snippets failed\n", failures, count))
    os.exit(1)
end
print(string.format("doc_snippets: %d snippets ok", count))
