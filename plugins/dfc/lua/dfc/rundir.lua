-- apical.plugins.dfc.rundir — a training run's directory: config.lua (the resolved
-- configuration), log.csv (one row per epoch, rewritten atomically) and checkpoint/ (weights,
-- optimiser state and progress after the last completed epoch, with a manifest of CRC-32s:
-- checkpoint.lua), the lock held while a run uses it, and resuming a run from it (its files
-- read as data: datafile.lua).
local apical = require "apical"
local checkpoint = require "apical.plugins.dfc.checkpoint"
local datafile = require "apical.plugins.dfc.datafile"

local fs = apical.fs
local M = {}
local Dir = {}
Dir.__index = Dir

local function check(ok, err)
  if not ok then error(err, 0) end
  return ok
end

local function mkdir(path)
  check(fs.mkdir(path, true))
end

-- Creates the directory `path` itself (its parent must exist): true, or false when something
-- of that name exists already. mkdir(2) is atomic, so two runs started in the same second
-- cannot both claim the same name.
local function claim(path)
  local ok, err = fs.mkdir(path, false)
  if ok == nil then error(err, 0) end
  return ok
end

local function exists(path)
  local f = io.open(path, "rb")
  if f then f:close() return true end
  return false
end

-- Writes a file atomically and durably (a temporary file next to it, fsync, rename, fsync of
-- the directory).
local function write_atomic(path, text)
  check(fs.write(path, text))
end

