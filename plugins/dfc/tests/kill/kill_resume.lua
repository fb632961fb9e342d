-- kill_resume.lua — crash safety of training runs (docs/training.md, "Checkpoints"): a run
-- killed with SIGKILL and then resumed ends with the same log.csv (but for its wall-clock
-- columns) and bit-identical checkpoint files (weights, optimiser state) as a run that was
-- never interrupted. Kills at every point of the checkpoint protocol, deterministically
-- (APICAL_TEST_KILL_AT=<point>:<n>, the n-th save), and at random times (a seeded generator;
-- APICAL_KILL_TRIALS and APICAL_KILL_SEED change the number and the seed).
-- Usage: apical run kill_resume.lua -- APICAL_BINARY RUN_SCRIPT SCRATCH_DIR
local apical = require "apical"
local bin, script, scratch = arg[1], arg[2], arg[3]
assert(bin and script and scratch, "usage: apical run kill_resume.lua -- APICAL RUN_SCRIPT SCRATCH_DIR")

local function quote(s) return "'" .. s:gsub("'", "'\\''") .. "'" end

assert(apical.fs.remove_tree(scratch))
assert(apical.fs.mkdir(scratch, true))

-- Runs the training script; returns "exit", code or "signal", number, and stderr.
local function run(env, sets, prefix)
  local err = scratch .. "/stderr"
  local cmd = string.format("%s %s %s run %s %s >/dev/null 2>%s", env or "", prefix or "",
    quote(bin), quote(script), sets, quote(err))
  local _, how, code = os.execute(cmd)
  local f = io.open(err)
  local text = f and f:read("a") or ""
  if f then f:close() end
  return how, code, text
end

-- The epoch of the run directory's checkpoint/ (nil: none complete)
local function checkpoint_epoch(dir)
  local f = io.open(dir .. "/checkpoint/manifest.txt")
  if not f then return nil end
  local e = tonumber(f:read("a"):match("\nepoch (%d+)\n"))
  f:close()
  return e
end

-- killed by SIGKILL (the shell reports 128 + 9)
local function killed(how, code)
  return (how == "signal" and code == 9) or (how == "exit" and code == 137)
end

