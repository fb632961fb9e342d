-- fig3.lua — the paper's Fig. 3 as the PyTorch reference runs it (its configs_fig3 and
-- run_toy_exp_fig3.py; docs/results.md, "Fig. 3"): the reference's student-teacher task
-- (dfc.tasks.student_teacher, variant "reference"), a 15-10-10-5 tanh student, and per method
--   trained feedback: 50 feedback pre-training epochs (SGD, lr_fb_init 0.1), then every epoch
--     1 feedback epoch, the forward epoch, 2 more feedback epochs (SGD, lr_fb 0.002), feedback
--     weight decay 0.025, one clipping norm 1 over all Q_i;
--   fixed feedback: Q the weight product at initialisation;
--   forward: SGD at lr 0.05 / lambda 0.05 = 1 on the reference's minibatch-mean targets,
--     clipped per tensor at 1;
--   every epoch (forward and feedback) ends with the short last minibatch (5000 = 39 x 128 + 8)
--     trained as a minibatch of its own, as the reference's DataLoader does (drop_last = false;
--     its minibatch-mean targets make its update about 128 / 8 = 16 times a full one's per
--     sample: docs/results.md); --set drop_last=true skips it.
-- The measures, once per epoch on the epoch's first forward minibatch before the update (with
-- trained feedback, Condition 2 after the epoch's first feedback minibatch, on that minibatch),
-- are the reference code's (docs/dfc.md, "Measures"): Condition 2, the angles with its damped MN
-- update mapped through the nonlinearity (angle_mn_ref) and its per-sample damped GN update
-- (angle_gn_ref), Condition 1 as its code computes it (condition1_ref, / m) and as the paper
-- writes it (condition1, / m^2), the batch mean of the largest real part of the PI system's
-- eigenvalues at the DFC-SSA steady state (stability_mean), and ours beside them (angle_wmn,
-- angle_gn, angle_bp, angle_ssa). Damping gamma_ref = 0.1 (0 for DFA, as the reference).
-- Each run writes <out>/<name>-s<seed>/epochs.csv (one row per epoch, and the trailing
-- `window`-epoch mean of every measure in the columns *_m<window>); the picture, fig3.png,
-- plots those means; fig3.md has the last epoch's means, one row per run.
--   build/bin/apical run examples/fig3.lua [--set epochs=300] [--set methods=dfc-ssa,dfc-ssa-fixed]
--     [--set seeds=42,43] [--set out=runs/fig3]
--   build/bin/apical run examples/fig3.lua --set collect=runs/a,runs/b --set seeds=42,43 --set out=runs/fig3
--     (no training: the picture and the tables from the epochs.csv of earlier runs, found as
--     <dir>/<method>-s<seed>/epochs.csv in the listed directories)
-- fig3.md also has, per method over the seeds, each measure at epochs 1, 76, 151, 225 and the last
-- (the reference's table in docs/results.md) and its trailing mean at the last epoch, mean and
-- standard deviation over the seeds.
-- methods: any of dfc, dfc-ss, dfc-ssa, dfc-fixed, dfc-ss-fixed, dfc-ssa-fixed, dfa ("all": the
-- seven). tmax (DFC, DFC-SS: the reference's 1000 steps of 0.005), epochs_fb and n_train shorten
-- the run for a quick look.
local apical = require "apical"
local dfc = apical.plugin "dfc"
local plot = require "apical.plot"
local sleep = require "apical.plugins.dfc.sleep"

local p = apical.params { epochs = 300, out = "runs/fig3", seeds = "42", methods = "all",
  solver = "euler", tmax = 1000, epochs_fb = 50, n_train = 5000, window = 30, gamma_ref = 0.1,
  teacher = "reference", collect = "", drop_last = false }

local base = {
  task = "student_teacher", hidden = { 10, 10 }, activation = "tanh", output_activation = "linear",
  batch = 128, drop_last = p.drop_last, optimizer = "sgd", clip = 1.0, lr = 0.05, lambda = 0.05, normalize_lr = true,
  target_mode = "mean", k_p = 1.5, alpha = 0.0015, tau_v = 0.2, dt = 0.005, tmax = p.tmax,
  solver = p.solver, progress = false, k_p_fb = 0.1, alpha_fb = 0.25, tau_v_fb = 0.01,
  dt_fb = 0.002, tmax_fb = 50, tau_A = 0.3, sigma = 0.01, optimizer_fb = "sgd", lr_fb = 0.002,
  lr_fb_init = 0.1, beta = 0.025, clip_fb = 1.0, epochs_fb = p.epochs_fb, extra_fb_epochs = 0,
  checkpoint = false, task_opts = { n_train = p.n_train, variant = p.teacher },
}

local ALL = {
  { "dfc", "DFC", "dfc", "trained" }, { "dfc-ss", "DFC-SS", "dfc-ss", "trained" },
  { "dfc-ssa", "DFC-SSA", "dfc-ssa", "trained" }, { "dfc-fixed", "DFC (fixed)", "dfc", "weight_product" },
  { "dfc-ss-fixed", "DFC-SS (fixed)", "dfc-ss", "weight_product" },
  { "dfc-ssa-fixed", "DFC-SSA (fixed)", "dfc-ssa", "weight_product" }, { "dfa", "DFA", "dfa", "given" },
}

local function list(s)
  local t = {}
  for w in tostring(s):gmatch("[^,%s]+") do t[#t + 1] = w end
  return t
end

local runs = {}
if p.methods == "all" then
  runs = ALL
else
  for _, name in ipairs(list(p.methods)) do
    local found
    for _, r in ipairs(ALL) do if r[1] == name then found = r end end
    if not found then
      error(string.format("fig3.lua: methods: unknown method %q (dfc, dfc-ss, dfc-ssa, dfc-fixed, " ..
        "dfc-ss-fixed, dfc-ssa-fixed, dfa or all)", name), 0)
    end
    runs[#runs + 1] = found
  end
end
local seeds = {}
for _, s in ipairs(list(p.seeds)) do
  local n = tonumber(s)
  if not n or n % 1 ~= 0 then error(string.format("fig3.lua: seeds: %q is not an integer", s), 0) end
  seeds[#seeds + 1] = n
end

-- the columns of epochs.csv: the measures first (their trailing means follow), then the rest
local MEASURES = { "condition2", "angle_mn_ref", "angle_gn_ref", "condition1_ref", "condition1",
  "stability_mean", "angle_wmn", "angle_gn", "angle_bp", "angle_ssa" }
local OTHER = { "epoch", "train_loss", "valid_loss", "test_loss", "condition2_fwd", "wall_fwd", "wall_fb" }

-- One feedback epoch (number k) as the trainer's, calling after(X) after its first minibatch.
local function feedback_epoch(t, k, init, after)
  local c = t.cfg
  local opt = init and t.opt_fb_init or t.opt_fb
  local nb = 0
  for X, _, _, count in t.task.train:batches { batch = t.B, shuffle = true, seed = sleep.shuffle_seed(c.seed),
      epoch = k, drop_last = c.drop_last } do
    nb = nb + 1
    opt:zero()
    if count == t.B then
      t.sleep:gradient(X, opt, sleep.noise_seed(c.seed, k, nb))
    else -- the short last minibatch (drop_last = false): the mean over its samples
      t:short(count).sleep:gradient(X, opt, sleep.noise_seed(c.seed, k, nb), t.B / count)
    end
    opt:step()
    if nb == 1 and after then after(X) end
  end
end

-- Condition 2 (mean over the rows of X) of the trainer's current feedback.
local c2_out = {}
local function condition2(t, X)
  local B = X.shape[1]
  c2_out[B] = c2_out[B] or apical.zeros { B }
  local ok = pcall(dfc.condition2, { model = t.net.model, x = X, out = c2_out[B], Q = t.net:ssa_feedback() })
  return ok and c2_out[B]:sum() / B or 0 / 0
end

-- The forward epoch e: the measures on the first minibatch before its update; returns the mean
-- training loss over the minibatches (each before its update) and the measures.
local function forward_epoch(t, ms, e, gamma_ref)
  local c = t.cfg
  local loss, nb, row = 0, 0, {}
  for Xb, Yb, _, count in t.task.train:batches { batch = t.B, shuffle = true, seed = c.seed, epoch = e,
      drop_last = c.drop_last } do
    -- the trainer for this minibatch: itself, or its view of a short last one (drop_last = false)
    local tb, X, Y = t:minibatch(Xb, Yb, count)
    nb = nb + 1
    loss = loss + tb:batch_loss(X, Y)
    t.opt:zero()
    tb:gradient(X, Y)
    if nb == 1 then
      if c.method == "dfa" then tb:targets(X, Y) end
      local r = ms:compute { x = X, target = tb.rstar, y = Y, loss = "mse", update = t.opt,
        gamma_ref = gamma_ref, skip = { "condition3", "mn" } }
      local nan = 0 / 0
      for _, k in ipairs { "condition1", "condition1_ref", "condition2", "stability_mean" } do row[k] = r[k] or nan end
      for _, k in ipairs { "mn_ref", "gn_ref", "wmn", "gn", "bp", "ssa" } do
        row["angle_" .. k] = r.angles and r.angles[k] and r.angles[k].all or nan
      end
    end
    t.opt:step()
  end
  row.train_loss = loss / nb
  return row
end

local function write_csv(path, cols, rows)
  local lines = { table.concat(cols, ",") }
  for _, r in ipairs(rows) do
    local f = {}
    for i, k in ipairs(cols) do f[i] = string.format("%.10g", r[k] or 0 / 0) end
    lines[#lines + 1] = table.concat(f, ",")
  end
  local fh = assert(io.open(path .. ".tmp", "w"))
  fh:write(table.concat(lines, "\n"), "\n")
  fh:close()
  assert(os.rename(path .. ".tmp", path))
end

-- the trailing mean over the last `w` epochs (fewer at the start; NaNs left out)
local function trailing(rows, k, e, w)
  local s, n = 0, 0
  for j = math.max(1, e - w + 1), e do
    local v = rows[j][k]
    if v == v then s, n = s + v, n + 1 end
  end
  return n > 0 and s / n or 0 / 0
end

local cols = {}
for _, k in ipairs(OTHER) do cols[#cols + 1] = k end
for _, k in ipairs(MEASURES) do cols[#cols + 1] = k end
for _, k in ipairs(MEASURES) do cols[#cols + 1] = k .. "_m" .. p.window end

local function run_one(r, seed)
  -- the shared settings as defaults: each method reads those it uses (the sleep phase's only
  -- with trained feedback, the simulation's only DFC and DFC-SS; docs/training.md)
  local t = dfc.trainer { defaults = base, method = r[3], feedback = r[3] ~= "dfa" and r[4] or nil,
    seed = seed, epochs = p.epochs }
  local cfg = t.cfg
  local gamma_ref = r[1] == "dfa" and 0 or p.gamma_ref
  local ms = dfc.measures_new(t.net, { alpha = cfg.alpha, k_p = cfg.k_p, tau_v = cfg.tau_v, gamma_ref = gamma_ref })
  local dir = string.format("%s/%s-s%d", p.out, r[1], seed)
  apical.mkdir(dir)
  local trained = cfg.feedback == "trained"
  local pre = {}
  local t0 = apical.clock()
  if trained then
    for k = 1, cfg.epochs_fb do
      feedback_epoch(t, k, true, function(X) pre[k] = { epoch = k, condition2 = condition2(t, X) } end)
    end
    write_csv(dir .. "/pretraining.csv", { "epoch", "condition2" }, pre)
  end
  local pre_wall = apical.clock() - t0
  local rows = {}
  for e = 1, cfg.epochs do
    local k0 = cfg.epochs_fb + 3 * (e - 1)
    local c2fb
    local t1 = apical.clock()
    if trained then feedback_epoch(t, k0 + 1, false, function(X) c2fb = condition2(t, X) end) end
    local t2 = apical.clock()
    local row = forward_epoch(t, ms, e, gamma_ref)
    local t3 = apical.clock()
    if trained then
      feedback_epoch(t, k0 + 2, false)
      feedback_epoch(t, k0 + 3, false)
    end
    row.epoch, row.wall_fwd, row.wall_fb = e, t3 - t2, (t2 - t1) + (apical.clock() - t3)
    row.condition2_fwd = row.condition2
    if trained then row.condition2 = c2fb end
    row.valid_loss = t:evaluate(t.task.valid)
    row.test_loss = t:evaluate(t.task.test)
    rows[e] = row
    for _, k in ipairs(MEASURES) do row[k .. "_m" .. p.window] = trailing(rows, k, e, p.window) end
    write_csv(dir .. "/epochs.csv", cols, rows)
  end
  return { dir = dir, title = string.format("%s s%d", r[2], seed), name = r[2], seed = seed, rows = rows,
    pre = pre, pre_wall = pre_wall, wall = apical.clock() - t0 }
end

-- the rows of an earlier run's epochs.csv (nil when there is none)
local function read_run(dir, r, seed)
  local f = io.open(dir .. "/epochs.csv")
  if not f then return nil end
  local header = {}
  for c in f:read("l"):gmatch("[^,]+") do header[#header + 1] = c end
  local rows = {}
  for line in f:lines() do
    local row, i = {}, 0
    for v in line:gmatch("[^,]+") do
      i = i + 1
      row[header[i]] = tonumber(v) or (v:lower():find("nan") and 0 / 0) or nil
    end
    rows[#rows + 1] = row
  end
  f:close()
  if #rows == 0 then return nil end
  return { dir = dir, title = string.format("%s s%d", r[2], seed), name = r[2], seed = seed, rows = rows }
end

apical.mkdir(p.out)
local done = {}
if p.collect ~= "" then
  for _, seed in ipairs(seeds) do
    for _, r in ipairs(runs) do
      for _, d in ipairs(list(p.collect)) do
        local got = read_run(string.format("%s/%s-s%d", d, r[1], seed), r, seed)
        if got then done[#done + 1] = got break end
      end
    end
  end
  if #done == 0 then error("fig3.lua: collect: no epochs.csv found for these methods and seeds", 0) end
else
  for _, seed in ipairs(seeds) do
    for _, r in ipairs(runs) do done[#done + 1] = run_one(r, seed) end
  end
end
local last_epoch = 0
for _, d in ipairs(done) do last_epoch = math.max(last_epoch, #d.rows) end

-- the picture: the trailing means of the reference's six panels
local spec = { { "condition2", "Condition 2" }, { "condition1_ref", "Condition 1 (code's, / m)" },
  { "stability_mean", "max Re eig, PI system (batch mean)" }, { "angle_mn_ref", "angle with MN (deg)" },
  { "angle_gn_ref", "angle with GN (deg)" }, { "angle_ssa", "angle with DFC-SSA (deg)" } }
local panels = {}
for k, sp in ipairs(spec) do
  local series = {}
  for _, d in ipairs(done) do
    series[#series + 1] = { file = d.dir .. "/epochs.csv", x = "epoch", y = sp[1] .. "_m" .. p.window,
      title = d.title, style = "lines" }
  end
  panels[k] = { title = string.char(64 + k) .. ": " .. sp[2], xlabel = "epoch", series = series }
end
local png = plot.panels { out = p.out .. "/fig3.png", layout = { 2, 3 }, panels = panels,
  title = string.format("student-teacher (reference task), %d epochs, trailing %d-epoch means", last_epoch, p.window) }

-- the last epoch's trailing means, one row per run
local show = { "condition2", "angle_mn_ref", "angle_gn_ref", "condition1_ref", "stability_mean", "angle_ssa" }
local lines = { "| run | train loss (epoch 1 -> last) | " .. table.concat(show, " | ") ..
  " | s per epoch (fwd + fb) |", "|---" .. string.rep("|---", #show + 2) .. "|" }
for _, d in ipairs(done) do
  local last, f = d.rows[#d.rows], {}
  for i, k in ipairs(show) do f[i] = string.format("%.4g", last[k .. "_m" .. p.window]) end
  local fw, fb = 0, 0
  for _, r in ipairs(d.rows) do fw, fb = fw + r.wall_fwd, fb + r.wall_fb end
  lines[#lines + 1] = string.format("| %s | %.4g -> %.4g | %s | %.2f + %.2f |", d.title, d.rows[1].train_loss,
    last.train_loss, table.concat(f, " | "), fw / #d.rows, fb / #d.rows)
end

-- per method over the seeds: each measure at the reference's epochs (mean), and the trailing
-- mean at the last epoch (mean ± sd over the seeds); the train loss's first and last epochs
local function mean_sd(v)
  local s, n = 0, #v
  for _, x in ipairs(v) do s = s + x end
  local m, q = s / n, 0
  for _, x in ipairs(v) do q = q + (x - m) ^ 2 end
  return m, n > 1 and math.sqrt(q / (n - 1)) or 0
end
local at = {}
for _, e in ipairs { 1, 76, 151, 225, last_epoch } do
  if e <= last_epoch and at[#at] ~= e then at[#at + 1] = e end
end
local tcols = { "condition2", "angle_mn_ref", "angle_gn_ref", "condition1_ref", "stability_mean", "train_loss" }
lines[#lines + 1] = ""
lines[#lines + 1] = string.format("Per method, mean over the seeds at epochs %s (the trailing %d-epoch mean at %d, " ..
  "mean ± sd over the seeds, in brackets):", table.concat(at, " / "), p.window, last_epoch)
lines[#lines + 1] = ""
lines[#lines + 1] = "| method | seeds | " .. table.concat(tcols, " | ") .. " |"
lines[#lines + 1] = "|---|---" .. string.rep("|---", #tcols) .. "|"
for _, r in ipairs(runs) do
  local group = {}
  for _, d in ipairs(done) do if d.name == r[2] and #d.rows == last_epoch then group[#group + 1] = d end end
  if #group > 0 then
    local cells = {}
    for i, k in ipairs(tcols) do
      local vals = {}
      for j, e in ipairs(at) do
        local v = {}
        for _, d in ipairs(group) do v[#v + 1] = d.rows[e][k] end
        vals[j] = string.format("%.3g", (mean_sd(v)))
      end
      local tm = {}
      for _, d in ipairs(group) do tm[#tm + 1] = k == "train_loss" and d.rows[last_epoch][k] or d.rows[last_epoch][k .. "_m" .. p.window] end
      local m, sd = mean_sd(tm)
      cells[i] = table.concat(vals, " / ") .. string.format(" (%.3g ± %.2g)", m, sd)
    end
    local sd_list = {}
    for _, d in ipairs(group) do sd_list[#sd_list + 1] = tostring(d.seed) end
    lines[#lines + 1] = string.format("| %s | %s | %s |", r[2], table.concat(sd_list, ","), table.concat(cells, " | "))
  end
end
local text = table.concat(lines, "\n") .. "\n"
io.write("\n", text)
local fh = assert(io.open(p.out .. "/fig3.md.tmp", "w"))
fh:write(text)
fh:close()
assert(os.rename(p.out .. "/fig3.md.tmp", p.out .. "/fig3.md"))
print(png)
