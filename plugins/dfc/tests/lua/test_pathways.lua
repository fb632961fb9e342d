-- test_pathways.lua — feedback pathways (pathways.lua): construction and naming of direct,
-- layerwise and multilayer pathways; they compile without algebraic loops; the effective
-- feedback of linear pathways equals the product of their weight matrices (analytic and central
-- differences, 1e-8); direct feedback returns Q itself; a nonlinear pathway's analytic Jacobian
-- against central differences, and DFC-SSA with its effective feedback against the simulated
-- steady state (error O(lambda^2)); pathways with weight-product feedback reproduce direct
-- feedback in the published Euler scheme and in the trainers; bad pathways are refused.
local apical = require "apical"
local dfc = apical.plugin "dfc"
package.path = (arg[0]:match("^(.*)/") or ".") .. "/?.lua;" .. package.path
local fx = require "dfc_fixture"
local check, assert = fx.check, fx.check.assert

local test = check.test

local fails = fx.fails -- the message starts with the line of the call

-- dense helpers on apical arrays
local function matmul(A, Bm)
  local r, k, c = A.shape[1], A.shape[2], Bm.shape[2]
  assert(Bm.shape[1] == k)
  local C = apical.zeros { r, c }
  for i = 0, r - 1 do
    for j = 1, c do
      local s = 0
      for l = 0, k - 1 do s = s + A[i * k + l + 1] * Bm[l * c + j] end
      C[i * c + j] = s
    end
  end
  return C
