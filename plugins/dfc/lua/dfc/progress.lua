-- apical.plugins.dfc.progress — a one-line progress bar on stderr: position, samples/s, loss,
-- ETA. Redrawn at most five times a second. Under MPI only rank 0 draws (new returns nil).
local apical = require "apical"
local mpi = require "apical.plugins.dfc.mpi"

local M = {}
local Bar = {}
Bar.__index = Bar

function M.new(label, total, batch)
  if mpi.rank > 0 then return nil end
  return setmetatable({ label = label, total = total, batch = batch, t0 = apical.clock(), last = -1 }, Bar)
end

local function hms(s)
  s = math.max(0, math.floor(s + 0.5))
  return string.format("%d:%02d:%02d", s // 3600, s // 60 % 60, s % 60)
end

function Bar:draw(done, loss, final)
  local el = apical.clock() - self.t0
  local frac = self.total > 0 and done / self.total or 1
  local width = 24
  local fill = math.floor(frac * width + 0.5)
  local rate = el > 0 and done * self.batch / el or 0
  local eta = done > 0 and el / done * (self.total - done) or 0
  io.stderr:write(string.format("\r%s [%s%s] %3d%% %8.0f samples/s loss %.5g %s %s", self.label,
    string.rep("#", fill), string.rep(" ", width - fill), math.floor(100 * frac + 0.5), rate, loss,
    final and "took" or "ETA", hms(final and el or eta)))
  if final then io.stderr:write("\n") end
  io.stderr:flush()
end

function Bar:update(done, loss)
  local now = apical.clock()
  if now - self.last < 0.2 and done < self.total then return end
  self.last = now
  self:draw(done, loss, false)
end

function Bar:finish(loss)
  self:draw(self.total, loss, true)
end

return M
