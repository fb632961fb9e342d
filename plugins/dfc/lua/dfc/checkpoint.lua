-- apical.plugins.dfc.checkpoint — the crash-safe checkpoint protocol of a run directory
-- (docs/training.md, "Checkpoints"; the manifest in docs/file-formats.md).
--
-- A checkpoint is a directory of files and a manifest (manifest.txt: the epoch, and each
-- file's size and CRC-32), written last. A directory with a manifest whose files all match it
-- is COMPLETE. Saving epoch e:
--   1. checkpoint.tmp/ gets the files (each written atomically and fsynced), then the manifest;
--      the directory is fsynced
--   2. the previous checkpoint.old/ is removed, checkpoint/ renamed to checkpoint.old/
--   3. checkpoint.tmp/ renamed to checkpoint/; the run directory fsynced after each rename
-- so at every moment one of checkpoint/, checkpoint.tmp/ and checkpoint.old/ is complete, and
-- after a save checkpoint.old/ holds the previous epoch. Resuming takes the complete one of the
-- highest epoch (a damaged one — a file missing or not matching its CRC — is passed over with a
-- warning naming the file, or refused when nothing complete is left) and renames it to
-- checkpoint/ if it is not there already.
local apical = require "apical"
local datafile = require "apical.plugins.dfc.datafile"

local fs = apical.fs
local M = {}

M.MANIFEST = "manifest.txt"
local HEADER = "apical checkpoint 1"

local function has(path)
  local f = io.open(path, "rb")
  if f then f:close() end
  return f ~= nil
end

local function check(ok, err)
  if not ok then error(err, 0) end
  return ok
end

-- The crash tests' hook: APICAL_TEST_KILL_AT=<point>[:<n>] sends SIGKILL to this process the
-- n-th time (default 1) a save reaches <point> (save-files, save-manifest, save-rename-old,
-- save-rename-new, save-done). Once per save, never in the training loop.
local kill_hits = {}
function M.point(name)
  local at = os.getenv("APICAL_TEST_KILL_AT")
  if not at then return end
  local want, n = at:match("^([%w%-_]+):?(%d*)$")
  if want ~= name then return end
  kill_hits[name] = (kill_hits[name] or 0) + 1
  if kill_hits[name] == (tonumber(n) or 1) then fs.kill_self() end
end

-- The manifest's text for the files `names` of directory `dir` at epoch `epoch`.
local function manifest_text(dir, epoch, names)
  local lines = { HEADER, string.format("epoch %d", epoch) }
  for _, name in ipairs(names) do
    local crc, size = fs.crc32(dir .. "/" .. name)
    if not crc then error(size, 0) end
    lines[#lines + 1] = string.format("file %s %d %08x", name, size, crc)
  end
  lines[#lines + 1] = string.format("end %d", #names)
  return table.concat(lines, "\n") .. "\n"
end

-- Parses manifest `path`: { epoch = e, files = { { name, size, crc }, ... } } or nil, message
-- naming the file and line.
function M.read_manifest(path)
  local f = io.open(path, "rb")
  if not f then return nil, path .. ": missing" end
  local text = f:read("a") or ""
  f:close()
  local m, n, ended = { files = {} }, 0, false
  for line in (text .. (text:sub(-1) == "\n" and "" or "\n")):gmatch("(.-)\n") do
    n = n + 1
    local bad = function(what) return nil, string.format("%s:%d: %s (line: %q)", path, n, what, line) end
    if ended then return bad("text after 'end'") end
    if n == 1 then
      if line ~= HEADER then return bad("not an apical checkpoint manifest (expected '" .. HEADER .. "')") end
    elseif n == 2 then
      local e = line:match("^epoch (%d+)$")
      if not e then return bad("expected 'epoch N'") end
      m.epoch = tonumber(e)
    elseif line:match("^end ") then
      local k = tonumber(line:match("^end (%d+)$"))
      if k ~= #m.files then return bad(string.format("'end' counts %s files, the manifest lists %d", tostring(k), #m.files)) end
      ended = true
    else
      local name, size, crc = line:match("^file ([%w%._%-]+) (%d+) (%x%x%x%x%x%x%x%x)$")
      if not name then return bad("expected 'file NAME SIZE CRC32'") end
      m.files[#m.files + 1] = { name = name, size = tonumber(size), crc = tonumber(crc, 16) }
    end
  end
  if not ended then return nil, string.format("%s:%d: no 'end' line (the manifest is incomplete)", path, n) end
  return m
end

-- Checks directory `dir` against its manifest: the manifest, or nil and a message naming the
-- first file at fault.
function M.verify(dir)
  local m, err = M.read_manifest(dir .. "/" .. M.MANIFEST)
  if not m then return nil, err end
  local listed = { [M.MANIFEST] = true }
  for _, e in ipairs(m.files) do listed[e.name] = true end
  for _, name in ipairs(fs.list(dir) or {}) do
    if not listed[name] then
      return nil, string.format("%s/%s: not in the manifest %s/%s", dir, name, dir, M.MANIFEST)
    end
  end
  for _, e in ipairs(m.files) do
    local path = dir .. "/" .. e.name
    local crc, size = fs.crc32(path)
    if not crc then return nil, path .. ": missing or unreadable (" .. tostring(size) .. ")" end
    if size ~= e.size then
      return nil, string.format("%s: %d bytes, the manifest records %d (the file is damaged)", path, size, e.size)
    end
    if crc ~= e.crc then
      return nil, string.format("%s: CRC-32 %08x, the manifest records %08x (the file is damaged)", path, crc, e.crc)
    end
  end
  return m
end

-- Writes a checkpoint of epoch `epoch` into run directory `run`: write(dir) puts the files
-- into the directory it is given.
function M.save(run, epoch, write)
  local tmp, dst, old = run .. "/checkpoint.tmp", run .. "/checkpoint", run .. "/checkpoint.old"
  check(fs.remove_tree(tmp)) -- left by a crash
  check(fs.mkdir(tmp))
  write(tmp)
  M.point("save-files")
  local names = {}
  for _, name in ipairs(check(fs.list(tmp))) do
    if name ~= M.MANIFEST then names[#names + 1] = name end
  end
  check(fs.write(tmp .. "/" .. M.MANIFEST, manifest_text(tmp, epoch, names)))
  check(fs.sync_dir(tmp))
  M.point("save-manifest")
  if fs.list(dst) then
    check(fs.remove_tree(old))
    check(os.rename(dst, old))
    check(fs.sync_dir(run))
  end
  M.point("save-rename-old")
  check(os.rename(tmp, dst))
  check(fs.sync_dir(run))
  M.point("save-rename-new")
end

local candidates = { "checkpoint", "checkpoint.tmp", "checkpoint.old" }

-- The newest complete checkpoint of run directory `run`: its directory name (one of
-- `candidates`) and manifest, plus the warnings about the damaged ones passed over; or nil and
-- a message. A checkpoint/ without a manifest (written before manifests existed) is taken,
-- unverified, when nothing complete is newer.
function M.select(run)
  local best, warnings, damaged = nil, {}, {}
  for rank, name in ipairs(candidates) do
    local dir = run .. "/" .. name
    if fs.list(dir) then
      local m, err = M.verify(dir)
      if m and (not best or m.epoch > best.manifest.epoch) then
        best = { name = name, manifest = m, rank = rank }
      elseif not m and has(dir .. "/" .. M.MANIFEST) then
        damaged[#damaged + 1] = err -- a manifest but not matching it (checkpoint.tmp without
      end                           -- one is only an interrupted save)
      if not m and name == "checkpoint" and not has(dir .. "/" .. M.MANIFEST) and
          has(dir .. "/state.lua") then
        warnings.legacy = dir
      end
    end
  end
  if best and #damaged > 0 then
    for _, err in ipairs(damaged) do
      warnings[#warnings + 1] = string.format("%s; resuming from the complete checkpoint %s/%s (epoch %d) instead",
        err, run, best.name, best.manifest.epoch)
    end
  end
  if not best then
    if warnings.legacy then
      return { name = "checkpoint", legacy = true }, { warnings.legacy .. " has no " .. M.MANIFEST ..
        " (written by an older apical): its files are not verified" }
    end
    if #damaged > 0 then
      return nil, string.format("%s; no other complete checkpoint in %s to resume from", damaged[1], run)
    end
    return nil, string.format("no checkpoint in %s (no checkpoint/ with a complete %s)", run, M.MANIFEST)
  end
  warnings.legacy = nil
  return best, warnings
end

-- Makes the chosen checkpoint `sel` (M.select) checkpoint/ again after a crash: the renames the
-- interrupted save did not do. A damaged checkpoint/ moves to checkpoint.damaged/.
function M.recover(run, sel)
  if sel.name == "checkpoint" then return end
  local dst, src = run .. "/checkpoint", run .. "/" .. sel.name
  if fs.list(dst) then
    local aside = sel.name == "checkpoint.tmp" and run .. "/checkpoint.old" or run .. "/checkpoint.damaged"
    check(fs.remove_tree(aside))
    check(os.rename(dst, aside))
  end
  check(os.rename(src, dst))
  check(fs.sync_dir(run))
end

-- Checks the run state read from state.lua against its manifest and itself: the epoch is the
-- manifest's and the last row of the log (whose epochs count 0, 1, 2, ...).
function M.check_state(state, path, epoch)
  local function bad(msg) error(string.format("resume: %s: %s", path, msg), 0) end
  if type(state) ~= "table" then bad("expected a table") end
  if math.type(state.epoch) ~= "integer" and not (type(state.epoch) == "number" and state.epoch % 1 == 0) then
    bad("epoch is " .. tostring(state.epoch) .. ", not a whole number")
  end
  if epoch and state.epoch ~= epoch then
    bad(string.format("epoch %d contradicts the checkpoint's manifest (epoch %d)", state.epoch, epoch))
  end
  if type(state.log) ~= "table" or #state.log == 0 then bad("no log rows") end
  for i, row in ipairs(state.log) do
    if type(row) ~= "table" or row.epoch ~= i - 1 then
      bad(string.format("log row %d has epoch %s, expected %d", i, tostring(type(row) == "table" and row.epoch), i - 1))
    end
  end
  local last = state.log[#state.log].epoch
  if state.epoch ~= last then
    bad(string.format("epoch %d contradicts the log, whose last row is epoch %d", state.epoch, last))
  end
  if type(state.best) ~= "table" or type(state.best.epoch) ~= "number" or not state.log[state.best.epoch + 1] then
    bad("best is not a row of the log")
  end
  if type(state.wall) ~= "number" then bad("wall is not a number") end
  if type(state.files) ~= "table" then bad("files is not a list") end
  return state
end

-- Reads and checks state.lua of checkpoint directory `dir` (manifest epoch `epoch`, or nil).
function M.read_state(dir, epoch)
  local path = dir .. "/state.lua"
  local ok, state = pcall(datafile.read, path)
  if not ok then error("resume: " .. state, 0) end
  return M.check_state(state, path, epoch)
end

return M
