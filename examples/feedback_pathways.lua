-- feedback_pathways.lua — the same DFC network (the student-teacher student, 15-10-10-5) with
-- four feedback pathways: direct (Q_i: ctl.u -> h_i.apical), layerwise (a chain of feedback
-- populations g2 -> g1), multilayer shared (one hidden feedback population feeding every apical
-- compartment, linear) and multilayer per layer (one hidden tanh population per layer). For
-- each: the effective feedback matrices Q_eff_i = d vA_i / d u at u = 0 (dfc.effective_feedback)
-- and Condition 2, ||P Q||_F / ||Q||_F with P = J^T (J J^T)^{-1} J (mean over the samples), first
-- with the random initial feedback, then with weight-product feedback (every pathway's
-- Q_eff = W_{i+1}^T..W_L^T); then a CVODE simulation of a few samples with the weight-product
-- feedback, showing the controlled output reaching its target (up to the leak, e = alpha u), and
-- DFC-SSA's steady state (Lemma 1 with Q_eff) next to the simulated one.
--   build/bin/apical run examples/feedback_pathways.lua [--set samples=4] [--set lambda=0.1]
local apical = require "apical"
local dfc = apical.plugin "dfc"

local p = apical.params { samples = 4, seed = 1, lambda = 0.1, t_end = 20, rtol = 1e-8,
  k_p = 1.5, alpha = 0.0015 }