-- The only run directory under out_dir (nil if none was created).
local function run_dir(out_dir)
  local names = apical.fs.list(out_dir) or {}
  assert(#names <= 1, "more than one run directory in " .. out_dir)
  return names[1] and (out_dir .. "/" .. names[1]) or nil
end

local function read(path)
  local f = assert(io.open(path, "rb"))
  local s = f:read("a")
  f:close()
  return s
end

-- log.csv without the wall-clock columns
local function log_of(dir)
  local lines, skip = {}, {}
  for line in read(dir .. "/log.csv"):gmatch("[^\n]+") do
    local f = {}
    for x in line:gmatch("[^,]+") do f[#f + 1] = x end
    if #lines == 0 then
      for i, c in ipairs(f) do
        if c == "wall_seconds" or c == "samples_per_second" then skip[i] = true end
      end
    end
    local kept = {}
    for i, x in ipairs(f) do if not skip[i] then kept[#kept + 1] = x end end
    lines[#lines + 1] = table.concat(kept, ",")
  end
  return table.concat(lines, "\n")
end

-- the checkpoint's .npy files, name -> bytes
local function weights_of(dir)
  local t = {}
  for _, name in ipairs(assert(apical.fs.list(dir .. "/checkpoint"))) do
    if name:match("%.npy$") then t[name] = read(dir .. "/checkpoint/" .. name) end
  end
  return t
end

local function same_run(ref, dir, what)
  assert(log_of(dir) == log_of(ref), what .. ": log.csv differs from the uninterrupted run's:\n" ..
    log_of(dir) .. "\nvs\n" .. log_of(ref))
  local a, b = weights_of(ref), weights_of(dir)
  for name, bytes in pairs(a) do
    assert(b[name] == bytes, what .. ": checkpoint/" .. name .. " differs from the uninterrupted run's")
  end
  for name in pairs(b) do assert(a[name], what .. ": checkpoint/" .. name .. " is extra") end
end

-- the uninterrupted run
local ref_out = scratch .. "/ref"
local how, code, err = run(nil, "--set out_dir=" .. quote(ref_out))
assert(how == "exit" and code == 0, "the uninterrupted run failed: " .. err)
local ref = run_dir(ref_out)

local trials, resumed, late = 0, 0, 0

-- Resumes the run in out_dir (killed before) until it finishes; checks it equals the reference.
-- A run killed before its first checkpoint cannot be resumed: the message must say so.
local function finish(out_dir, what)
  trials = trials + 1
  local dir = run_dir(out_dir)
  -- a manifest is written after all of a checkpoint's files: if one exists, a complete
  -- checkpoint exists, and the resume must use it
  local complete = false
  for _, name in ipairs { "checkpoint", "checkpoint.tmp", "checkpoint.old" } do
    local f = dir and io.open(dir .. "/" .. name .. "/manifest.txt")
    if f then f:close() complete = true end
  end
  local h, c, e = run(nil, "--set resume=" .. quote(dir or (out_dir .. "/none")))
  if h == "exit" and c == 0 then
    same_run(ref, dir, what)
    resumed = resumed + 1
    return
  end
  assert(not killed(h, c), what .. ": the resumed run was killed")
  -- killed before the first checkpoint: nothing to resume, and the message says so
  assert(not complete, what .. ": a complete checkpoint exists, but resume failed: " .. e)
  assert(e:find("no checkpoint in", 1, true), what .. ": resume failed: " .. e)
end

-- every point of the protocol, at the first save (no previous checkpoint) and the second
local points = { "save-files", "save-manifest", "save-rename-old", "save-rename-new" }
for _, point in ipairs(points) do
  for n = 1, 3 do
    local out = string.format("%s/%s-%d", scratch, point, n)
    local h, c, e = run("APICAL_TEST_KILL_AT=" .. point .. ":" .. n, "--set out_dir=" .. quote(out))
    assert(killed(h, c), string.format("%s:%d: the run was not killed (%s %s) %s", point, n, h, c, e))
    local before = resumed
    finish(out, point .. ":" .. n)
    assert(resumed == before + 1 or (point == "save-files" and n == 1),
      point .. ":" .. n .. ": not resumed")
  end
end

-- Starts the training run in the background: its pid.
local function start(sets)
  local p = assert(io.popen(string.format("%s run %s %s >/dev/null 2>&1 & echo $!", quote(bin),
    quote(script), sets)))
  local pid = assert(tonumber(p:read("l")))
  p:close()
  return pid
end

-- Waits (at most a minute) until the run in out_dir has a complete checkpoint of epoch `e` or
-- later, or has ended.
local function wait_checkpoint(out_dir, pid, e)
  for _ = 1, 3000 do
    local dir = run_dir(out_dir)
    if dir and (checkpoint_epoch(dir) or -1) >= e then return end
    if not os.execute("kill -0 " .. pid .. " 2>/dev/null") then return end
    os.execute("sleep 0.02")
  end
end

-- random points: SIGKILL a random time (up to about an epoch's length) after the start (target
-- epoch 0) or after the checkpoint of a random epoch 1..3 appeared
local n_random = tonumber(os.getenv("APICAL_KILL_TRIALS") or "") or 6
local seed = tonumber(os.getenv("APICAL_KILL_SEED") or "") or 13
math.randomseed(seed)
local t0 = apical.clock()
run(nil, "--set out_dir=" .. quote(scratch .. "/timing"))
local length = apical.clock() - t0
local epoch_length = length / 5
for k = 1, n_random do
  local out = string.format("%s/random-%d", scratch, k)
  local target = math.random(0, 3)
  local pid = start("--set out_dir=" .. quote(out))
  if target > 0 then wait_checkpoint(out, pid, target) end
  local delay = math.random() * epoch_length * (target == 0 and 2 or 1)
  os.execute(string.format("sleep %.3f; kill -KILL %d 2>/dev/null", delay, pid))
  os.execute("while kill -0 " .. pid .. " 2>/dev/null; do sleep 0.02; done")
  local dir = run_dir(out)
  local what = string.format("random %d (kill %.3f s after %s)", k, delay,
    target == 0 and "the start" or ("the checkpoint of epoch " .. target))
  if dir and checkpoint_epoch(dir) == 4 then
    same_run(ref, dir, what .. ", finished before the kill")
    late = late + 1
  else
    finish(out, what)
  end
end

-- F7: two processes on one run directory. A run in progress holds the lock: a resume of its
-- directory is refused, naming its pid; once it is killed, the resume goes ahead.
do
  local out = scratch .. "/race"
  local pid = start("--set out_dir=" .. quote(out) .. " --set epochs=100000")
  local dir, holder
  for _ = 1, 1200 do -- at most a minute
    dir = run_dir(out)
    local f = dir and io.open(dir .. "/lock")
    holder = f and tonumber(f:read("l") or "")
    if f then f:close() end
    if holder and io.open(dir .. "/checkpoint/manifest.txt") then break end
    os.execute("sleep 0.05")
  end
  assert(holder == pid, string.format("the lock names %s, the run is %d", tostring(holder), pid))
  local h, c, e = run(nil, "--set resume=" .. quote(dir) .. " --set epochs=100000")
  os.execute("kill -KILL " .. pid)
  assert(h == "exit" and c == 1, "a second process resumed a run in progress")
  assert(e:find("resume: directory " .. dir .. " is in use by process " .. pid .. " (it holds " .. dir ..
    "/lock); wait for it to finish or stop it", 1, true), e)
  os.execute("while kill -0 " .. pid .. " 2>/dev/null; do sleep 0.05; done")
  h, c, e = run(nil, "--set resume=" .. quote(dir) .. " --set epochs=1")
  assert(h == "exit" and c == 0, "the lock of a killed run was not released: " .. e)
end

print(string.format("kill-and-resume: %d kills (%d at protocol points, %d at random times of a " ..
  "%.2f s run, seed %d), %d resumed bit-identical, %d killed before their first checkpoint; " ..
  "%d runs finished before their random kill", trials, 3 * #points, trials - 3 * #points, length,
  seed, resumed, trials - resumed, late))
assert(apical.fs.remove_tree(scratch))
