-- test_unused_options.lua — dfc.train refuses an option the user gave that the chosen method,
-- solver, optimiser or feedback does not read (plugins/dfc/lua/dfc/unused.lua), at the user's
-- line, naming the option, its value and why; the same options as `defaults` (a dfc.paper
-- configuration) are not refused. Every rule of unused.lua is exercised, each in both
-- directions (refused where not read, accepted where read).
local apical = require "apical"
local dfc = apical.plugin "dfc"
package.path = (arg[0]:match("^(.*)/") or ".") .. "/?.lua;" .. package.path
local fx = require "dfc_fixture"
local check, assert = fx.check, fx.check.assert
local unused = require "apical.plugins.dfc.unused"

local tmp = fx.tmpdir()

local base = { task = "student_teacher", progress = false, out_dir = tmp, epochs = 0,
  checkpoint = false, task_opts = { n_train = 256, n_valid = 64, n_test = 64 } }
local cfg = fx.config(base)

-- the error starts with this file's line of the call (written on one line) and contains needle
local fails = fx.fails
local function works(c) return dfc.trainer(cfg(c)) end

-- each class of option with its message
fails(function() dfc.trainer(cfg { solver = "euler", rtol = 1e-9 }) end, 'dfc.train: option rtol = 1e-09 is not used by this run: it is read only by a CVODE solver (cvode-bdf, cvode-adams) simulating dfc or dfc-ss, and solver is "euler" (fixed steps of dt)')
fails(function() dfc.trainer(cfg { atol = 1e-9 }) end, 'option atol = 1e-09 is not used by this run')
fails(function() dfc.trainer(cfg { method = "dfc-ss", settle_tol = 1e-3 }) end, 'option settle_tol = 0.001 is not used')
fails(function() dfc.trainer(cfg { solver = "cvode-bdf", proactive = false }) end, 'option proactive = false is not used by this run: it is read only by the published Euler scheme (solver = "euler", the order of its updates) simulating dfc or dfc-ss, and solver is "cvode-bdf" (continuous time)')
fails(function() dfc.trainer(cfg { method = "dfc-ssa", dt = 0.01 }) end, 'option dt = 0.01 is not used by this run: it is read only by the methods that simulate the network (dfc, dfc-ss), and method is "dfc-ssa"')
fails(function() dfc.trainer(cfg { method = "bp", solver = "cvode-bdf" }) end, 'option solver = "cvode-bdf" is not used by this run')
fails(function() dfc.trainer(cfg { method = "dfa", k_p = 2 }) end, 'option k_p = 2 is not used by this run: it is read only by a controller with a proportional part')
fails(function() dfc.trainer(cfg { controller = "i", k_p = 2 }) end, 'option k_p = 2 is not used by this run: it is read only by a controller with a proportional part (pi, p, pid) in the simulated methods (dfc, dfc-ss) or the measures, and controller is "i"')
fails(function() dfc.trainer(cfg { method = "bp", alpha = 0.01 }) end, 'option alpha = 0.01 is not used by this run: it is read only by the DFC methods (dfc, dfc-ss, dfc-ssa) and the measures (measures_every > 0), and method is "bp" and measures_every = 0')
fails(function() dfc.trainer(cfg { method = "dfa", lambda = 0.1 }) end, 'option lambda = 0.1 is not used by this run')
fails(function() dfc.trainer(cfg { method = "dfa", feedback = "trained" }) end, 'option feedback = "trained" is not used by this run: it is read only by the DFC methods (bp uses no feedback; dfa its fixed random Q), and method is "dfa"')
fails(function() dfc.trainer(cfg { method = "bp", feedback_pathway = "direct" }) end, 'option feedback_pathway = "direct" is not used by this run')
fails(function() dfc.trainer(cfg { optimizer = "adam", momentum = 0.9 }) end, 'option momentum = 0.9 is not used by this run: it is read only by optimizer = "sgd", and optimizer is "adam"')
fails(function() dfc.trainer(cfg { eps = 1e-6 }) end, 'option eps = 1e-06 is not used by this run: it is read only by optimizer = "adam", and optimizer is "sgd"')
fails(function() dfc.trainer(cfg { beta1 = 0.8 }) end, 'option beta1 = 0.8 is not used by this run')
fails(function() dfc.trainer(cfg { lr_fb = 0.01 }) end, 'option lr_fb = 0.01 is not used by this run: it is read only by trained feedback (feedback = "trained" with a DFC method: the sleep phase), and feedback is "weight_product"')
fails(function() dfc.trainer(cfg { method = "bp", epochs_fb = 2 }) end, 'option epochs_fb = 2 is not used by this run')
fails(function() dfc.trainer(cfg { fb_threads = 2 }) end, 'option fb_threads = 2 is not used by this run')
fails(function() dfc.trainer(cfg { feedback = "trained", eps_fb = 1e-6 }) end, 'option eps_fb = 1e-06 is not used by this run: it is read only by trained feedback with optimizer_fb = "adam", and optimizer_fb is "sgd"')
fails(function() dfc.trainer(cfg { tau_hp = 2 }) end, 'option tau_hp = 2 is not used by this run: it is read only by single_phase = true')
fails(function() dfc.trainer(cfg { measures_gamma = 0.1 }) end, 'option measures_gamma = 0.1 is not used by this run')
-- defaults must be a table; an unknown option among them is still refused
fails(function() dfc.trainer(cfg { defaults = 3 }) end, "dfc.train: option defaults must be a table of options, got number")
fails(function() dfc.trainer(cfg { defaults = { rtoll = 1 } }) end, 'dfc.train: unknown option "rtoll"')

