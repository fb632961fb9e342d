-- test_optim.lua — apical.optim.sgd and apical.optim.adam: steps against hand computations,
-- gradients in and out, clipping and norms, gradients from a simulation, checkpoints that
-- resume exactly, the optimiser's lifetime, and errors at the caller's line.
local apical = require "apical"
package.path = (arg[0]:match("^(.*)/") or ".") .. "/?.lua;" .. package.path
local check = require "check"

-- x (3) -> h.soma through p1 (2 x 3, bias) and W2 (2 x 3); "frozen" is not plastic
local function make_model()
    local m = apical.model { batch = 1 }
    local x = m:input { name = "x", size = 3 }
    local h = m:population { name = "h", size = 2 }
    local p1 = m:connect(x, h.soma, { bias = true, plastic = true })
    local p2 = m:connect(x, h.soma, { name = "W2", plastic = true })
    m:connect(x, h.soma, { name = "frozen" })
    p1:set_weights { { 0.1, -0.2, 0.3 }, { 0.4, 0.5, -0.6 } }
    p1:set_bias { 0.05, -0.05 }
    p2:set_weights { { 1, 0, -1 }, { 0.5, 0.25, 0 } }
    return m, p1, p2
end

-- the gradient of step k (1-based), entry i of a flat list: W1 (6), b1 (2), W2 (6)
local function g(k, i)
    return (0.1 * i - 0.7) * (k % 2 == 0 and -1.5 or 1) + 0.03 * k
end
local function set_grads(opt, p1, p2, k)
    local w1, b1, w2 = {}, {}, {}
    for i = 1, 6 do w1[i] = g(k, i) end
    for i = 1, 2 do b1[i] = g(k, 6 + i) end
    for i = 1, 6 do w2[i] = g(k, 8 + i) end
    opt:set_grad(p1, apical.array(w1, { 2, 3 }), b1)
    opt:set_grad(p2, apical.array(w2, { 2, 3 }))
end
local function params(p1, p2)
    local out = {}
    for _, a in ipairs { p1:weights(), p1:bias(), p2:weights() } do
        for i = 1, #a do out[#out + 1] = a[i] end
    end
    return out
end

-- ---- SGD with momentum and weight decay, three steps, against the equations ---------------
do
    local m, p1, p2 = make_model()
    local lr, mu, wd = 0.1, 0.9, 0.01
    local opt = apical.optim.sgd { model = m, lr = lr, momentum = mu, weight_decay = wd }
    check.eq(opt.kind, "sgd")
    check.eq(opt.lr, lr)
    check.eq(opt.steps, 0)
    local p, buf = params(p1, p2), {}
    for k = 1, 3 do
        set_grads(opt, p1, p2, k)
        opt:step()
        for i = 1, #p do
            local d = g(k, i) + wd * p[i]
            buf[i] = k == 1 and d or mu * buf[i] + d
            p[i] = p[i] - lr * buf[i]
        end
        check.array_near(params(p1, p2), p, 1e-15, "sgd step " .. k)
    end
    check.eq(opt.steps, 3)
    check.eq(m:projection("frozen"):weights():max_abs(), 0.0, "the frozen projection")
end

-- ---- Adam, three steps ---------------------------------------------------------------------
do
    local m, p1, p2 = make_model()
    local lr, b1, b2, eps, wd = 0.05, 0.8, 0.95, 1e-6, 0.02
    local opt = apical.optim.adam { model = m, projections = { p1, "W2" }, lr = lr, beta1 = b1,
        beta2 = b2, eps = eps, weight_decay = wd }
    check.eq(tostring(opt):match("^apical.Optim %(adam"), "apical.Optim (adam")
    local p, mm, vv = params(p1, p2), {}, {}
    for k = 1, 3 do
        set_grads(opt, p1, p2, k)
        opt:step()
        for i = 1, #p do
            local d = g(k, i) + wd * p[i]
            mm[i] = b1 * (mm[i] or 0) + (1 - b1) * d
            vv[i] = b2 * (vv[i] or 0) + (1 - b2) * d * d
            p[i] = p[i] - lr * (mm[i] / (1 - b1 ^ k)) / (math.sqrt(vv[i] / (1 - b2 ^ k)) + eps)
        end
        check.array_near(params(p1, p2), p, 1e-15, "adam step " .. k)
    end
    opt:set_lr(0.5)
    check.eq(opt.lr, 0.5)
end

