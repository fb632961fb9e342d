-- fig3.lua — the paper's Fig. 3 on the student-teacher task: Condition 2, the alignment with
-- the weighted minimum-norm (MN) update of Theorem 3, Condition 1, the alignment with the Gauss-Newton (GN) update,
-- the stability of the linearised network + controller and the alignment with the DFC-SSA
-- update, over training, for DFC, DFC-SS and DFC-SSA with trained and with fixed feedback and
-- for DFA. Every method trains with the paper's student-teacher configuration
-- (models/student_teacher.lua) and records the measures every `every` minibatches; the
-- picture is fig3.png in `out`, with each run's measures.csv and log.csv beside it, and a
-- table of each measure's mean over the last epoch is printed (and written to fig3.md).
--   build/bin/apical run examples/fig3.lua [--set epochs=20] [--set every=5] [--set out=runs/fig3]
-- (tmax, epochs_fb and n_train shorten the paper's 1000 steps, 10 pre-training epochs and
-- 5000 training samples for a quick look)
local apical = require "apical"
local dfc = apical.plugin "dfc"
local plot = require "apical.plot"

local p = apical.params { epochs = 20, every = 5, out = "runs/fig3", seed = 42, solver = "euler",
  progress = false, tmax = 1000, epochs_fb = 10, n_train = 5000, gamma = 0, gamma_gn = 0 }

-- the paper's student-teacher configuration (models/student_teacher.lua)
local base = {
  task = "student_teacher", hidden = { 10, 10 }, activation = "tanh", output_activation = "linear",
  batch = 128, optimizer = "sgd", clip = 1.0, lr = 0.05, lambda = 0.05, normalize_lr = true,
  target_mode = "sample", k_p = 1.5, alpha = 0.0015, tau_v = 0.2, dt = 0.005, tmax = p.tmax,
  solver = p.solver, seed = p.seed, epochs = p.epochs, measures_every = p.every, progress = p.progress,
  measures_gamma = p.gamma, measures_gamma_gn = p.gamma_gn, -- 0: the paper's undamped MN and GN (App. F.1)
  k_p_fb = 0.1, alpha_fb = 0.25, tau_v_fb = 0.01, dt_fb = 0.002, tmax_fb = 50, tau_A = 0.3,
  sigma = 0.01, optimizer_fb = "sgd", lr_fb = 0.002, lr_fb_init = 0.1, beta = 0.025, clip_fb = 1.0,
  epochs_fb = p.epochs_fb, extra_fb_epochs = 1, out_dir = p.out, task_opts = { n_train = p.n_train },
}

local runs = {
  { "DFC", "dfc", "trained" }, { "DFC-SS", "dfc-ss", "trained" }, { "DFC-SSA", "dfc-ssa", "trained" },
  { "DFC (fixed)", "dfc", "weight_product" }, { "DFC-SS (fixed)", "dfc-ss", "weight_product" },
  { "DFC-SSA (fixed)", "dfc-ssa", "weight_product" }, { "DFA", "dfa", "given" },
}

apical.mkdir(p.out)
local done = {}
for _, r in ipairs(runs) do
  -- the shared settings as defaults: each method reads those it uses (the sleep phase's only
  -- with trained feedback, the simulation's only DFC and DFC-SS; docs/training.md)
  local cfg = { defaults = base, method = r[2], feedback = r[2] ~= "dfa" and r[3] or nil }
  cfg.name = r[1]:lower():gsub("[%s%(%)]+", "-"):gsub("%-$", "")
  local t0 = apical.clock()
  local res = dfc.train(cfg)
  done[#done + 1] = { dir = res.run_dir, title = r[1], res = res, wall = apical.clock() - t0 }
end

local png = plot.measures(done, p.out .. "/fig3.png",
  string.format("student-teacher, %d epochs (measures every %d minibatches)", p.epochs, p.every))

-- the last epoch's means of every measure, one row per method
local cols = { "condition2", "angle_wmn", "condition1", "angle_gn", "stability", "angle_ssa", "angle_mn", "angle_bp" }
local lines = { "| method | final test loss | " .. table.concat(cols, " | ") .. " | wall s |",
  "|---" .. string.rep("|---", #cols + 2) .. "|" }
for _, d in ipairs(done) do
  local last = d.res.log[#d.res.log]
  local f = {}
  for i, k in ipairs(cols) do f[i] = string.format("%.4g", last[k]) end
  lines[#lines + 1] = string.format("| %s | %.4g | %s | %.0f |", d.title, last.test_loss,
    table.concat(f, " | "), d.wall)
end
local text = table.concat(lines, "\n") .. "\n"
io.write("\n", text)
local f = assert(io.open(p.out .. "/fig3.md.tmp", "w"))
f:write(text)
f:close()
assert(os.rename(p.out .. "/fig3.md.tmp", p.out .. "/fig3.md"))
print(png)