-- the same options where they are read
works { solver = "cvode-bdf", rtol = 1e-9, atol = 1e-9, settle_tol = 1e-3 }
works { solver = "euler", proactive = false, inst_transmission = false, dt = 0.01 }
works { method = "bp", measures_every = 1, alpha = 0.01, k_p = 2, lambda = 0.1, measures_gamma = 0.1 }
works { method = "dfa", optimizer = "adam", eps = 1e-6, beta1 = 0.8, feedback_pathway = "direct" }
works { method = "bp", normalize_lr = true, lambda = 0.1 }
works { feedback = "trained", optimizer_fb = "adam", eps_fb = 1e-6, lr_fb = 0.01, fb_threads = 2, beta1 = 0.8 }
works { feedback = "trained", single_phase = true, tau_hp = 2, extra_fb_epochs = 0 }

-- a paper configuration as defaults: every method runs with it, the options it does not read
-- are not refused, and those it reads take the paper's values (or the user's over them)
for _, m in ipairs { "bp", "dfa", "dfc", "dfc-ss", "dfc-ssa" } do
  for _, fb in ipairs { "weight_product", "trained" } do
    local d = dfc.paper.config("mnist", m, fb)
    d.task, d.hidden = nil, { 8 } -- the student-teacher task here, small
    local t = works { method = m, defaults = d, lr = 1e-3 }
    assert(t.cfg.lr == 1e-3 and t.cfg.lambda == d.lambda and t.cfg.optimizer == "adam", m)
    -- a feedback from the defaults that the method does not use sets up no sleep phase
    local dfc_m = m:sub(1, 3) == "dfc"
    assert((t.sleep ~= nil) == (dfc_m and fb == "trained"), m .. " " .. fb)
    assert(t.cfg.feedback == (dfc_m and d.feedback or "weight_product"), m .. " " .. fb)
  end
end
-- the user's options over the defaults are checked
fails(function() dfc.trainer(cfg { method = "bp", defaults = dfc.paper.config("mnist", "dfc", "trained"), task = "student_teacher", lr_fb = 1e-3 }) end, "option lr_fb = 0.001 is not used by this run")

-- every option of dfc.train belongs to at most one rule, and every rule names known options
for k in pairs(unused.rule_of) do assert(dfc.train_defaults[k] ~= nil, "unused.lua names unknown option " .. k) end

check.done("test_unused_options")
