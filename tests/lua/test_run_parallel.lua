-- test_run_parallel.lua — apical.run_parallel: distinct simulations run at once give exactly
-- what the same runs give one after the other (CVODE, Euler, Euler-Maruyama with its noise,
-- recordings and accumulated plasticity), and errors name the run that failed.
local apical = require "apical"
package.path = (arg[0]:match("^(.*)/") or ".") .. "/?.lua;" .. package.path
local check = require "check"

-- a small dense network with a Hebbian rule, big enough that its products go to BLAS
local function build(B, seed)
  local m = apical.model { batch = B }
  local x = m:input { name = "x", size = 40 }
  local h = m:population { name = "h", size = 30, neuron = apical.rate { tau = 0.5 }, activation = "tanh" }
  local o = m:population { name = "o", size = 5, neuron = apical.rate { tau = 0.3 } }
  m:connect(x, h.soma, { name = "W1", init = apical.init.normal { std = 0.3, seed = seed } })
  m:connect(h, o.soma, { name = "W2", init = apical.init.normal { std = 0.3, seed = seed + 1 },
    plastic = apical.hebb { eta = 1 } })
  return m
end
local B = 16
local X = apical.zeros { B, 40 }
for i = 1, #X do X[i] = math.sin(0.37 * i) end

local function sims()
  local a, b = build(B, 1):compile(), build(B, 5):compile()
  a:set_input("x", X)
  b:set_input("x", X)
  return a, b
end

local cases = {
  { solver = "cvode-bdf", t_end = 2, rtol = 1e-8, atol = 1e-10, record = { "h", "o" }, times = { 0.5, 1, 2 } },
  { solver = "euler", dt = 0.01, steps = 200, record = { "o" }, every = 10 },
  { solver = "euler-maruyama", dt = 0.01, steps = 100, noise = { { "h.soma", 0.2 } }, seed = 9,
    record = { "h" }, every = 1 },
}
for _, o in ipairs(cases) do
  local a1, b1 = sims()
  local ra, rb = a1:run(o), b1:run(o)
  local a2, b2 = sims()
  local res = apical.run_parallel { { a2, o }, { b2, o } }
  check.eq(#res, 2, "two results")
  for k, pair in ipairs { { ra, res[1] }, { rb, res[2] } } do
    local seq, par = pair[1], pair[2]
    check.eq(par.stats.steps, seq.stats.steps, o.solver .. " steps")
    check.eq(par.stats.rhs_evals, seq.stats.rhs_evals, o.solver .. " rhs evals")
    for _, name in ipairs(o.record) do
      local u, v = seq:get(name), par:get(name)
      check.eq(#v, #u, "size")
      for i = 1, #u do
        if u[i] ~= v[i] then error(string.format("%s run %d %s[%d]: %.17g in parallel, %.17g alone", o.solver, k, name, i, v[i], u[i])) end
      end
    end
    local du, dv = seq:update("W2"), par:update("W2") -- dW arrays
    for i = 1, #du do
      if du[i] ~= dv[i] then error(o.solver .. ": accumulated update differs") end
    end
  end
  -- the two simulations are different networks: their outputs differ
  local g1, g2 = res[1]:get(o.record[#o.record]), res[2]:get(o.record[#o.record])
  check.truthy(g1[#g1] ~= g2[#g2], "different networks")
end

-- errors: the same simulation twice, not a simulation, a failing run named by its number
local a, b = sims()
check.fails(function() apical.run_parallel { { a, cases[2] }, { a, cases[2] } } end, "entries 1 and 2 are the same simulation")
check.fails(function() apical.run_parallel { { a, cases[2] }, { 42, cases[2] } } end, "entry 2: 42 is not a simulation")
check.fails(function() apical.run_parallel {} end, "expected a list of { sim, options } pairs")
local big = apical.zeros { B, 40 }
for i = 1, #big do big[i] = 1e308 end
b:set_input("x", big)
check.fails(function() apical.run_parallel { { a, cases[2] }, { b, cases[2] } } end, "run 2:")
-- a still ran (its result is intact): a single run afterwards works
check.truthy(a:run(cases[2]).stats.steps == 200, "runs after a failed parallel run")

-- after = { kernel, args }: called in each run's thread once the run succeeded; a failed run
-- does not call its kernel, a failing kernel fails its run with the kernel's message
local function vec(n, f) local v = apical.zeros { n } for i = 1, n do v[i] = f(i) end return v end
local xa, xb = vec(7, function(i) return i end), vec(7, function(i) return -0.5 * i end)
local ya, yb = vec(7, function() return 1 end), vec(7, function() return 1 end)
b:set_input("x", X)
local res = apical.run_parallel { { a, cases[2], after = { "axpy", { x = xa, y = ya, a = 2 } } },
  { b, cases[2], after = { "axpy", { x = xb, y = yb } } } }
check.eq(res[2].stats.steps, 200, "runs with after")
for i = 1, 7 do
  check.eq(ya[i], 1 + 2 * i, "after kernel of run 1")
  check.eq(yb[i], 1 - 0.5 * i, "after kernel of run 2")
end
b:set_input("x", big)
local ka, kb = { "axpy", { x = xa, y = ya } }, { "axpy", { x = xb, y = yb } }
check.fails(function() apical.run_parallel { { a, cases[2], after = ka }, { b, cases[2], after = kb } } end, "run 2:")
check.eq(ya[1], 4, "run 1's kernel ran")
check.eq(yb[1], 0.5, "the failed run 2 did not call its kernel")
b:set_input("x", X)
local short = { "axpy", { x = xb, y = vec(3, function() return 0 end) } }
check.fails(function() apical.run_parallel { { a, cases[2] }, { b, cases[2], after = short } } end, "run 2: kernel axpy")
local none = { "no.such_kernel", {} }
check.fails(function() apical.run_parallel { { a, cases[2], after = none } } end, "no.such_kernel")
check.fails(function() apical.run_parallel { { a, cases[2], after = "axpy" } } end, "entry 1: after = ")
-- the BLAS kernel family: what OPENBLAS_CORETYPE names when it is set
local core = apical.blas_core()
check.truthy(type(core) == "string" and #core > 0, "blas_core names the kernels")
local forced = os.getenv("OPENBLAS_CORETYPE")
if forced and forced ~= "" then check.eq(core:lower(), forced:lower(), "OPENBLAS_CORETYPE respected") end
check.done("test_run_parallel")