end
local function maxdiff(A, Bm)
  assert(#A == #Bm, "sizes differ")
  local d = 0
  for k = 1, #A do d = math.max(d, math.abs(A[k] - Bm[k])) end
  return d
end
local function W(net, name) return net.model:projection(name):weights() end

test("kernel dfc.pathway_product", function()
  local A = apical.array { { 1, 2, 3 }, { 4, 5, 6 } }
  local Bm = apical.array { { 1, -1 }, { 0.5, 2 }, { -2, 0 } }
  local out = apical.zeros { 2, 2 }
  dfc.pathway_product { a = A, b = Bm, out = out }
  assert(maxdiff(out, matmul(A, Bm)) == 0)
  dfc.pathway_product { a = A, b = Bm, out = out, accumulate = 1 }
  assert(maxdiff(out, matmul(apical.array { { 2, 4, 6 }, { 8, 10, 12 } }, Bm)) == 0)
  local At = apical.zeros { 3, 2 }
  dfc.pathway_product { a = A, out = At, trans_a = 1 }
  assert(maxdiff(At, apical.array { { 1, 4 }, { 2, 5 }, { 3, 6 } }) == 0)
  local o2 = apical.zeros { 2, 2 }
  dfc.pathway_product { a = At, b = Bm, out = o2, trans_a = 1 } -- (A^T)^T Bm
  assert(maxdiff(o2, matmul(A, Bm)) < 1e-15)
  fails(function() dfc.pathway_product { a = A, b = A, out = out } end, "b has shape [2, 3], op(a) is [2, 3]")
  fails(function() dfc.pathway_product { a = A, b = Bm, out = apical.zeros { 3, 2 } } end, "out has shape [3, 2], expected [2, 2]")
  fails(function() dfc.pathway_product { a = A, out = out, trans_a = 2 } end, "must be 0 or 1")
end)

local sizes = { 4, 5, 3, 2 }
local function make(pathway, opts, extra)
  local o = { sizes = sizes, batch = 3, k_p = 1, alpha = 0.1, seed = 5, feedback_pathway = pathway,
    pathway_opts = opts or {} }
  for k, v in pairs(extra or {}) do o[k] = v end
  return dfc.network(o)
end
local function proj_summary(net)
  local t = {}
  for _, p in ipairs(net.pathway.projections) do
    t[#t + 1] = string.format("%s:%s->%s:%dx%d", p.name, p.source, p.target, p.rows, p.cols)
  end
  return table.concat(t, " ")
end

test("construction and naming", function()
  local d = make("direct")
  assert(d.pathway.name == "direct" and #d.pathway.populations == 0)
  assert(proj_summary(d) == "Q1:ctl.u->h1.apical:5x2 Q2:ctl.u->h2.apical:3x2 Q3:ctl.u->h3.apical:2x2", proj_summary(d))
  assert(table.concat(d:update_order(), ",") == "ctl,h1,h2,h3")

  local l = make("layerwise")
  assert(table.concat(l.pathway.populations, ",") == "g2,g1")
  assert(proj_summary(l) == "F2:ctl.u->g2.soma:3x2 F1:g2->g1.soma:5x3 Q3:ctl.u->h3.apical:2x2 " ..
    "Q2:g2->h2.apical:3x3 Q1:g1->h1.apical:5x5", proj_summary(l))
  for i = 1, 3 do assert(l.Q[i] == l.model:projection("Q" .. i)) end
  assert(table.concat(l:update_order(true), ",") == "ctl,g2,g1,h3,h2,h1")
  local info = l.model:population_info("g1")
  assert(info.neuron == "rate" and info.params.tau == 0 and info.activation == "linear" and info.start == "settled")

  local ls = make("layerwise", { sizes = { 6, 4 }, activation = "tanh", tau = 0.05 })
  assert(proj_summary(ls) == "F2:ctl.u->g2.soma:4x2 F1:g2->g1.soma:6x4 Q3:ctl.u->h3.apical:2x2 " ..
    "Q2:g2->h2.apical:3x4 Q1:g1->h1.apical:5x6", proj_summary(ls))
  info = ls.model:population_info("g2")
  assert(info.activation == "tanh" and info.params.tau == 0.05)

  local ms = make("multilayer", { hidden = { 6, 4 } })
  assert(table.concat(ms.pathway.populations, ",") == "fb1,fb2")
  assert(proj_summary(ms) == "F1:ctl.u->fb1.soma:6x2 F2:fb1->fb2.soma:4x6 Q1:fb2->h1.apical:5x4 " ..
    "Q2:fb2->h2.apical:3x4 Q3:fb2->h3.apical:2x4", proj_summary(ms))
  local md = make("multilayer", {})
  assert(proj_summary(md) == "F1:ctl.u->fb1.soma:5x2 Q1:fb1->h1.apical:5x5 Q2:fb1->h2.apical:3x5 " ..
    "Q3:fb1->h3.apical:2x5", proj_summary(md))
  local mp = make("multilayer", { shared = false, activation = "tanh" })
  assert(table.concat(mp.pathway.populations, ",") == "fb1_1,fb2_1,fb3_1")
  assert(proj_summary(mp) == "F1_1:ctl.u->fb1_1.soma:5x2 Q1:fb1_1->h1.apical:5x5 F2_1:ctl.u->fb2_1.soma:3x2 " ..
    "Q2:fb2_1->h2.apical:3x3 F3_1:ctl.u->fb3_1.soma:2x2 Q3:fb3_1->h3.apical:2x2", proj_summary(mp))

  -- one layer: layerwise is direct feedback by another name
  local one = dfc.network { sizes = { 3, 2 }, batch = 1, feedback_pathway = "layerwise" }
  assert(#one.pathway.populations == 0 and proj_summary(one) == "Q1:ctl.u->h1.apical:2x2")

  -- direct feedback keeps its seeds: the same Q as before pathways existed, and the same Q_i for
  -- the pathways whose Q_i have the same shape
  assert(maxdiff(W(d, "Q3"), W(l, "Q3")) == 0)

  -- plastic feedback marks every pathway's Q1..QL as plastic (and nothing else)
  local pl = make("layerwise", {}, { plastic_feedback = true })
  for _, p in ipairs(pl.pathway.projections) do assert(p.plastic == (p.name:sub(1, 1) == "Q"), p.name) end
end)

test("every pathway compiles without algebraic loops and starts at the feedforward state", function()
  local X = apical.array { { 1, -0.5, 0.2, 0.3 }, { 0, 1, -1, 0.5 }, { 0.3, 0.3, 0.3, -2 } }
  for _, v in ipairs {
    { "direct" }, { "layerwise" }, { "layerwise", { activation = "tanh" } }, { "layerwise", { tau = 0.1 } },
    { "multilayer", { hidden = { 6, 4 }, activation = "tanh" } }, { "multilayer", { shared = false } },
    { "multilayer", { shared = false, tau = 0.05, activation = "relu" } },
  } do
    local net = make(v[1], v[2], { tau_A = 0 })
    local sim = net.model:compile()
    local rminus = apical.zeros { 3, 2 }
    dfc.forward { model = net.model, x = X, out = rminus }
    sim:set_input(net.x, X)
    sim:set_input(net.target, rminus)
    sim:reset()
    assert(maxdiff(sim:read(net.h[3].rate), rminus) < 1e-14)
    for i = 1, 3 do assert(sim:read(net.h[i].apical):max_abs() == 0) end
  end
end)

test("effective feedback of linear pathways = products of weight matrices", function()
  local l = make("layerwise", { sizes = { 6, 4 } })
  local F1, F2 = W(l, "F1"), W(l, "F2")
  local want = { matmul(W(l, "Q1"), matmul(F1, F2)), matmul(W(l, "Q2"), F2), W(l, "Q3") }
  local ms = make("multilayer", { hidden = { 6, 4 } })
  local H = matmul(W(ms, "F2"), W(ms, "F1"))
  local want_ms = { matmul(W(ms, "Q1"), H), matmul(W(ms, "Q2"), H), matmul(W(ms, "Q3"), H) }
  local mp = make("multilayer", { shared = false, hidden = { 4, 3 } })
  local want_mp = {}
  for i = 1, 3 do
    want_mp[i] = matmul(W(mp, "Q" .. i), matmul(W(mp, "F" .. i .. "_2"), W(mp, "F" .. i .. "_1")))
  end
  for _, case in ipairs { { l, want }, { ms, want_ms }, { mp, want_mp } } do
    for _, method in ipairs { "analytic", "numeric" } do
      local Qs, stacked = dfc.effective_feedback(case[1], { method = method })
      local row = 0
      for i = 1, 3 do
        assert(Qs[i].shape[1] == sizes[i + 1] and Qs[i].shape[2] == 2)
        local d = maxdiff(Qs[i], case[2][i])
        assert(d < 1e-8, string.format("%s %s Q%d: %.3g", case[1].pathway.name, method, i, d))
        for k = 1, #Qs[i] do assert(stacked[row + k] == Qs[i][k]) end
        row = row + #Qs[i]
      end
      assert(stacked.shape[1] == 10 and stacked.shape[2] == 2)
    end
  end
end)

test("direct feedback: the effective feedback is Q itself", function()
  local d = make("direct")
  local Qs = dfc.effective_feedback(d)
  local Qa = dfc.effective_feedback(d, { method = "analytic" })
  local Qn = dfc.effective_feedback(d, { method = "numeric" })
  for i = 1, 3 do
    assert(maxdiff(Qs[i], d.Q[i]:weights()) == 0)
    assert(maxdiff(Qa[i], d.Q[i]:weights()) == 0)
    assert(maxdiff(Qn[i], d.Q[i]:weights()) < 1e-9)
  end
  assert(d:ssa_feedback() == nil)
end)

-- A nonlinear pathway: u -> a (tanh, with a bias) -> b (logistic, one-to-one from a, dynamic),
-- b and a -> apical; h2 also directly from u. Biases make the operating point nonzero.
local function nonlinear(net)
  local P = dfc.pathways
  local u = net.ctl.u
  local a = P.population(net, { name = "a", size = 4, activation = "tanh" })
  local b = P.population(net, { name = "b", size = 4, activation = "logistic", tau = 0.3 })
  local c = P.population(net, { name = "c", size = 3, activation = "softplus" })
  P.connect(net, u, a.soma, { name = "A", bias = true })
  net.model:connect(a, b.soma, { name = "Bd", kind = "one_to_one" })
  P.connect(net, b, c.soma, { name = "C", bias = true, init = apical.init.normal { std = 0.8, seed = 9 } })
  P.connect(net, b, net.h[1].apical, { name = "Q1" })
  P.connect(net, u, net.h[2].apical, { name = "Q2" })
  P.connect(net, a, net.h[2].apical, { name = "Q2a" })
  P.connect(net, c, net.h[3].apical, { name = "Q3" })
end

test("nonlinear pathway: analytic Jacobian against central differences", function()
  local net = make(nonlinear)
  assert(net.pathway.name == "custom" and table.concat(net.pathway.populations, ",") == "a,b,c")
  net.model:projection("A"):set_bias { 0.5, -0.3, 1.0, 0.2 }
  net.model:projection("Bd"):set_weights { 1.5, -0.7, 0.4, 2.0 }
  net.model:projection("C"):set_bias { 0.1, -0.2, 0.4 }
  local Qa = dfc.effective_feedback(net, { method = "analytic" })
  local Qn = dfc.effective_feedback(net, { method = "numeric" })
  local Qn2 = dfc.effective_feedback(net, { method = "numeric", eps = 1e-4 })
  local d, d2 = 0, 0
  for i = 1, 3 do
    d = math.max(d, maxdiff(Qa[i], Qn[i]))
    d2 = math.max(d2, maxdiff(Qa[i], Qn2[i]))
  end
  assert(d < 1e-8, "analytic vs central differences: " .. d)
  assert(d2 < 1e-6 and d2 > d, string.format("eps 1e-4: %.3g (eps 1e-5: %.3g)", d2, d))
  -- by hand for h1: Q1 diag(s'(w .* tanh(A u + a0))) diag(w) diag(tanh'(a0)) A
  local a0, w = { 0.5, -0.3, 1.0, 0.2 }, { 1.5, -0.7, 0.4, 2.0 }
  local A, Q1 = W(net, "A"), W(net, "Q1")
  local M = apical.zeros { 4, 2 }
  for r = 0, 3 do
    local t = math.tanh(a0[r + 1])
    local s = 1 / (1 + math.exp(-w[r + 1] * t))
    for k = 1, 2 do M[r * 2 + k] = s * (1 - s) * w[r + 1] * (1 - t * t) * A[r * 2 + k] end
  end
  assert(maxdiff(Qa[1], matmul(Q1, M)) < 1e-14)
  -- h2: Q2 + Q2a diag(tanh'(a0)) A: two projections end on h2.apical
  local T = apical.zeros { 4, 2 }
  for r = 0, 3 do
    local t = math.tanh(a0[r + 1])
    for k = 1, 2 do T[r * 2 + k] = (1 - t * t) * A[r * 2 + k] end
  end
  local want2 = matmul(W(net, "Q2a"), T)
  local Q2 = W(net, "Q2")
  for k = 1, #want2 do want2[k] = want2[k] + Q2[k] end
  assert(maxdiff(Qa[2], want2) < 1e-14)
  -- not the linear product of the weights
  assert(maxdiff(Qa[1], matmul(Q1, matmul(apical.array { { 1.5, 0, 0, 0 }, { 0, -0.7, 0, 0 }, { 0, 0, 0.4, 0 }, { 0, 0, 0, 2 } }, A))) > 1e-2)
  -- auto is analytic here, and the network simulates
  assert(maxdiff(dfc.effective_feedback(net)[3], Qa[3]) == 0)
  net.model:compile()
end)

test("nonlinear pathway: DFC-SSA with the effective feedback matches the simulated steady state", function()
  -- u -> s = tanh(F u + b) -> Q_i s + c_i with c_i = -Q_i tanh(b), so that vA = 0 at u = 0
  local function build(net)
    local P = dfc.pathways
    local s = P.population(net, { name = "s", size = 4, activation = "tanh" })
    P.connect(net, net.ctl.u, s.soma, { name = "F", bias = true })
    for i = 1, net.L do P.connect(net, s, net.h[i].apical, { name = "Q" .. i, bias = true }) end
  end
  local net = make(build, nil, { tau_v = 0.2 })
  local b0 = { 0.6, -0.4, 0.9, 0.3 }
  net.model:projection("F"):set_bias(b0)
  -- a well-conditioned JQ: F = [I; random], Q_i = [W_{i+1}^T..W_L^T, random]
  local P = dfc.pathways.weight_products(net)
  local F = W(net, "F")
  F[1], F[2], F[3], F[4] = 1, 0, 0, 1
  net.model:projection("F"):set_weights(F)
  for i = 1, 3 do
    local Q = net.Q[i]:weights()
    for r = 0, Q.shape[1] - 1 do
      Q[r * 4 + 1], Q[r * 4 + 2] = P[i][r * 2 + 1], P[i][r * 2 + 2]
      Q[r * 4 + 3], Q[r * 4 + 4] = 0.2 * Q[r * 4 + 3], 0.2 * Q[r * 4 + 4]
    end
    net.Q[i]:set_weights(Q)
  end
  for i = 1, 3 do
    local Q = net.Q[i]:weights()
    local c = {}
    for r = 0, Q.shape[1] - 1 do
      local s = 0
      for k = 0, 3 do s = s + Q[r * 4 + k + 1] * math.tanh(b0[k + 1]) end
      c[r + 1] = -s
    end
    net.Q[i]:set_bias(c)
  end
  local Qeff = net:ssa_feedback()
  -- the plain product Q_i F, which ignores tanh' at the operating point
  local wrong = apical.zeros { 10, 2 }
  do
    local row = 0
    local F = W(net, "F")
    for i = 1, 3 do
      local P = matmul(net.Q[i]:weights(), F)
      for k = 1, #P do wrong[row + k] = P[k] end
      row = row + #P
    end
  end
  local sim = net.model:compile()
  local X = apical.array { { 1, -0.5, 0.2, 0.3 }, { 0, 1, -1, 0.5 }, { 0.3, 0.3, 0.3, -2 } }
  local Y = apical.array { { 0.5, -1 }, { 1, 0.2 }, { -0.3, 0.4 } }
  local rminus, rstar = apical.zeros { 3, 2 }, apical.zeros { 3, 2 }
  dfc.forward { model = net.model, x = X, out = rminus }
  sim:set_input(net.x, X)
  sim:set_input(net.target, rminus)
  sim:reset()
  for i = 1, 3 do assert(sim:read(net.h[i].apical):max_abs() < 1e-15) end
  -- u depends on the feedback to first order (r_L only through alpha u), so compare u
  local lambdas, err, err_wrong, err_r = { 0.1, 0.05, 0.025 }, {}, {}, {}
  for k, lambda in ipairs(lambdas) do
    dfc.targets { rL = rminus, y = Y, loss = "mse", lambda = lambda, mode = "sample", out = rstar }
    local r_ssa, u_ssa, u_wrong = apical.zeros { 3, 2 }, apical.zeros { 3, 2 }, apical.zeros { 3, 2 }
    dfc.ssa { model = net.model, x = X, target = rstar, alpha = 0.1, rL_out = r_ssa, u_out = u_ssa, Qeff = Qeff }
    dfc.ssa { model = net.model, x = X, target = rstar, alpha = 0.1, u_out = u_wrong, Qeff = wrong }
    sim:set_input(net.target, rstar)
    sim:run { solver = "cvode-bdf", t_end = 200, rtol = 1e-11, atol = 1e-13, accumulate = false }
    local r1 = sim:read(net.h[3].rate)
    sim:run { solver = "cvode-bdf", t_end = 220, rtol = 1e-11, atol = 1e-13, accumulate = false }
    local r2, u = sim:read(net.h[3].rate), sim:read(net.ctl.u)
    assert(maxdiff(r1, r2) < 1e-10, "not settled: " .. maxdiff(r1, r2))
    err[k], err_wrong[k], err_r[k] = maxdiff(u_ssa, u), maxdiff(u_wrong, u), maxdiff(r_ssa, r2)
    assert(err[k] < 0.25 * u:max_abs(), string.format("lambda %g: u error %.3g, |u| %.3g", lambda, err[k], u:max_abs()))
  end
  local function slope(e) return math.log(e[1] / e[3]) / math.log(4) end
  print(string.format("nonlinear pathway, DFC-SSA vs simulation over lambda = 0.1, 0.05, 0.025: u error %.2e -> %.2e " ..
    "(slope %.2f), r_L error slope %.2f; with the plain weight product instead of Q_eff: u error %.2e -> %.2e (slope %.2f)",
    err[1], err[3], slope(err), slope(err_r), err_wrong[1], err_wrong[3], slope(err_wrong)))
  assert(math.abs(slope(err) - 2) < 0.3 and math.abs(slope(err_r) - 2) < 0.3,
    string.format("slopes with Q_eff: u %.3f, r_L %.3f (u errors %.3g %.3g %.3g)", slope(err), slope(err_r), err[1], err[2], err[3]))
  assert(slope(err_wrong) < 1.3 and err_wrong[3] > 10 * err[3],
    string.format("without tanh': slope %.3f, u error %.3g vs %.3g", slope(err_wrong), err_wrong[3], err[3]))
end)

test("dynamic pathway populations: the probe starts them settled", function()
  local a = make("multilayer", { hidden = { 6, 4 }, activation = "tanh" })
  local b = make("multilayer", { hidden = { 6, 4 }, activation = "tanh", tau = 0.5 })
  local Qa = dfc.effective_feedback(a, { method = "numeric" })
  local Qb = dfc.effective_feedback(b, { method = "numeric" })
  for i = 1, 3 do assert(maxdiff(Qa[i], Qb[i]) < 1e-12) end
  -- weights changed after the first call reach the probe
  b:set_weight_product()
  local Qw = dfc.effective_feedback(b, { method = "numeric" })
  local P = dfc.pathways.weight_products(b)
  for i = 1, 3 do assert(maxdiff(Qw[i], P[i]) < 1e-9) end
end)

test("weight-product pathways reproduce direct feedback in the published Euler scheme", function()
  local X = apical.array { { 1, -0.5, 0.2, 0.3 }, { 0, 1, -1, 0.5 }, { 0.3, 0.3, 0.3, -2 } }
  local Y = apical.array { { 0.5, -1 }, { 1, 0.2 }, { -0.3, 0.4 } }
  local ref
  for _, v in ipairs { { "direct" }, { "layerwise" }, { "multilayer", { hidden = { 6, 4 } } },
      { "multilayer", { shared = false } } } do
    for _, proactive in ipairs { true, false } do
      local net = make(v[1], v[2])
      net:set_weight_product()
      local Qs = dfc.effective_feedback(net)
      local P = dfc.pathways.weight_products(net)
      for i = 1, 3 do assert(maxdiff(Qs[i], P[i]) < 1e-14) end
      local sim = net.model:compile()
      local rminus, rstar = apical.zeros { 3, 2 }, apical.zeros { 3, 2 }
      dfc.forward { model = net.model, x = X, out = rminus }
      dfc.targets { rL = rminus, y = Y, loss = "mse", lambda = 0.3, mode = "sample", out = rstar }
      sim:set_input(net.x, X)
      sim:set_input(net.target, rstar)
      sim:run { solver = "euler", dt = 0.05, steps = 60, ordered = true, order = net:update_order(),
        previous = not proactive and { "ctl.u" } or nil, accumulate = false }
      local r = { sim:read(net.h[1].rate), sim:read(net.h[3].rate), sim:read(net.ctl.u) }
      local key = tostring(proactive)
      if v[1] == "direct" then
        ref = ref or {}
        ref[key] = r
      else
        for k = 1, 3 do
          local d = maxdiff(r[k], ref[key][k])
          assert(d < 1e-12, string.format("%s proactive=%s: %.3g", v[1], key, d))
        end
      end
    end
  end
end)

local tmp = fx.tmpdir()

test("trainers with pathways", function()
  local function cfg(extra)
    local c = { task = "student_teacher", optimizer = "adam", lr = 0.01, epochs = 2,
      defaults = { tmax = 40, dt = 0.05 }, out_dir = tmp, progress = false, seed = 3, checkpoint = false,
      task_opts = { variant = "small", n_train = 512, n_valid = 128, n_test = 128 } }
    for k, v in pairs(extra) do c[k] = v end
    return c
  end
  local function quiet(c)
    local p = print
    print = function() end
    local ok, r = pcall(dfc.train, c)
    print = p
    if not ok then error(r, 0) end
    return r
  end
  -- weight-product feedback: every pathway trains like direct feedback (DFC-SSA through Qeff,
  -- DFC through the simulation with the pathway in the update order)
  for _, method in ipairs { "dfc-ssa", "dfc" } do
    local ref = quiet(cfg { method = method })
    for _, pw in ipairs { "layerwise", "multilayer" } do
      local r = quiet(cfg { method = method, feedback_pathway = pw })
      for e = 1, #ref.log do
        local a, b = ref.log[e].train_loss, r.log[e].train_loss
        assert(math.abs(a - b) < 1e-9 * a, string.format("%s %s epoch %d: %.17g vs %.17g", method, pw, e - 1, a, b))
      end
    end
  end
  -- fixed random feedback through a pathway: DFC-SSA runs on the effective feedback
  local r = quiet(cfg { method = "dfc-ssa", feedback = "given", feedback_pathway = "multilayer",
    pathway_opts = { activation = "tanh" } })
  assert(r.log[#r.log].train_loss == r.log[#r.log].train_loss)
  -- a registered pathway without a weight_product hook, with given feedback
  dfc.pathways.register("test_plain", function(net)
    for i = 1, net.L do dfc.pathways.connect(net, net.ctl.u, net.h[i].apical, { name = "Q" .. i }) end
  end)
  r = quiet(cfg { method = "dfc-ssa", feedback = "given", feedback_pathway = "test_plain" })
  local d = quiet(cfg { method = "dfc-ssa", feedback = "given" })
  -- the same Q seeds as direct feedback: the same run
  for e = 1, #d.log do assert(math.abs(d.log[e].train_loss - r.log[e].train_loss) < 1e-12) end
  fails(function() dfc.train(cfg { method = "dfc", feedback_pathway = "test_plain" }) end,
    "needs a pathway with a weight_product hook; test_plain has none")
  fails(function() dfc.train(cfg { method = "dfa", feedback_pathway = "layerwise" }) end,
    "method dfa uses Q1..QL as direct feedback")
end)

test("bad pathways are refused", function()
  fails(function() make("sideways") end, 'unknown feedback_pathway "sideways" (direct, layerwise, multilayer')
  fails(function() make(42) end, "feedback_pathway must be a name")
  fails(function() make("layerwise", { size = 3 }) end, 'feedback_pathway layerwise: unknown option "size"')
  fails(function() make("multilayer", { hiden = 3 }) end, 'unknown option "hiden"')
  fails(function() make("multilayer", { hidden = "x" }) end, "option hidden = x must be a positive integer or a list of them")
  fails(function() make("multilayer", { hidden = { 3, 0 } }) end, "option hidden")
  fails(function() make("multilayer", { shared = 1 }) end, "option shared = 1 must be true or false")
  fails(function() make("layerwise", { sizes = { 3 } }) end, "sizes lists 1 entries for the 2 feedback populations g1..g2")
  fails(function() make("layerwise", { tau = -1 }) end, "option tau = -1 must be a number >= 0")
  fails(function() make("layerwise", { activation = "tahn" }) end, 'unknown activation "tahn"')
  fails(function()
    make(function(net)
      dfc.pathways.connect(net, net.ctl.u, net.h[1].apical, { name = "Q1" })
      dfc.pathways.connect(net, net.ctl.u, net.h[3].apical, { name = "Q3" })
    end)
  end, "feedback_pathway custom built no projection Q2", false) -- raised at a line of the builder
  fails(function()
    make(function(net)
      for i = 1, net.L do dfc.pathways.connect(net, net.ctl.u, net.h[i].apical, { name = "Q" .. (4 - i) }) end
    end)
  end, "Q1 ends on h3.apical, not on h1.apical", false) -- raised at a line of the builder
  -- the position is the user's line
  local ok, err = pcall(function() dfc.network { sizes = sizes, feedback_pathway = "nope" } end)
  assert(not ok and err:find("test_pathways.lua:%d+: dfc.network: unknown feedback_pathway"), err)
  fails(function() dfc.pathways.register("direct", function() end) end, "is a built-in pathway")
  fails(function() dfc.pathways.register("x y", function() end) end, "must be an identifier")
  -- pathways that read the network itself have no effective feedback of u alone
  local net = make(function(nt)
    local g = dfc.pathways.population(nt, { name = "g", size = 2 })
    dfc.pathways.connect(nt, nt.h[3], g.soma, { name = "G" })
    for i = 1, nt.L do dfc.pathways.connect(nt, g, nt.h[i].apical, { name = "Q" .. i }) end
  end)
  fails(function() dfc.effective_feedback(net) end, "projection G reads h3: effective_feedback needs a pathway driven by ctl.u alone")
  fails(function() dfc.effective_feedback(make("layerwise"), { method = "exact" }) end, 'unknown method "exact"')
  fails(function() dfc.effective_feedback(make("layerwise"), { eps = 0 }) end, "eps must be > 0")
  fails(function() dfc.effective_feedback({}) end, "expected a network built by dfc.network")
  -- a pathway the analytic method cannot follow (a plugin neuron type) falls back to the probe
  local pyr = make(function(nt)
    local g = nt.model:population { name = "g", size = 2, neuron = dfc.pyramidal { tau_v = 0.1 }, start = "settled" }
    dfc.pathways.connect(nt, nt.ctl.u, g.basal, { name = "G" })
    for i = 1, nt.L do dfc.pathways.connect(nt, g, nt.h[i].apical, { name = "Q" .. i }) end
  end)
  fails(function() dfc.effective_feedback(pyr, { method = "analytic" }) end, "population g is dfc.pyramidal, not rate")
  local Qp = dfc.effective_feedback(pyr)
  for i = 1, 3 do
    assert(maxdiff(Qp[i], matmul(W(pyr, "Q" .. i), W(pyr, "G"))) < 1e-9)
  end
end)

check.done("test_pathways")
