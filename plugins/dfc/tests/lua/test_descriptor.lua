-- test_descriptor.lua — the network descriptor in the Lua half (docs/dfc.md, "The network
-- descriptor"): dfc.network builds net.descriptor once ({ L, ids of W_1..W_L, ids of Q_1..Q_L },
-- the projection ids of m:projections()), and the kernels called with a network's model get it
-- without the caller's help: a population added afterwards under the next convention name
-- (h<L+1>, no projections), which a look-up by name would take for an unconnected layer, changes
-- nothing; a descriptor the caller gives wins; and a hand-built network with names of its own,
-- given its descriptor, computes what the dfc.network one computes, bit for bit.
local apical = require "apical"
local dfc = apical.plugin "dfc"

local n_ok = 0
local function check(cond, msg)
  if not cond then error(msg, 2) end
  n_ok = n_ok + 1
end

local B = 4
local net = dfc.network { sizes = { 5, 6, 4, 3 }, batch = B, seed = 7 }
local m = net.model

-- (a) the descriptor: L, then the ids of W1..WL and Q1..QL in m:projections()
local ids = {}
for k, p in ipairs(m:projections()) do ids[p.name] = k - 1 end
local d = net.descriptor
check(#d == 2 * net.L + 1 and d[1] == net.L, "descriptor length / L")
for i = 1, net.L do
  check(d[1 + i] == ids["W" .. i], "descriptor: W" .. i)
  check(d[1 + net.L + i] == ids["Q" .. i], "descriptor: Q" .. i)
end

local X = apical.zeros { B, 5 }
for i = 1, #X do X[i] = math.sin(3 * i) end
local Y = apical.zeros { B, 3 }
for i = 1, #Y do Y[i] = 0.5 * math.cos(i) end
local r0 = apical.zeros { B, 3 }
dfc.forward { model = m, x = X, out = r0 }

-- (b) a population h4 added to the model: by name the network would have 4 layers (and no W4)
m:population { name = "h4", size = 2, neuron = dfc.pyramidal {}, activation = "tanh" }
local r1 = apical.zeros { B, 3 }
dfc.forward { model = m, x = X, out = r1 }
for i = 1, #r0 do check(r0[i] == r1[i], "dfc.forward with h4 present, entry " .. i) end
local ok, err = pcall(apical.call, "dfc.forward", { model = m, x = X, out = r1 })
check(not ok and tostring(err):find("no projection \"W4\"", 1, true),
  "the kernel itself, without the descriptor, finds 4 layers by name: " .. tostring(err))
local u = apical.zeros { B, 3 }
dfc.ssa { model = m, x = X, target = Y, alpha = 0.1, u_out = u }
check(u[1] ~= 0, "dfc.ssa with h4 present")

-- (c) the caller's descriptor wins: a wrong one is refused
ok, err = pcall(dfc.forward, { model = m, x = X, out = r1, net = apical.array({ 1, 0 }, { 2 }) })
check(not ok and tostring(err):find("net has 2 entries", 1, true), "caller's descriptor: " .. tostring(err))

-- (d) the same network under names of the user's choosing
local mu = apical.model { batch = B }
local inp = mu:input { name = "pixels", size = 5 }
mu:input { name = "target", size = 3 }
local h, W = {}, {}
for i, n in ipairs { 6, 4, 3 } do
  h[i] = mu:population { name = "stage_" .. i, size = n, neuron = dfc.pyramidal {},
    activation = i < 3 and "tanh" or "linear", start = "settled" }
  W[i] = mu:connect(i == 1 and inp or h[i - 1], h[i].basal, { name = "ff_" .. i, bias = true })
  W[i]:set_weights(net.W[i]:weights())
  W[i]:set_bias(net.W[i]:bias())
end
local ctl = mu:block { name = "ctl", type = dfc.pi {}, inputs = { rate = h[3], target = "target" } }
local desc = { 3 }
for i = 1, 3 do desc[1 + i] = i - 1 end
for i = 1, 3 do
  local q = mu:connect(ctl.u, h[i].apical, { name = "fb_" .. i })
  q:set_weights(net.Q[i]:weights())
  desc[4 + i] = 2 + i
end
desc = apical.array(desc, { 7 })
local ru, uu = apical.zeros { B, 3 }, apical.zeros { B, 3 }
dfc.forward { model = mu, x = X, out = ru, net = desc }
dfc.ssa { model = mu, x = X, target = Y, alpha = 0.1, u_out = uu, net = desc }
for i = 1, #r0 do check(r0[i] == ru[i], "user names: dfc.forward, entry " .. i) end
for i = 1, #u do check(u[i] == uu[i], "user names: dfc.ssa, entry " .. i) end

print(string.format("%d passed, 0 failed", n_ok))
