-- check_cli.lua — the apical program's command line: version, help, usage errors, plugins,
-- run with --set (converted, rejected), --traceback, script arguments, exit statuses.
-- Usage (from tests/lua/cli): apical run ../check_cli.lua -- APICAL
local apical_bin = assert(arg[1], "usage: apical run check_cli.lua -- APICAL")

local function quote(s)
    return "'" .. s:gsub("'", "'\\''") .. "'"
end

-- Runs `apical <args>`; returns exit code, stdout, stderr.
local function run(args)
    local errfile = os.tmpname()
    local p = assert(io.popen(quote(apical_bin) .. " " .. args .. " 2>" .. quote(errfile)))
    local out = p:read("a")
    local _, how, code = p:close()
    local f = assert(io.open(errfile))
    local err = f:read("a")
    f:close()
    os.remove(errfile)
    assert(how == "exit", "apical " .. args .. ": killed by a signal")
    return code, out, err
end

local failures, commands = 0, 0
local function expect(args, want_code, checks)
    commands = commands + 1
    local code, out, err = run(args)
    local problems = {}
    if code ~= want_code then problems[#problems + 1] = string.format("exit %d, want %d", code, want_code) end
    for _, c in ipairs(checks or {}) do
        local stream, pattern, plain = c[1], c[2], c[3] ~= false
        local text = stream == "out" and out or err
        if not text:find(pattern, 1, plain) then
            problems[#problems + 1] = string.format("%s lacks %q", stream, pattern)
        end
    end
    if #problems > 0 then
        failures = failures + 1
        io.stderr:write(string.format("FAIL apical %s: %s\n--- stdout:\n%s--- stderr:\n%s\n", args,
            table.concat(problems, "; "), out, err))
    else
        print("ok   apical " .. args)
    end
    return out, err
end

expect("version", 0, { { "out", "^apical %d+%.%d+%.%d+ %(plugin ABI %d+%.%d+, Lua 5%.4", false } })
expect("", 2, { { "err", "usage: apical <command>" } })
expect("help", 0, { { "out", "usage: apical <command>" } })
expect("--help", 0, { { "out", "usage: apical <command>" } })
-- every subcommand has its own help (not taken for an argument: a run directory, a script)
for _, cmd in ipairs { "run", "plugins", "plot", "version", "help" } do
    expect(cmd .. " --help", 0, { { "out", "usage: apical " .. cmd } })
    expect(cmd .. " -h", 0, { { "out", "usage: apical " .. cmd } })
end
expect("plot somewhere --bogus", 2, { { "err", "plot: unknown option --bogus (apical plot --help" } })
expect("frob", 2, { { "err", 'apical: unknown command "frob"' }, { "err", "usage:" } })
expect("version extra", 2, { { "err", "version takes no arguments" } })
expect("plot", 2, { { "err", "plot: usage: apical plot RUN_DIR" } })
expect("plot somewhere --out", 2, { { "err", "plot: --out needs a directory" } })
expect("plugins", 0, { { "out", "example 1.0" }, { "out", "apical_example.so" },
    { "out", "example.adaptive" }, { "out", "example.cube" }, { "out", "badabi" },
    { "out", "cannot load" } })
expect("plugins extra", 2, { { "err", "plugins takes no arguments" } })

-- run and --set
expect("run params_script.lua", 0, { { "out", "dt=0.02 solver=euler epochs=3 args=\n" } })
expect("run params_script.lua --set dt=0.5 --set epochs=7 --set solver=rk4", 0,
    { { "out", "dt=0.5 solver=rk4 epochs=7" } })
expect("run --set=dt=0.25 params_script.lua a b", 0, { { "out", "dt=0.25 solver=euler epochs=3 args=a,b" } })
expect("run params_script.lua -- --set x", 0, { { "out", "args=--set,x" } })
local _, err = expect("run params_script.lua --set foo=1", 2,
    { { "out", "dt=0.02" }, { "err", "apical: --set foo=1: the script has no parameter foo (it has: dt, epochs, solver)" } })
-- a training run refuses an unknown --set before it trains, not after
local out = expect("run train_params_script.lua --set epochs=1 --set bogus=1", 2,
    { { "out", "declared" }, { "err", "apical: --set bogus=1: the script has no parameter bogus (it has: epochs, lr)" } })
-- a value the trainer refuses: at the script's line, as the option reads
expect("run train_params_script.lua --set lr=1e999", 1,
    { { "err", "train_params_script.lua:7: dfc.train: lr = inf must be a finite number" } })
expect("run train_params_script.lua --set epochs=-1", 1,
    { { "err", "train_params_script.lua:7: dfc.train: epochs = -1 must be an integer >= 0" } })
if out:find("trained", 1, true) then
    failures = failures + 1
    io.stderr:write("FAIL train_params_script.lua: it trained before refusing --set bogus\n")
end
-- options a run does not read: a paper configuration's are its defaults (not refused), a --set
-- value is the user's (refused, at the script's line, naming it and why)
expect("run train_unused_script.lua", 0, { { "out", "resolved dfc weight_product euler lr_fb=0.000526541 rtol=1e-06" } })
expect("run train_unused_script.lua --set feedback=trained", 0, { { "out", "resolved dfc trained euler" } })
expect("run train_unused_script.lua --set method=bp", 0, { { "out", "resolved bp weight_product" } })
expect("run train_unused_script.lua --set solver=cvode-bdf --set rtol=1e-9", 0, { { "out", "rtol=1e-09" } })
expect("run train_unused_script.lua --set rtol=1e-9", 1, { { "err", "train_unused_script.lua:9: dfc.train: " ..
    'option rtol = 1e-09 is not used by this run: it is read only by a CVODE solver (cvode-bdf, cvode-adams) simulating dfc or dfc-ss, and solver is "euler"' } })
expect("run train_unused_script.lua --set lr_fb=0.1", 1, { { "err", "train_unused_script.lua:9: dfc.train: " ..
    'option lr_fb = 0.1 is not used by this run: it is read only by trained feedback' } })
expect("run train_unused_script.lua --set method=bp --set feedback=trained", 1, { { "err",
    'train_unused_script.lua:9: dfc.train: option feedback = "trained" is not used by this run' } })
expect("run params_script.lua --set dt=abc", 2,
    { { "err", 'apical: --set dt=abc: parameter dt is a number, "abc" is not one' } })
expect("run params_script.lua --set epochs=2.5", 2, { { "err", "parameter epochs is an integer" } })
expect("run params_script.lua --set dt", 2, { { "err", "--set needs key=value, got dt" } })
expect("run params_script.lua --set", 2, { { "err", "--set needs key=value" } })
expect("run params_script.lua --set =1", 2, { { "err", "--set needs key=value, got =1" } })
expect("run", 2, { { "err", "run: no script given" } })
expect("run params_script.lua --bogus", 2, { { "err", "unknown option --bogus" } })
expect("run missing_script.lua", 1, { { "err", "apical: cannot open missing_script.lua" } })

-- errors: one line at the user's line, the stack only with --traceback
_, err = expect("run error_script.lua", 1, { { "err", 'apical: error_script.lua:6: population "h1": unknown activation "tahn"' } })
if select(2, err:gsub("\n", "")) ~= 1 then
    failures = failures + 1
    io.stderr:write("FAIL: the error is not one line:\n" .. err)
end
expect("run error_script.lua --traceback", 1, { { "err", "apical: error_script.lua:6:" },
    { "err", "stack traceback:" }, { "err", "in local 'layer'" } })

if failures > 0 or commands == 0 then
    io.stderr:write(string.format("check_cli: %d of %d commands failed\n", failures, commands))
    os.exit(1)
end
print(string.format("check_cli: %d commands, 0 failed", commands))