-- Lua source for a value (sorted keys, so files compare).
local function serialize(v, indent)
  indent = indent or ""
  if type(v) == "table" then
    local keys = {}
    for k in pairs(v) do keys[#keys + 1] = k end
    table.sort(keys, function(a, b) return tostring(a) < tostring(b) end)
    local parts = {}
    for _, k in ipairs(keys) do
      local key = type(k) == "number" and ("[" .. k .. "]") or string.format("[%q]", k)
      parts[#parts + 1] = indent .. "  " .. key .. " = " .. serialize(v[k], indent .. "  ")
    end
    return "{\n" .. table.concat(parts, ",\n") .. "\n" .. indent .. "}"
  elseif type(v) == "string" then
    return string.format("%q", v)
  elseif type(v) == "number" then
    -- NaN and infinities as expressions Lua reads back (a measure that failed is NaN)
    if v ~= v then return "0/0" end
    if v == math.huge or v == -math.huge then return v > 0 and "1/0" or "-1/0" end
    if v % 1 == 0 and math.abs(v) < 2 ^ 53 then return string.format("%d", v) end
    return string.format("%.17g", v)
  else
    return tostring(v)
  end
end
M.serialize = serialize

-- Options a resumed run may change: how long it goes on and how it reports.
local may_change = { resume = true, epochs = true, progress = true, checkpoint = true, eval_batch = true,
  name = true, out_dir = true }

local function same(a, b)
  if type(a) ~= type(b) then return false end
  if type(a) ~= "table" then return a == b or (a ~= a and b ~= b) end
  for k, v in pairs(a) do if not same(v, b[k]) then return false end end
  for k in pairs(b) do if a[k] == nil then return false end end
  return true
end

local function show(v)
  if type(v) == "number" then return string.format("%.10g", v) end
  return (serialize(v):gsub("%s+", " "))
end

-- The configuration and the checkpoint's state of run directory `run_dir`, read as data (for
-- scripts that look at a finished run: examples/euler_vs_cvode.lua).
function M.read(run_dir)
  local sel, err = checkpoint.select(run_dir)
  if not sel then error(err, 0) end
  local cfg = datafile.read(run_dir .. "/config.lua")
  return cfg, checkpoint.read_state(run_dir .. "/" .. sel.name, sel.manifest and sel.manifest.epoch)
end

-- A resumed run must be the same run: every option but those above as the run directory's
-- config.lua has it (a changed one is an error naming it and both values).
local function check_same_config(path, cfg, defaults)
  local ok, saved = pcall(datafile.read, path .. "/config.lua")
  if not ok then error("resume: " .. saved, 0) end
  if type(saved) ~= "table" then error("resume: " .. path .. "/config.lua: expected a table", 0) end
  local keys = {}
  for k in pairs(cfg) do keys[#keys + 1] = k end
  for k in pairs(saved) do if cfg[k] == nil then keys[#keys + 1] = k end end
  table.sort(keys)
  for _, k in ipairs(keys) do
    -- an option newer than the run directory counts as saved at its default
    local was = saved[k]
    if was == nil and defaults then was = defaults[k] end
    if not may_change[k] and not same(cfg[k], was) then
      error(string.format("resume: option %s is %s here but %s in %s/config.lua; a resumed run " ..
        "keeps its configuration (only epochs, progress, checkpoint, eval_batch, name and out_dir may change)",
        k, show(cfg[k]), show(was), path), 0)
    end
  end
end

-- Takes the run directory's lock (held until Dir:close() or the end of the process): a second
-- run or resume of the same directory is refused, naming the process that holds it.
function Dir:lock()
  local lk, err = fs.lock(self.path)
  if not lk then error(err, 0) end
  self.lk = lk
end

-- Releases the lock.
function Dir:close()
  if self.lk then self.lk:release() end
  self.lk = nil
end

-- Resuming: the lock, the newest complete checkpoint (renamed into place after a crash), the
-- state read as data and checked against the manifest and the log, the configuration.
-- A follower (another MPI rank than the one that owns the directory, after the owner resumed)
-- reads the checkpoint the owner put in place: no lock, no renames, no warnings of its own.
local function resume(d, cfg, trainer, follower)
  if not fs.list(d.path) then
    error("resume: no checkpoint in " .. d.path .. " (no such directory)", 0)
  end
  if not follower then
    local lk, err = fs.lock(d.path)
    if not lk then error("resume: " .. err, 0) end
    d.lk = lk
  end
  local sel, warnings = checkpoint.select(d.path)
  if not sel then error("resume: " .. warnings, 0) end
  if follower and sel.name ~= "checkpoint" then
    error("resume: the owner of " .. d.path .. " left no complete checkpoint in place", 0)
  end
  for _, w in ipairs(follower and {} or warnings) do
    io.stderr:write("dfc.train: warning: ", w, "\n")
    trainer.warnings = trainer.warnings or {}
    trainer.warnings[#trainer.warnings + 1] = w
  end
  if not follower then checkpoint.recover(d.path, sel) end
  local state = checkpoint.read_state(d.path .. "/checkpoint", sel.manifest and sel.manifest.epoch)
  check_same_config(d.path, cfg, trainer.defaults)
  d:load(trainer, state)
end

-- Opens the run directory: a new one, or the one named by cfg.resume (whose checkpoint sets
-- the starting epoch, the weights and the optimiser state). `follower`: resume as another MPI
-- rank than the directory's owner, after the owner (dfc/mpi.lua).
function M.open(cfg, trainer, follower)
  local d = setmetatable({ log = {}, epoch = 0, best = nil, wall = 0 }, Dir)
  if cfg.resume ~= "" then
    d.path = cfg.resume
    local ok, err = pcall(resume, d, cfg, trainer, follower)
    if not ok then
      d:close()
      error(err, 0)
    end
    return d
  end
  local name = cfg.name ~= "" and cfg.name or (trainer.task.name .. "-" .. cfg.method)
  d.path = cfg.out_dir .. "/" .. name .. "-" .. os.date("%Y%m%d-%H%M%S")
  local base, k = d.path, 1
  mkdir(cfg.out_dir)
  while not claim(d.path) do
    k = k + 1
    d.path = base .. "-" .. k
  end
  check(fs.sync_dir(cfg.out_dir)) -- the new directory's entry is durable
  d:lock()
  write_atomic(d.path .. "/config.lua", "-- the resolved configuration of this run\nreturn " .. serialize(cfg) .. "\n")
  return d
end

-- A CSV file `name` in the run directory (written atomically): a header of the columns, then
-- one line per row (a table keyed by column; missing values are 0).
function Dir:write_csv(name, columns, rows)
  local lines = { table.concat(columns, ",") }
  for _, r in ipairs(rows) do
    local f = {}
    for i, c in ipairs(columns) do
      local v = r[c] or 0
      f[i] = v ~= v and "nan" or string.format("%.10g", v)
    end
    lines[#lines + 1] = table.concat(f, ",")
  end
  write_atomic(self.path .. "/" .. name, table.concat(lines, "\n") .. "\n")
end

function Dir:write_log(columns, rows)
  self:write_csv("log.csv", columns, rows)
end

-- A headerless numeric matrix (a table of rows) as CSV: pictures drawn with gnuplot's
-- `matrix` mode (the autoencoder's reconstructions).
function Dir:write_matrix(name, rows)
  local lines = {}
  for i, r in ipairs(rows) do
    local f = {}
    for j, v in ipairs(r) do f[j] = string.format("%.6g", v) end
    lines[i] = table.concat(f, ",")
  end
  write_atomic(self.path .. "/" .. name, table.concat(lines, "\n") .. "\n")
end

local function tensors(trainer)
  local t = {}
  for i = 1, trainer.L do
    t[#t + 1] = { "W" .. i, trainer.net.W[i] }
    t[#t + 1] = { "Q" .. i, trainer.net.Q[i] }
  end
  return t
end

-- A checkpoint of epoch `epoch` (checkpoint.lua: written as checkpoint.tmp/ with a manifest,
-- then renamed into place; the previous one stays as checkpoint.old/).
function Dir:save(trainer, epoch, log, best, wall)
  checkpoint.save(self.path, epoch, function(tmp)
    local files = {}
    for _, e in ipairs(tensors(trainer)) do
      local name, p = e[1], e[2]
      p:weights():save_npy(tmp .. "/" .. name .. ".npy")
      files[#files + 1] = name .. ".npy"
      if p.has_bias then
        p:bias():save_npy(tmp .. "/" .. name .. ".bias.npy")
        files[#files + 1] = name .. ".bias.npy"
      end
    end
    trainer.opt:save(tmp .. "/opt.")
    for _, e in ipairs(trainer.extra_optimisers or {}) do e[2]:save(tmp .. "/" .. e[1]) end
    local state = { epoch = epoch, log = log, best = best, wall = wall, files = files,
      measure_rows = trainer.measure_rows }
    write_atomic(tmp .. "/state.lua", "return " .. serialize(state) .. "\n")
  end)
end

-- The weights (W1.npy, W1.bias.npy, Q1.npy, ...) of a run directory's checkpoint into a
-- trainer of the same network (e.g. to simulate a trained network: examples/euler_vs_cvode.lua).
-- The checkpoint is the newest complete one (nothing is renamed).
function M.load_weights(trainer, run_dir)
  local sel, err = checkpoint.select(run_dir)
  if not sel then error(err, 0) end
  local dir = run_dir .. "/" .. sel.name
  for _, e in ipairs(tensors(trainer)) do
    local name, p = e[1], e[2]
    p:load(dir .. "/" .. name .. ".npy", p.has_bias and (dir .. "/" .. name .. ".bias.npy") or nil)
  end
end

function Dir:load(trainer, state)
  local dir = self.path .. "/checkpoint"
  M.load_weights(trainer, self.path)
  trainer.opt:load(dir .. "/opt.")
  for _, e in ipairs(trainer.extra_optimisers or {}) do e[2]:load(dir .. "/" .. e[1]) end
  self.epoch, self.log, self.best, self.wall = state.epoch, state.log, state.best, state.wall
  if trainer.measure_rows then trainer.measure_rows = state.measure_rows or {} end
end

return M
