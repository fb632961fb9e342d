-- test_checkpoint.lua — run directories as data and crash-safe checkpoints (docs/training.md,
-- "Checkpoints"): the reader of config.lua and state.lua (a round trip of what the run
-- directory writes; malformed and executable inputs refused naming file and line, nothing
-- run); resuming after a crash between the two renames of a save (checkpoint/ missing,
-- checkpoint.old/ and checkpoint.tmp/ complete) is exact; a flipped byte in W1.npy is refused
-- naming the file, or passed over for the previous complete checkpoint with a warning; an
-- edited epoch is refused; the lock of a run directory. The kill-and-resume test with real
-- SIGKILLs is tests/kill/kill_resume.lua.
local apical = require "apical"
local dfc = apical.plugin "dfc"
package.path = (arg[0]:match("^(.*)/") or ".") .. "/?.lua;" .. package.path
local fx = require "dfc_fixture"
local check, assert = fx.check, fx.check.assert
local datafile = require "apical.plugins.dfc.datafile"
local rundir = require "apical.plugins.dfc.rundir"
local checkpoint = require "apical.plugins.dfc.checkpoint"

local fs = apical.fs
local tmp = os.tmpname()
os.remove(tmp)
assert(fs.mkdir(tmp, true))

local function fails(fn, ...)
  local ok, err = pcall(fn)
  assert(not ok, "expected an error with " .. select(1, ...))
  for _, needle in ipairs { ... } do
    assert(tostring(err):find(needle, 1, true), tostring(err) .. "\n  lacks: " .. needle)
  end
  return err
end

local function write(path, text)
  local f = assert(io.open(path, "wb"))
  f:write(text)
  f:close()
end

local function read(path)
  local f = assert(io.open(path, "rb"))
  local s = f:read("a")
  f:close()
  return s
end

-- ---- the reader: a round trip of serialize -------------------------------------------------
do
  local v = { epoch = 3, wall = 1.25, ratio = 1 / 3, tiny = 5e-324, big = -1.7976931348623157e308,
    inf = math.huge, ninf = -math.huge, nan = 0 / 0, yes = true, no = false,
    text = 'a "quoted"\n\tline\\ with \0 and \r and é', list = { 1, 2.5, { x = "y" } }, empty = {},
    [7] = "seven" }
  local back = datafile.parse("-- a comment\nreturn " .. rundir.serialize(v) .. "\n", "rt.lua")
  for k, x in pairs(v) do
    if k == "nan" then
      assert(back.nan ~= back.nan, "nan")
    elseif type(x) == "table" then
      assert(rundir.serialize(back[k]) == rundir.serialize(x), k)
    else
      assert(back[k] == x, string.format("%s: %s vs %s", tostring(k), tostring(back[k]), tostring(x)))
    end
  end
  assert(math.type(back.epoch) == "integer" and back.ratio == 1 / 3)
  assert(datafile.parse("return { [\"a\"] = 0x10, ['b'] = -2e3, }", "x").a == 16)
end

-- malformed or executable: refused with the file and line, nothing executed
local marker = tmp .. "/executed"
local bad = {
  { "", "empty.lua:1: empty file" },
  { "-- only a comment\n", "empty.lua:2: empty file" },
  { "return", "empty.lua:1: expected a value" },
  { "return {\n  [\"epoch\"] = 3,\n  [\"log\"] = os.execute(\"touch " .. marker .. "\")\n}",
    "empty.lua:3: expected a value (a table, string, number, true or false) near 'os.execute(" },
  { "os.execute('touch " .. marker .. "') return {}", "empty.lua:1: expected 'return' near 'os.execute" },
  { "return {} ; os.execute('touch " .. marker .. "')", "unexpected text after the value" },
  { "return (function() os.execute('touch " .. marker .. "') end)()", "expected a value" },
  { "return {\n [\"a\"] = 1,\n [\"a\"] = 2 }", "empty.lua:3: key a given twice" },
  { "return {\n [\"a\"] = 1\n", "unfinished table" },
  { "return { a = 1 }", "expected '[' (a field is [key] = value) or '}'" },
  { "return { [\"a\"] = 1 [\"b\"] = 2 }", "expected ',' or '}'" },
  { "return { [\"a\"] = \"open }", "unfinished string" },
  { "return { [\"a\"] = 1e }", "malformed number" },
  { "return { [\"a\"] = 1/2 }", "expected ',' or '}' near '/2 }'" },
  { "return { [\"a\"] = nil }", "expected a value" },
  { "return { [\"a\"] = \"\\q\" }", "invalid escape sequence" },
  { "return \"\\300\"", "decimal escape too large" },
  { string.rep("return ", 1) .. string.rep("{[1]=", 100) .. string.rep("}", 100), "nested too deeply" },
  { "\0\1\2garbage", "expected 'return'" },
}
for _, case in ipairs(bad) do
  fails(function() datafile.parse(case[1], "empty.lua") end, case[2])