-- ---- gradients in and out, zero, add_grad --------------------------------------------------
do
    local m, p1, p2 = make_model()
    local opt = apical.optim.sgd { model = m, lr = 1 }
    local dW, db = opt:grad(p1)
    check.shape(dW, { 2, 3 })
    check.shape(db, { 2 })
    check.eq(dW:max_abs() + db:max_abs(), 0.0, "new buffers are zero")
    check.eq(select(2, opt:grad("W2")), nil, "no bias, no db")
    opt:set_grad(p1, { { 1, 2, 3 }, { 4, 5, 6 } }, { 7, 8 })
    opt:add_grad(p1, { { 1, 1, 1 }, { 1, 1, 1 } }, nil, -2)      -- db untouched
    opt:add_grad("W2", apical.array { { 1, 0, 0 }, { 0, 0, 1 } }) -- scale 1
    dW, db = opt:grad(p1)
    check.array_near(dW, { -1, 0, 1, 2, 3, 4 }, 0, "add_grad")
    check.array_near(db, { 7, 8 }, 0, "db kept")
    dW[1] = 100 -- a copy: the buffer does not change
    check.eq(opt:grad(p1)[1], -1.0)
    opt:set_grad(p1, { { 0, 0, 0 }, { 0, 0, 0 } })             -- set without db: db = 0
    check.eq(select(2, opt:grad(p1)):max_abs(), 0.0, "set_grad without db zeroes it")
    opt:zero()
    check.eq(opt:grad("W2"):max_abs(), 0.0, "zero")
    check.eq(opt:zero(), opt, "methods return the optimiser")
    -- has: the projections an optimiser trains
    local only = apical.optim.sgd { model = m, projections = { p2 }, lr = 1 }
    check.eq(only:has("W2"), true, "has W2")
    check.eq(only:has(p1), false, "does not have W1")
    check.eq(opt:has(p1), true, "the whole model's optimiser has W1")
end

-- ---- clipping and norms --------------------------------------------------------------------
do
    local m, p1, p2 = make_model()
    local opt = apical.optim.sgd { model = m, lr = 1, clip = 1, clip_mode = "per_tensor" }
    local w0 = p1:weights()
    opt:set_grad(p1, { { 3, 4, 0 }, { 0, 0, 0 } }, { 0.3, 0.4 })
    opt:step()
    local nw, nb = opt:norms(p1)
    check.near(nw, 5, 1e-15, "norm of dW")
    check.near(nb, 0.5, 1e-15, "norm of db")
    check.eq(select(2, opt:norms(p2)), nil, "no bias, no norm")
    check.near(p1:weights():at(1, 2), w0:at(1, 2) - 4 / (5 + 1e-6), 1e-15, "clipped")
    check.near(opt:grad(p1):at(1, 2), 4 / (5 + 1e-6), 1e-15, "buffers hold the clipped gradient")

    m, p1, p2 = make_model()
    opt = apical.optim.sgd { model = m, lr = 1, clip = 2 } -- clip alone: global
    w0 = p1:weights()
    local w2 = p2:weights()
    opt:set_grad(p1, { { 3, 4, 0 }, { 0, 0, 0 } }, { 0.3, 0.4 })
    opt:set_grad(p2, { { 0, 0, 1.2 }, { 0, 0, 0 } })
    opt:step()
    local s = 2 / (math.sqrt(25 + 0.25 + 1.44) + 1e-6)
    check.near(p1:weights():at(1, 1), w0:at(1, 1) - 3 * s, 1e-15, "global clip W1")
    check.near(p2:weights():at(1, 3), w2:at(1, 3) - 1.2 * s, 1e-15, "global clip W2")
end

