-- table1.lua — the paper's Table 1 for a chosen budget: every method (BP, DFA, DFC, DFC-SS,
-- DFC-SSA with trained feedback, and the three with fixed weight-product feedback) on MNIST,
-- Fashion-MNIST and the MNIST autoencoder, each with the paper configuration of its model file
-- (models/mnist.lua, models/fashion_mnist.lua, models/mnist_autoencoder.lua) and several seeds.
-- The table gives the test error (classification) or test loss (autoencoder) at the best
-- validation epoch, mean ± std over the seeds, and the mean wall time per run. Finished runs
-- are listed in OUT/results.csv and skipped when the script runs again; the table is written to
-- OUT/table1.md. The budget (epochs, training samples, feedback pre-training epochs) is part of
-- the table's heading: the paper trains 100 epochs (25 for the autoencoder) on 55,000 samples.
--   build/bin/apical run examples/table1.lua --set epochs=1 --set seeds=42,43,44 \
--     [--set tasks=mnist,fashion_mnist,mnist_autoencoder] [--set methods=bp,dfa,dfc-ssa] \
--     [--set n_train=55000] [--set epochs_fb=10] [--set out=runs/table1] [--set render_only=true]
-- (render_only: no training, the table from what results.csv holds; a cell with fewer runs
-- than seeds says how many it has)
-- Under MPI (`mpirun -np N build/bin/apical run examples/table1.lua ...`) the runs are a task
-- farm: run i on rank (i - 1) % N, one process each; every rank records its finished runs in
-- OUT/results.rank<r>.csv at once (a killed sweep resumes from them), rank 0 merges them into
-- results.csv and writes the table (docs/scaling.md).
-- Needs the data (scripts/get-data.sh).
local apical = require "apical"
local dfc = apical.plugin "dfc"
local mpi = require "apical.plugins.dfc.mpi"

local p = apical.params { epochs = 1, seeds = "42,43,44", n_train = 55000, epochs_fb = 10,
  tasks = "mnist,fashion_mnist,mnist_autoencoder",
  methods = "bp,dfa,dfc,dfc-ss,dfc-ssa,dfc-fixed,dfc-ss-fixed,dfc-ssa-fixed",
  out = "runs/table1", progress = false, render_only = false }

local MODEL = { mnist = "models/mnist.lua", fashion_mnist = "models/fashion_mnist.lua",
  mnist_autoencoder = "models/mnist_autoencoder.lua" }
local TASK_NAME = { mnist = "MNIST", fashion_mnist = "Fashion-MNIST", mnist_autoencoder = "MNIST-autoencoder" }
-- method key -> trainer method, feedback, label
local METHOD = {
  bp = { "bp", "given", "BP" }, dfa = { "dfa", "given", "DFA" },
  dfc = { "dfc", "trained", "DFC" }, ["dfc-ss"] = { "dfc-ss", "trained", "DFC-SS" },
  ["dfc-ssa"] = { "dfc-ssa", "trained", "DFC-SSA" },
  ["dfc-fixed"] = { "dfc", "weight_product", "DFC (fixed)" },
  ["dfc-ss-fixed"] = { "dfc-ss", "weight_product", "DFC-SS (fixed)" },
  ["dfc-ssa-fixed"] = { "dfc-ssa", "weight_product", "DFC-SSA (fixed)" },
}