end
assert(io.open(marker) == nil, "a run file's code was executed")
-- random bytes never raise anything but a positioned message
math.randomseed(7)
for _ = 1, 300 do
  local n = math.random(0, 40)
  local t = {}
  for i = 1, n do t[i] = string.char(math.random(0, 255)) end
  local text = (math.random() < 0.5 and "return {" or "") .. table.concat(t)
  local ok, err = pcall(datafile.parse, text, "fuzz.lua")
  assert(ok or tostring(err):match("^fuzz%.lua:%d+: "), tostring(err))
end

-- ---- training runs --------------------------------------------------------------------------
local function cfg(extra)
  local c = { task = "student_teacher", method = "dfc", hidden = { 6 }, batch = 32, tmax = 30,
    dt = 0.05, optimizer = "adam", lr = 0.01, seed = 5, epochs = 4, out_dir = tmp, progress = false,
    task_opts = { n_train = 256, n_valid = 64, n_test = 64 } }
  for k, v in pairs(extra or {}) do c[k] = v end
  return c
end

local function same_run(a, b, what)
  assert(#a.log == #b.log, what .. ": log length")
  for e = 1, #a.log do
    for _, k in ipairs { "train_loss", "valid_loss", "test_loss" } do
      assert(a.log[e][k] == b.log[e][k], string.format("%s: epoch %d %s: %.17g vs %.17g", what, e - 1, k,
        a.log[e][k], b.log[e][k]))
    end
  end
  for i = 1, a.trainer.L do
    local x, y = a.trainer.net.W[i]:weights(), b.trainer.net.W[i]:weights()
    for k = 1, #x do assert(x[k] == y[k], what .. ": W" .. i .. " differs") end
  end
end

local straight = dfc.train(cfg { name = "straight" })
local m = assert(checkpoint.verify(straight.run_dir .. "/checkpoint"))
assert(m.epoch == 4 and #m.files >= 5, "manifest")
local m_old = assert(checkpoint.verify(straight.run_dir .. "/checkpoint.old"))
assert(m_old.epoch == 3, "checkpoint.old holds the previous epoch")
assert(io.open(straight.run_dir .. "/checkpoint.tmp") == nil)

-- Runs 3 epochs, then leaves the directory as a crash between the renames of the save of epoch
-- 3 would: checkpoint.old/ (epoch 2) and checkpoint.tmp/ (epoch 3), no checkpoint/.
local function crashed_between_renames(name)
  local r = dfc.train(cfg { epochs = 3, name = name })
  assert(os.rename(r.run_dir .. "/checkpoint", r.run_dir .. "/checkpoint.tmp"))
  return r.run_dir
end

-- the manifest reader: mutated manifests (bytes changed, lines cut or repeated) are refused
-- with a message naming the manifest and line, or read (never an error raised)
do
  local dir = straight.run_dir .. "/checkpoint"
  local text = read(dir .. "/manifest.txt")
  local path = tmp .. "/manifest.txt"
  math.randomseed(11)
  local refused = 0
  for k = 1, 400 do
    local t = text
    local op = k % 4
    if op == 0 then
      local at = math.random(1, #t)
      t = t:sub(1, at - 1) .. string.char(math.random(0, 255)) .. t:sub(at + 1)
    elseif op == 1 then
      t = t:sub(1, math.random(0, #t - 1))
    elseif op == 2 then
      local lines = {}
      for l in t:gmatch("[^\n]*\n") do lines[#lines + 1] = l end
      local i = math.random(1, #lines)
      table.insert(lines, i, lines[math.random(1, #lines)])
      t = table.concat(lines)
    else
      t = t:gsub("%x", function(h) return math.random() < 0.02 and "g" or h end)
    end
    write(path, t)
    local ok, m, err = pcall(checkpoint.read_manifest, path)
    assert(ok, "read_manifest raised: " .. tostring(m))
    if not m then
      refused = refused + 1
      assert(err:find("^" .. path:gsub("%p", "%%%0") .. ":%d+: "), err)
    end
  end
  assert(refused > 200, "most mutations are refused: " .. refused)
  os.remove(path)
end

-- F4: resume takes the newest complete checkpoint (epoch 3, in checkpoint.tmp/)
do
  local dir = crashed_between_renames("between")
  local r = dfc.train(cfg { resume = dir })
  same_run(straight, r, "resumed after a crash between the renames")
  assert(#r.warnings == 0, "no warning for an interrupted save")
  assert(checkpoint.verify(dir .. "/checkpoint").epoch == 4)
end

-- F6: one flipped byte in the data of W1.npy
local function flip(path, at)
  local s = read(path)
  at = at or #s - 3
  write(path, s:sub(1, at - 1) .. string.char((s:byte(at) + 1) % 256) .. s:sub(at + 1))
end
do
  -- checkpoint/ damaged: refused, naming the file, when nothing older is complete ...
  local r = dfc.train(cfg { epochs = 1, name = "flip1" })
  flip(r.run_dir .. "/checkpoint/W1.npy")
  fails(function() dfc.train(cfg { resume = r.run_dir }) end, r.run_dir .. "/checkpoint/W1.npy: CRC-32",
    "the file is damaged", "no other complete checkpoint")
  -- ... and passed over for checkpoint.old/ (epoch 2), saying so
  local r2 = dfc.train(cfg { epochs = 3, name = "flip2" })
  flip(r2.run_dir .. "/checkpoint/W1.npy")
  local resumed = dfc.train(cfg { resume = r2.run_dir })
  same_run(straight, resumed, "resumed from checkpoint.old after a damaged checkpoint")
  assert(resumed.warnings[1]:find(r2.run_dir .. "/checkpoint/W1.npy: CRC-32", 1, true), resumed.warnings[1])
  assert(resumed.warnings[1]:find("resuming from the complete checkpoint " .. r2.run_dir ..
    "/checkpoint.old (epoch 2) instead", 1, true), resumed.warnings[1])
  assert(read(r2.run_dir .. "/checkpoint.damaged/W1.npy"), "the damaged checkpoint is kept aside")
  -- a file the manifest does not list
  local r4 = dfc.train(cfg { epochs = 1, name = "extra" })
  write(r4.run_dir .. "/checkpoint/W9.npy", read(r4.run_dir .. "/checkpoint/W1.npy"))
  fails(function() dfc.train(cfg { resume = r4.run_dir }) end,
    r4.run_dir .. "/checkpoint/W9.npy: not in the manifest " .. r4.run_dir .. "/checkpoint/manifest.txt")
  -- a truncated file
  local r3 = dfc.train(cfg { epochs = 1, name = "trunc" })
  local s = read(r3.run_dir .. "/checkpoint/opt.steps.npy")
  write(r3.run_dir .. "/checkpoint/opt.steps.npy", s:sub(1, 20))
  fails(function() dfc.train(cfg { resume = r3.run_dir }) end, "opt.steps.npy: 20 bytes, the manifest records")
end

-- F5: an edited epoch contradicts the log (the manifest edited to match, or the file's CRC
-- catches it first); code in config.lua is not run; an empty file is named with its line
local function rewrite_manifest(dir)
  local m = assert(checkpoint.read_manifest(dir .. "/manifest.txt"))
  local names = {}
  for _, e in ipairs(m.files) do names[#names + 1] = e.name end
  local lines = { "apical checkpoint 1", "epoch " .. m.epoch }
  for _, name in ipairs(names) do
    local crc, size = fs.crc32(dir .. "/" .. name)
    lines[#lines + 1] = string.format("file %s %d %08x", name, size, crc)
  end
  lines[#lines + 1] = "end " .. #names
  write(dir .. "/manifest.txt", table.concat(lines, "\n") .. "\n")
end
do
  local r = dfc.train(cfg { epochs = 3, name = "edit" })
  local dir = r.run_dir .. "/checkpoint"
  local state = read(dir .. "/state.lua")
  for _, e in ipairs { 9, 1 } do
    write(dir .. "/state.lua", (state:gsub('%["epoch"%] = 3,\n  %["files"%]', '["epoch"] = ' .. e .. ',\n  ["files"]')))
    assert(read(dir .. "/state.lua") ~= state, "the edit took")
    rewrite_manifest(dir)
    fails(function() dfc.train(cfg { resume = r.run_dir }) end, dir .. "/state.lua: epoch " .. e ..
      " contradicts the checkpoint's manifest (epoch 3)")
  end
  -- the manifest's epoch edited too: the log's last row is epoch 3 (checkpoint.old/, epoch 2,
  -- would be newer than an epoch-1 checkpoint: moved away for this case)
  local mtext = read(dir .. "/manifest.txt")
  assert(os.rename(r.run_dir .. "/checkpoint.old", r.run_dir .. "/old"))
  write(dir .. "/manifest.txt", (mtext:gsub("epoch 3", "epoch 1")))
  fails(function() dfc.train(cfg { resume = r.run_dir }) end,
    dir .. "/state.lua: epoch 1 contradicts the log, whose last row is epoch 3")
  -- edited without fixing the manifest: the CRC refuses it and the run goes on from epoch 2
  assert(os.rename(r.run_dir .. "/old", r.run_dir .. "/checkpoint.old"))
  write(dir .. "/state.lua", state:gsub('%["epoch"%] = 3,\n  %["files"%]', '["epoch"] = 9,\n  ["files"]'))
  write(dir .. "/manifest.txt", mtext)
  local resumed = dfc.train(cfg { resume = r.run_dir })
  assert(resumed.warnings[1]:find("state.lua: CRC-32", 1, true), resumed.warnings[1])
  same_run(straight, resumed, "resumed past an edited state.lua")

  -- config.lua: code is not run, and an empty one is named with its line
  local r2 = dfc.train(cfg { epochs = 1, name = "config" })
  local c = read(r2.run_dir .. "/config.lua")
  write(r2.run_dir .. "/config.lua", c:gsub("return {", "return os.execute('touch " .. marker .. "') or {", 1))
  fails(function() dfc.train(cfg { resume = r2.run_dir }) end, "resume: " .. r2.run_dir .. "/config.lua:2: expected a value")
  assert(io.open(marker) == nil, "config.lua was executed")
  write(r2.run_dir .. "/config.lua", "")
  fails(function() dfc.train(cfg { resume = r2.run_dir }) end, r2.run_dir .. "/config.lua:1: empty file")
  write(r2.run_dir .. "/config.lua", c)
  write(r2.run_dir .. "/checkpoint/manifest.txt", "apical checkpoint 1\nepoch 1\nfile W1.npy 12\n")
  fails(function() dfc.train(cfg { resume = r2.run_dir }) end,
    r2.run_dir .. "/checkpoint/manifest.txt:3: expected 'file NAME SIZE CRC32'")
end

-- F7: the run directory's lock (two processes: tests/kill/kill_resume.lua)
do
  local r = dfc.train(cfg { epochs = 1, name = "lock" })
  local lk = assert(fs.lock(r.run_dir))
  fails(function() dfc.train(cfg { epochs = 2, resume = r.run_dir }) end,
    "resume: directory " .. r.run_dir .. " is in use by this process (pid " .. fs.getpid())
  lk:release()
  dfc.train(cfg { epochs = 2, resume = r.run_dir }) -- released: resumes
end

-- a checkpoint written before manifests: resumed, with a warning that it is not verified
do
  local r = dfc.train(cfg { epochs = 3, name = "legacy" })
  os.remove(r.run_dir .. "/checkpoint/manifest.txt")
  assert(fs.remove_tree(r.run_dir .. "/checkpoint.old"))
  local resumed = dfc.train(cfg { resume = r.run_dir })
  same_run(straight, resumed, "resumed from a checkpoint without a manifest")
  assert(resumed.warnings[1] == r.run_dir .. "/checkpoint has no manifest.txt (written by an older " ..
    "apical): its files are not verified", resumed.warnings[1])
end

-- no checkpoint at all
fails(function() dfc.train(cfg { resume = tmp .. "/nothing" }) end, "no checkpoint in " .. tmp .. "/nothing")
do
  assert(fs.mkdir(tmp .. "/bare", false))
  fails(function() dfc.train(cfg { resume = tmp .. "/bare" }) end, "no checkpoint in " .. tmp .. "/bare (no checkpoint/ with a complete manifest.txt)")
end

-- rundir.read: a finished run as data
do
  local c, state = rundir.read(straight.run_dir)
  assert(c.epochs == 4 and state.epoch == 4 and #state.log == 5)
end

assert(fs.remove_tree(tmp))
check.done("test_checkpoint")