-- ---- gradients from a simulation (the hebb rule) ----------------------------------------------
do
    local m = apical.model { batch = 2 }
    local x = m:input { name = "x", size = 2 }
    local h = m:population { name = "h", size = 2, neuron = apical.rate { tau = 0.5 } }
    local p = m:connect(x, h.soma, { init = "identity", bias = true,
        plastic = apical.hebb { eta = 1 } })
    local q = m:connect(h, h.soma, { name = "rec", plastic = true })
    local opt = apical.optim.sgd { model = m, lr = 0.1 }
    local sim = m:compile()
    sim:set_input(x, { { 1, -1 }, { 0.5, 2 } })
    local out = sim:run { solver = "euler", dt = 0.1, steps = 10 }
    local dW, db = out:update(p)
    opt:set_grad(q, { { 1, 2 }, { 3, 4 } })
    opt:add_from_sim(sim, -1) -- ascend the Hebbian update
    local gW, gb = opt:grad(p)
    for i = 1, 4 do check.near(gW[i], -dW[i], 1e-15, "gW") end
    for i = 1, 2 do check.near(gb[i], -db[i], 1e-15, "gb") end
    check.array_near(opt:grad(q), { 1, 2, 3, 4 }, 0, "no rule: left alone")
    local w0 = p:weights()
    opt:add_from_sim(sim):step() -- scale 1 again: the total gradient is 0 for p
    check.array_near(p:weights(), w0, 1e-15, "zero gradient, no change")
    check.fails(function() opt:add_from_sim(m) end, "add_from_sim: expected a simulation")
    local m2 = apical.model { batch = 1 }
    m2:input { name = "x", size = 1 }
    local sim2 = m2:compile()
    check.fails(function() opt:add_from_sim(sim2) end, "add_from_sim: the simulation's model is not a replica")
    -- a replica (the same projections, one sample per batch): its accumulators add up with the
    -- original's; the two samples run one at a time give the two-sample update
    local m3 = apical.model { batch = 1 }
    local x3 = m3:input { name = "x", size = 2 }
    local h3 = m3:population { name = "h", size = 2, neuron = apical.rate { tau = 0.5 } }
    m3:connect(x3, h3.soma, { init = "identity", bias = true, plastic = apical.hebb { eta = 1 } })
    m3:connect(h3, h3.soma, { name = "rec", plastic = true })
    local sim3 = m3:compile()
    opt:zero()
    for _, row in ipairs { { 1, -1 }, { 0.5, 2 } } do
        sim3:set_input(x3, { row })
        sim3:run { solver = "euler", dt = 0.1, steps = 10 }
        opt:add_from_sim(sim3)
    end
    local rW, rb = opt:grad(p)
    for i = 1, 4 do check.near(rW[i], dW[i], 1e-15, "replica dW") end
    for i = 1, 2 do check.near(rb[i], db[i], 1e-15, "replica db") end
    check.fails(function() opt:add_from_sim(sim, "2") end, "add_from_sim: scale must be a number")
end

-- ---- checkpoints: two steps, save, a fresh optimiser loads them, three more = five in one go --
do
    local prefix = check.tmpname("_adam_")
    local function run(steps_before, save, load)
        local m, p1, p2 = make_model()
        local opt = apical.optim.adam { model = m, lr = 0.01, weight_decay = 0.1 }
        for k = 1, steps_before do
            set_grads(opt, p1, p2, k)
            opt:step()
        end
        if save then opt:save(prefix) end
        return m, p1, p2, opt
    end
    local _, f1, f2 = run(5)
    local _, a1, a2 = run(2, true)
    local m, p1, p2 = make_model()
    p1:set_weights(a1:weights()):set_bias(a1:bias())
    p2:set_weights(a2:weights())
    local opt = apical.optim.adam { model = m, lr = 0.01, weight_decay = 0.1 }
    opt:load(prefix)
    check.eq(opt.steps, 2)
    for k = 3, 5 do
        set_grads(opt, p1, p2, k)
        opt:step()
    end
    check.array_near(params(p1, p2), params(f1, f2), 0, "resumed = uninterrupted")
    for _, f in ipairs { "x->h.soma.m", "x->h.soma.v", "x->h.soma.mb", "x->h.soma.vb", "W2.m",
        "W2.v", "steps" } do
        local a = apical.load_npy(prefix .. f .. ".npy")
        check.truthy(a, f)
        os.remove(prefix .. f .. ".npy")
    end
    check.fails(function() opt:load(prefix) end, "optimiser checkpoint: ")
    check.eq(opt.steps, 5, "a failed load changes nothing")
    check.fails(function() opt:save(42) end, "save: expected a file prefix")
end

-- ---- lifetime: the optimiser keeps its model alive ------------------------------------------
do
    local m, p1 = make_model()
    local opt = apical.optim.sgd { model = m, lr = 1 }
    m:close() -- the model is closed for building, but the optimiser still holds it
    m = nil
    collectgarbage()
    collectgarbage()
    opt:set_grad(p1, { { 1, 0, 0 }, { 0, 0, 0 } })
    opt:step()
    check.eq(opt.steps, 1)
    check.eq(apical.optim.sgd ~= nil, true)
    opt:close()
    opt:close() -- twice is fine
    check.fails(function() opt:step() end, "step: the optimiser is closed")
    check.fails(function() return opt.steps end, "steps: the optimiser is closed")
    check.eq(tostring(opt), "apical.Optim (closed)")
    do
        local m2 = make_model()
        local o2 <close> = apical.optim.adam { model = m2 }
        check.eq(o2.kind, "adam")
    end
end