local function list(s, known, what)
  local t = {}
  for item in s:gmatch("[^,%s]+") do
    if known and not known[item] then
      local names = {}
      for k in pairs(known) do names[#names + 1] = k end
      table.sort(names)
      error(string.format("table1: unknown %s %q (%s)", what, item, table.concat(names, ", ")), 0)
    end
    t[#t + 1] = item
  end
  return t
end
local tasks, methods = list(p.tasks, MODEL, "task"), list(p.methods, METHOD, "method")
local seeds = {}
for _, s in ipairs(list(p.seeds)) do
  seeds[#seeds + 1] = math.tointeger(tonumber(s)) or error("table1: seed " .. s .. " is not an integer", 0)
end

-- The configuration a model file passes to dfc.train (its own parameters at their defaults,
-- or as given with --set).
local function paper_config(file)
  local real, cfg = dfc.train, nil
  dfc.train = function(c) cfg = c end
  local ok, err = pcall(dofile, file)
  dfc.train = real
  if not ok then error(err, 0) end
  return cfg
end

apical.mkdir(p.out)
local results_csv = p.out .. "/results.csv"
local rank_csv = string.format("%s/results.rank%d.csv", p.out, mpi.rank)
local results = {}
-- results.csv and the ranks' files of an interrupted farm
local function read_results(path)
  local first = #results + 1
  local f = io.open(path)
  if f then
    f:read("l")
    for line in f:lines() do
      local task, method, seed, epochs, n_train, best, err, loss, wall = line:match(
        "^([^,]+),([^,]+),([^,]+),([^,]+),([^,]+),([^,]+),([^,]+),([^,]+),([^,]+)$")
      if task then
        results[#results + 1] = { task = task, method = method, seed = tonumber(seed),
          epochs = tonumber(epochs), n_train = tonumber(n_train), best = tonumber(best),
          error = tonumber(err), loss = tonumber(loss), wall = tonumber(wall) }
      end
    end
    f:close()
  end
  return table.move(results, first, #results, 1, {})
end
read_results(results_csv)
local ranks = mpi.size
local mine = read_results(rank_csv) -- this rank's runs of an interrupted farm
local farm_files = #mine > 0
do
  local ls = io.popen("ls '" .. p.out .. "' 2>/dev/null")
  for name in ls:lines() do
    if name:match("^results%.rank%d+%.csv$") and p.out .. "/" .. name ~= rank_csv then
      read_results(p.out .. "/" .. name)
      farm_files = true
    end
  end
  ls:close()
end
mpi.barrier() -- every rank has read the files before any writes to them
local function find(task, method, seed)
  for _, r in ipairs(results) do
    if r.task == task and r.method == method and r.seed == seed and r.epochs == p.epochs
        and r.n_train == p.n_train then
      return r
    end
  end
end
local function save_results(path, rows)
  local lines = { "task,method,seed,epochs,n_train,best_epoch,test_error,test_loss,wall_seconds" }
  for _, r in ipairs(rows) do
    lines[#lines + 1] = string.format("%s,%s,%d,%d,%d,%d,%.10g,%.10g,%.1f", r.task, r.method, r.seed,
      r.epochs, r.n_train, r.best, r.error, r.loss, r.wall)
  end
  local f = assert(io.open(path .. ".tmp", "w"))
  f:write(table.concat(lines, "\n"), "\n")
  f:close()
  assert(os.rename(path .. ".tmp", path))
end

-- the runs to do, the same list on every rank
local todo = {}
for _, task in ipairs(tasks) do
  for _, mk in ipairs(methods) do
    for _, seed in ipairs(seeds) do
      if find(task, mk, seed) then
        print(string.format("%s %s seed %d: done (%s)", task, mk, seed, results_csv))
      elseif not p.render_only then
        todo[#todo + 1] = { task = task, mk = mk, seed = seed }
      end
    end
  end
end
local bases = {}
local done = mpi.farm(#todo, 4, function(i)
  local task, mk, seed = todo[i].task, todo[i].mk, todo[i].seed
  bases[task] = bases[task] or paper_config(MODEL[task])
  local base = bases[task]
  -- the method's own published configuration (dfc.paper), with the model file's run
  -- settings (solver, tolerances, freeze_QL); the paper's values and the model's run settings
  -- are defaults: those the method does not read are not read (docs/training.md); epochs_fb
  -- only for the methods with trained feedback
  local m = METHOD[mk]
  local defaults = dfc.paper.config(task, m[1], m[2])
  for _, k in ipairs { "solver", "rtol", "atol", "settle_tol", "freeze_QL" } do
    local v = base[k]
    if v == nil and base.defaults then v = base.defaults[k] end
    if v ~= nil then defaults[k] = v end
  end
  local cfg = { task = task, method = m[1], defaults = defaults, seed = seed,
    epochs = p.epochs, progress = p.progress, task_opts = { n_train = p.n_train },
    out_dir = p.out, name = string.format("%s-%s-seed%d", task, mk, seed), resume = "" }
  if m[2] == "trained" then cfg.epochs_fb = p.epochs_fb end
  print(string.format("== %s %s seed %d", task, mk, seed))
  local t0 = apical.clock()
  local r = dfc.train(cfg)
  local row = { task = task, method = mk, seed = seed, epochs = p.epochs,
    n_train = p.n_train, best = r.best.epoch, error = r.best.test_error, loss = r.best.test_loss,
    wall = apical.clock() - t0 }
  if ranks == 1 then
    results[#results + 1] = row
    save_results(results_csv, results)
  else
    mine[#mine + 1] = row
    save_results(rank_csv, mine)
  end
  return { row.best, row.error, row.loss, row.wall }
end)
-- rank 0 collects the farm's runs into results.csv; the ranks' files are then redundant
for i, v in pairs(ranks > 1 and done or {}) do
  local t = todo[i]
  results[#results + 1] = { task = t.task, method = t.mk, seed = t.seed, epochs = p.epochs,
    n_train = p.n_train, best = v[1], error = v[2], loss = v[3], wall = v[4] }
end
if mpi.rank == 0 and (farm_files or (ranks > 1 and #todo > 0)) then
  save_results(results_csv, results)
  os.execute(string.format("rm -f '%s'/results.rank*.csv", p.out))
end
if mpi.rank > 0 then return end

-- the table: one row per method, one column per task
local function stats(xs)
  local n, s = #xs, 0
  for _, x in ipairs(xs) do s = s + x end
  local mean, v = s / n, 0
  for _, x in ipairs(xs) do v = v + (x - mean) ^ 2 end
  return mean, n > 1 and math.sqrt(v / (n - 1)) or 0
end
local head = { "| method |" }
local rule = { "|---|" }
for _, task in ipairs(tasks) do
  head[#head + 1] = string.format(" %s %s | wall s |", TASK_NAME[task],
    task == "mnist_autoencoder" and "test loss" or "test error %")
  rule[#rule + 1] = "---|---|"
end
local lines = {
  string.format("Budget: %d epoch(s) on %d training samples, %d feedback pre-training epoch(s) for trained feedback, seeds %s; mean ± std over seeds at the best validation epoch.",
    p.epochs, p.n_train, p.epochs_fb, table.concat(seeds, ", ")), "",
  table.concat(head), table.concat(rule) }
for _, mk in ipairs(methods) do
  local row = { "| " .. METHOD[mk][3] .. " |" }
  for _, task in ipairs(tasks) do
    local xs, ws = {}, {}
    for _, seed in ipairs(seeds) do
      local r = find(task, mk, seed)
      if r then
        xs[#xs + 1] = task == "mnist_autoencoder" and r.loss or 100 * r.error
        ws[#ws + 1] = r.wall
      end
    end
    if #xs > 0 then
      local m, sd = stats(xs)
      local fmt = task == "mnist_autoencoder" and "%.4f ± %.4f" or "%.2f ± %.2f"
      local cell = string.format(fmt, m, sd)
      if #xs < #seeds then
        cell = string.format(task == "mnist_autoencoder" and "%.4f" or "%.2f", m)
        if #xs > 1 then cell = string.format(fmt, m, sd) end
        cell = cell .. string.format(" (%d seed%s)", #xs, #xs > 1 and "s" or "")
      end
      row[#row + 1] = string.format(" %s | %.0f |", cell, (stats(ws)))
    else
      row[#row + 1] = " — | — |"
    end
  end
  lines[#lines + 1] = table.concat(row)
end
local text = table.concat(lines, "\n") .. "\n"
io.write("\n", text)
local f = assert(io.open(p.out .. "/table1.md.tmp", "w"))
f:write(text)
f:close()
assert(os.rename(p.out .. "/table1.md.tmp", p.out .. "/table1.md"))
