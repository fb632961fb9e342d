-- apical.plugins.dfc.divergence — notices a training run that diverges (docs/training.md,
-- "Divergence"): the run stops with a message when a minibatch's loss (of the feedforward
-- network, checked before the minibatch's simulation, so a blown-up network is not simulated)
-- is not finite, or exceeds `loss_factor` times the run's initial training loss (the log's
-- epoch-0 row) on `patience` minibatches in a row; it warns once when a minibatch's solver
-- steps exceed `steps_factor` times the median over the run's first `early` minibatches (an
-- adaptive solver slowing down on a network whose weights blow up).
local M = {}
local D = {}
D.__index = D

M.loss_factor, M.patience, M.steps_factor, M.early = 1e4, 1, 50, 16

-- A detector for a run with configuration `cfg` whose initial training loss is `ref`.
function M.new(cfg, ref)
  return setmetatable({ cfg = cfg, ref = ref, high = 0, early = {}, median = nil, warned = false }, D)
end

local function advice(cfg)
  return string.format("lower lr (now %g)%s", cfg.lr,
    cfg.clip == 0 and " or bound the updates with clip" or "")
end

local function median(t)
  local s = {}
  for i, v in ipairs(t) do s[i] = v end
  table.sort(s)
  return s[(#s + 1) // 2]
end

-- Checks the loss of minibatch `nb` of epoch `epoch` before its update: raises when the run
-- diverges.
function D:check_loss(epoch, nb, loss)
  local where = string.format("epoch %d, minibatch %d", epoch, nb)
  if loss ~= loss or loss == math.huge or loss == -math.huge then
    error(string.format("dfc.train: training diverged at %s: the minibatch loss is %s; %s. " ..
      "The run directory keeps the checkpoint of the last completed epoch, if any", where, tostring(loss),
      advice(self.cfg)), 0)
  end
  if self.ref and self.ref > 0 and loss > M.loss_factor * self.ref then
    self.high = self.high + 1
    if self.high >= M.patience then
      error(string.format("dfc.train: training diverged at %s: the minibatch loss %.4g is %.3g times " ..
        "the initial training loss %.4g (the limit is %g times%s); %s. The run directory keeps the " ..
        "checkpoint of the last completed epoch, if any", where, loss, loss / self.ref, self.ref,
        M.loss_factor, self.high > 1 and string.format(", %d minibatches in a row", self.high) or "",
        advice(self.cfg)), 0)
    end
  else
    self.high = 0
  end
end

-- Checks the solver steps of minibatch `nb`'s simulation (nil or false without one): a warning
-- (once) when they explode, else nil.
function D:check_steps(epoch, nb, steps)
  local where = string.format("epoch %d, minibatch %d", epoch, nb)
  if not steps or steps <= 0 or self.warned then return nil end
  if not self.median then
    self.early[#self.early + 1] = steps
    if #self.early == M.early then self.median = median(self.early) end
    return nil
  end
  if steps > M.steps_factor * self.median then
    self.warned = true
    return string.format("at %s the solver took %d steps, %.0f times the median %g of the run's " ..
      "first %d minibatches: the network may be diverging or have become stiff, which makes " ..
      "%s slow; %s, or use solver = \"euler\"", where, steps, steps / self.median, self.median,
      M.early, self.cfg.solver, advice(self.cfg))
  end
  return nil
end

return M