local sizes = { 15, 10, 10, 5 }
local B, nL = p.samples, sizes[#sizes]

local task = dfc.tasks.student_teacher { variant = "small", n_train = B, n_valid = 1, n_test = 1, seed = p.seed }
local X, Y
for bx, by in task.train:batches { batch = B } do X, Y = bx, by end

-- ---- Condition 2 -------------------------------------------------------------------------------
-- J (n_L x N) of every sample: the kernel dfc.jacobian when the plugin has it, otherwise central
-- differences of dfc.forward through the biases (v_i = W_i r_{i-1} + b_i, so d r_L / d b_i = J_i).
local function jacobians(net)
  local N = 0
  for i = 1, net.L do N = N + net.sizes[i + 1] end
  local J = {}
  if dfc.jacobian then
    local out = apical.zeros { B, nL, N }
    dfc.jacobian { model = net.model, x = X, out = out }
    for b = 1, B do
      J[b] = {}
      for k = 1, nL * N do J[b][k] = out[(b - 1) * nL * N + k] end
    end
    return J, N
  end
  for b = 1, B do J[b] = {} end
  local plus, minus, eps, col = apical.zeros { B, nL }, apical.zeros { B, nL }, 1e-6, 0
  for i = 1, net.L do
    local W = net.W[i]
    local b0 = W:bias()
    for j = 1, net.sizes[i + 1] do
      local bb = b0:copy()
      bb[j] = b0[j] + eps
      W:set_bias(bb)
      dfc.forward { model = net.model, x = X, out = plus }
      bb[j] = b0[j] - eps
      W:set_bias(bb)
      dfc.forward { model = net.model, x = X, out = minus }
      col = col + 1
      for s = 1, B do
        for r = 1, nL do
          J[s][(r - 1) * N + col] = (plus[(s - 1) * nL + r] - minus[(s - 1) * nL + r]) / (2 * eps)
        end
      end
    end
    W:set_bias(b0)
  end
  return J, N
end

-- Solves A z = y (n x n, Gaussian elimination with partial pivoting) for several right-hand sides.
local function solve(A, Yrhs, n, m)
  local a, y = {}, {}
  for k = 1, n * n do a[k] = A[k] end
  for k = 1, n * m do y[k] = Yrhs[k] end
  for c = 0, n - 1 do
    local piv, best = c, math.abs(a[c * n + c + 1])
    for r = c + 1, n - 1 do
      if math.abs(a[r * n + c + 1]) > best then piv, best = r, math.abs(a[r * n + c + 1]) end
    end
    for k = 1, n do a[c * n + k], a[piv * n + k] = a[piv * n + k], a[c * n + k] end
    for k = 1, m do y[c * m + k], y[piv * m + k] = y[piv * m + k], y[c * m + k] end
    for r = c + 1, n - 1 do
      local f = a[r * n + c + 1] / a[c * n + c + 1]
      for k = c + 1, n do a[r * n + k] = a[r * n + k] - f * a[c * n + k] end
      for k = 1, m do y[r * m + k] = y[r * m + k] - f * y[c * m + k] end
    end
  end
  for c = n - 1, 0, -1 do
    for k = 1, m do
      local s = y[c * m + k]
      for j = c + 1, n - 1 do s = s - a[c * n + j + 1] * y[j * m + k] end
      y[c * m + k] = s / a[c * n + c + 1]
    end
  end
  return y
end

-- mean over the samples of ||P Q||_F / ||Q||_F, Q the stacked effective feedback (N x n_L)
local function condition2(net, Q)
  local J, N = jacobians(net)
  local qn = 0
  for k = 1, N * nL do qn = qn + Q[k] ^ 2 end
  local total = 0
  for b = 1, B do
    local Jb = J[b]
    local JJt, JQ = {}, {}
    for r = 0, nL - 1 do
      for c = 0, nL - 1 do
        local s, t = 0, 0
        for k = 0, N - 1 do
          s = s + Jb[r * N + k + 1] * Jb[c * N + k + 1]
          t = t + Jb[r * N + k + 1] * Q[k * nL + c + 1]
        end
        JJt[r * nL + c + 1], JQ[r * nL + c + 1] = s, t
      end
    end
    local Z = solve(JJt, JQ, nL, nL) -- (J J^T)^{-1} J Q
    local pq = 0
    for k = 0, N - 1 do
      for c = 0, nL - 1 do
        local s = 0
        for r = 0, nL - 1 do s = s + Jb[r * N + k + 1] * Z[r * nL + c + 1] end
        pq = pq + s * s
      end
    end
    total = total + math.sqrt(pq / qn)
  end
  return total / B
end

-- ---- the pathways --------------------------------------------------------------------------------
local variants = {
  { label = "direct", pathway = "direct" },
  { label = "layerwise (linear)", pathway = "layerwise" },
  { label = "multilayer, shared (linear)", pathway = "multilayer", opts = { shared = true, hidden = 12 } },
  { label = "multilayer, per layer (tanh)", pathway = "multilayer", opts = { shared = false, activation = "tanh" } },
}

local function shapes(Qs)
  local t = {}
  for i, q in ipairs(Qs) do t[i] = string.format("Q%d %dx%d", i, q.shape[1], q.shape[2]) end
  return table.concat(t, ", ")
end

print(string.format("network %s, %d samples, k_p = %g, alpha = %g", table.concat(sizes, "-"), B, p.k_p, p.alpha))
for _, v in ipairs(variants) do
  local net = dfc.network { sizes = sizes, batch = B, k_p = p.k_p, alpha = p.alpha, seed = p.seed,
    feedback_pathway = v.pathway, pathway_opts = v.opts or {} }
  local sim = net.model:compile() -- no algebraic loop: ctl.u -> pathway -> apical -> (dynamic) soma
  local names = {}
  for _, pr in ipairs(net.pathway.projections) do names[#names + 1] = pr.name end
  print(string.format("\n%s: pathway populations {%s}, projections {%s}", v.label,
    table.concat(net.pathway.populations, ", "), table.concat(names, ", ")))
  local Qs, Q = dfc.effective_feedback(net)
  print("  effective feedback: " .. shapes(Qs) .. string.format(" (stacked %dx%d)", Q.shape[1], Q.shape[2]))
  print(string.format("  Condition 2, random initial feedback: %.3f", condition2(net, Q)))
  net:set_weight_product()
  Qs, Q = dfc.effective_feedback(net)
  print(string.format("  Condition 2, weight-product feedback: %.3f", condition2(net, Q)))

  -- simulate: from the feedforward state with the controller on, to the target of (3)
  local rminus, rstar = apical.zeros { B, nL }, apical.zeros { B, nL }
  dfc.forward { model = net.model, x = X, out = rminus }
  dfc.targets { rL = rminus, y = Y, loss = "mse", lambda = p.lambda, mode = "sample", out = rstar }
  sim:set_input(net.x, X)
  sim:set_input(net.target, rstar)
  local out = sim:run { solver = "cvode-bdf", t_end = p.t_end, rtol = p.rtol, atol = 1e-10, accumulate = false }
  local rL = sim:read(net.h[net.L].rate)
  local u = sim:read(net.ctl.u)
  -- DFC-SSA (Lemma 1) with the pathway's effective feedback
  local r_ssa = apical.zeros { B, nL }
  dfc.ssa { model = net.model, x = X, target = rstar, alpha = p.alpha, rL_out = r_ssa, Qeff = net:ssa_feedback() }
  local e0, e1, leak, dss = 0, 0, 0, 0
  for k = 1, B * nL do
    e0 = e0 + (rstar[k] - rminus[k]) ^ 2
    e1 = e1 + (rstar[k] - rL[k]) ^ 2
    leak = leak + (rstar[k] - rL[k] - p.alpha * u[k]) ^ 2
    dss = dss + (r_ssa[k] - rL[k]) ^ 2
  end
  print(string.format("  CVODE to t = %g (%d steps): |r* - r_L| / |r* - r_L^-| = %.2e, |e - alpha u| = %.1e, |r_L(SSA) - r_L(sim)| / |r* - r_L^-| = %.1e",
    p.t_end, out.stats.steps, math.sqrt(e1 / e0), math.sqrt(leak), math.sqrt(dss / e0)))
end
