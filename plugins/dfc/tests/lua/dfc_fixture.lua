-- dfc_fixture.lua — what the DFC plugin's Lua tests share: the counting check harness of
-- tests/lua/check.lua (every check counted, named tests, a report that fails the process), a
-- temporary run directory, trainer configurations over a base, and the linear algebra and
-- set-up of the Theorem 6 tests (test_feedback.lua, test_pathway_feedback.lua). A test starts
--   package.path = (arg[0]:match("^(.*)/") or ".") .. "/?.lua;" .. package.path
--   local fx = require "dfc_fixture"
--   local check, assert = fx.check, fx.check.assert
-- and ends with check.done(name).
local here = debug.getinfo(1, "S").source:match("^@(.*)/") or "."
package.path = here .. "/../../../../tests/lua/?.lua;" .. package.path

local apical = require "apical"
local dfc = apical.plugin "dfc"
local check = require "check"

local M = { check = check }

-- A new directory for the runs of this test, removed by check.done.
M.tmpdir = check.tmpdir

-- f must fail with a message containing `needle` and starting with the file:line of the call
-- (written on one line with fails): the user's line, wherever the error was raised.
M.fails = check.fails

-- A function that copies `base` and sets `extra`'s fields over it (one level: a table in extra
-- replaces base's).
function M.config(base)
  return function(extra)
    local c = {}
    for k, v in pairs(base) do c[k] = v end
    for k, v in pairs(extra or {}) do c[k] = v end
    return c
  end
end

-- ---- small dense linear algebra ----------------------------------------------------------
-- J^T (J J^T + gamma I)^{-1} for J (m x n, flat row-major, 1-based), as a flat n x m list.
function M.damped_pinv(J, m, n, gamma)
  local A = {}
  for a = 1, m do
    A[a] = {}
    for b = 1, m do
      local s = 0
      for k = 1, n do s = s + J[(a - 1) * n + k] * J[(b - 1) * n + k] end
      A[a][b] = s + (a == b and gamma or 0)
    end
    for b = 1, m do A[a][m + b] = a == b and 1 or 0 end
  end
  for c = 1, m do -- Gauss-Jordan with partial pivoting
    local p = c
    for r = c + 1, m do if math.abs(A[r][c]) > math.abs(A[p][c]) then p = r end end
    A[c], A[p] = A[p], A[c]
    local d = A[c][c]
    for b = 1, 2 * m do A[c][b] = A[c][b] / d end
    for r = 1, m do
      if r ~= c then
        local f = A[r][c]
        for b = 1, 2 * m do A[r][b] = A[r][b] - f * A[c][b] end
      end
    end
  end
  local T = {}
  for r = 1, n do
    for c = 1, m do
      local s = 0
      for a = 1, m do s = s + J[(a - 1) * n + r] * A[a][m + c] end
      T[#T + 1] = s
    end
  end
  return T
end

-- The angle in degrees between two flat vectors.
function M.angle(a, b)
  local ab, aa, bb = 0, 0, 0
  for k = 1, #a do ab, aa, bb = ab + a[k] * b[k], aa + a[k] ^ 2, bb + b[k] ^ 2 end
  return math.deg(math.acos(math.max(-1, math.min(1, ab / math.sqrt(aa * bb)))))
end

-- The smallest angle between q and J^T (J J^T + gamma I)^{-1} over gamma = 10^-3 .. 10^3 (quarter
-- decades), and that gamma.
function M.best_angle(q, J, m, n)
  local best, best_gamma = math.huge, 0
  for e = -3, 3, 0.25 do
    local a = M.angle(q, M.damped_pinv(J, m, n, 10 ^ e))
    if a < best then best, best_gamma = a, 10 ^ e end
  end
  return best, best_gamma
end

-- A projection's weights as a plain list (a copy).
function M.weights_of(p)
  local w, t = p:weights(), {}
  for k = 1, #w do t[k] = w[k] end
  return t
end

-- ---- Theorem 6: feedback training alone on a frozen linear 6-5-4-3 network ---------------
-- Builds the network (extra: more dfc.network options), trains its feedback for 600
-- sleep-phase steps (tau_v_fb = dt_fb: the theorem's separation of timescales) and measures
-- Condition 2 and the best angle of the feedback before and after. feedback(net) gives the
-- flat feedback to compare and the Q to pass to dfc.condition2 (nil: the network's own). Returns
-- c0, a0, c, a, gamma and the network, its batch X and the single input x1.
function M.theorem6(extra, feedback)
  local B = 32
  local o = { sizes = { 6, 5, 4, 3 }, batch = B, activation = "linear",
    output_activation = "linear", plastic_feedback = true, seed = 3 }
  for k, v in pairs(extra or {}) do o[k] = v end
  local net = dfc.network(o)
  local sleep = dfc.sleep(net, { tau_v_fb = 0.002 })
  local opt = apical.optim.sgd { model = net.model, projections = net.Q, lr = 0.3,
    weight_decay = 0.025, clip = 1, clip_mode = "global" }
  local X = apical.zeros { B, 6 }
  for k = 1, #X do X[k] = 2 * math.sin(12.9898 * k) end
  local x1 = apical.zeros { 1, 6 }
  for k = 1, 6 do x1[k] = X[k] end
  local J = apical.zeros { 1, 3, 12 }
  dfc.jacobian { model = net.model, x = x1, out = J }
  local c2 = apical.zeros { 1 }
  local function measure()
    local q, Q = feedback(net)
    dfc.condition2 { model = net.model, x = x1, out = c2, Q = Q }
    local best, gamma = M.best_angle(q, J, 3, 12)
    return c2[1], best, gamma
  end
  local c0, a0 = measure()
  for it = 1, 600 do
    if it == 401 then opt:set_lr(0.03) end -- settle the noisy steps
    opt:zero()
    sleep:gradient(X, opt, it)
    opt:step()
  end
  local c, a, g = measure()
  return c0, a0, c, a, g, net, X, x1
end

return M