-- ---- errors, at the caller's line --------------------------------------------------------------
do
    local m, p1 = make_model()
    check.fails(function() apical.optim.sgd { model = m, lr = -1 } end,
        "apical.optim.sgd: lr = -1, must be finite and >= 0")
    check.fails(function() apical.optim.adam { model = m, beta1 = 1 } end,
        "apical.optim.adam: beta1 = 1, must be in [0, 1)")
    check.fails(function() apical.optim.adam { model = m, eps = 0 } end, "apical.optim.adam: eps = 0")
    check.fails(function() apical.optim.sgd { model = m, momentum = -0.5 } end, "momentum = -0.5")
    check.fails(function() apical.optim.sgd { model = m, weight_decay = -1 } end, "weight_decay = -1")
    check.fails(function() apical.optim.sgd { model = m, clip = 0 } end, "clip = 0, must be > 0")
    check.fails(function() apical.optim.sgd { model = m, betas = 1 } end,
        "apical.optim.sgd: unknown field betas (fields: model, projections, lr, weight_decay, clip, clip_mode, momentum)")
    check.fails(function() apical.optim.adam { model = m, momentum = 0.9 } end,
        "apical.optim.adam: unknown field momentum")
    check.fails(function() apical.optim.sgd { model = m, lr = "fast" } end,
        "apical.optim.sgd: field lr must be a number, got \"fast\"")
    check.fails(function() apical.optim.sgd { model = m, clip_mode = "global" } end,
        "clip_mode = \"global\" needs clip")
    check.fails(function() apical.optim.sgd { model = m, clip = 1, clip_mode = "none" } end,
        "clip = 1 with clip_mode = \"none\"")
    check.fails(function() apical.optim.sgd { model = m, clip = 1, clip_mode = "layer" } end,
        "field clip_mode must be one of \"none\", \"per_tensor\", \"global\"")
    check.fails(function() apical.optim.sgd { lr = 1 } end, "apical.optim.sgd: field model must be a model")
    check.fails(function() apical.optim.sgd(m) end, "apical.optim.sgd: expected a table")
    check.fails(function() apical.optim.sgd { model = m, projections = { "nope" } } end,
        "apical.optim.sgd: projections[1]: no projection \"nope\"")
    check.fails(function() apical.optim.sgd { model = m, projections = { "frozen" } } end,
        "apical.optim.sgd: projection \"frozen\" is frozen")
    check.fails(function() apical.optim.sgd { model = m, projections = { p1, p1 } } end,
        "projection \"x->h.soma\" is given twice")
    check.fails(function() apical.optim.sgd { model = m, projections = {} } end,
        "field projections is empty")
    check.fails(function() apical.optim.sgd { model = m, projections = p1 } end,
        "field projections must be a list")
    local bare = apical.model { batch = 1 }
    bare:input { name = "x", size = 1 }
    check.fails(function() apical.optim.sgd { model = bare } end, "the model has no plastic projections")
    local other = make_model()
    check.fails(function() apical.optim.sgd { model = other, projections = { p1 } } end,
        "the projection belongs to another model")

    local opt = apical.optim.sgd { model = m, projections = { p1 } }
    check.fails(function() opt:grad("W2") end, "grad: projection \"W2\" is not one of the optimiser's")
    check.fails(function() opt:set_grad(p1, { { 1, 2 } }) end,
        "set_grad: projection \"x->h.soma\": dW has shape {1, 2}, the weights are {2, 3}")
    check.fails(function() opt:set_grad(p1, { { 1, 2, 3 }, { 4, 5, 0 / 0 } }) end,
        "set_grad: projection \"x->h.soma\": dW[2, 3] = ")
    check.fails(function() opt:add_grad(p1, apical.zeros { 2, 3 }, { 1, 2, 3 }) end,
        "add_grad: projection \"x->h.soma\": db has shape {3}, the bias needs {2}")
    check.fails(function() opt:add_grad(p1, apical.zeros { 2, 3 }, nil, "x") end,
        "add_grad: scale must be a number")
    check.fails(function() opt:set_grad(p1, "abc") end, "set_grad: dW: expected an array")
    check.fails(function() opt.step() end, "step: call it with a colon on an optimiser")
    check.fails(function() opt:set_lr(-2) end, "set_lr: lr = -2, must be finite and >= 0")
    check.fails(function() opt:set_lr(1 / 0) end, "set_lr: lr = inf")
    check.eq(opt.lr, 0.01, "a refused lr changes nothing")
    local opt2 = apical.optim.sgd { model = other, projections = { "W2" } }
    check.fails(function() opt2:set_grad("W2", apical.zeros { 2, 3 }, { 1, 2 }) end,
        "set_grad: projection \"W2\" has no bias, but db was given")
    check.fails(function() opt2:norms(p1) end, "the projection belongs to another model")
end

check.done("test_optim")
