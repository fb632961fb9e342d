-- apical.plugins.dfc.tasks — the tasks of the paper: the student-teacher regression (a seeded
-- random teacher network bigger than the student), MNIST and Fashion-MNIST classification and
-- the MNIST autoencoder. Each returns { train, valid, test, loss, n_in, n_out, name }.
local apical = require "apical"

local M = {}

-- A small seeded generator (splitmix64) with Box-Muller normals, so that the generated task
-- is the same on every machine and does not touch math.random's state.
local Rng = {}
Rng.__index = Rng
local function rng(seed)
  return setmetatable({ s = seed * 2654435761 + 1, spare = nil }, Rng)
end
function Rng:uniform()
  self.s = self.s + 0x9E3779B97F4A7C15
  local z = self.s
  z = (z ~ (z >> 30)) * 0xBF58476D1CE4E5B9
  z = (z ~ (z >> 27)) * 0x94D049BB133111EB
  z = z ~ (z >> 31)
  return ((z >> 11) + 0.5) / 9007199254740992.0 -- (0, 1)
end
function Rng:normal()
  if self.spare then
    local v = self.spare
    self.spare = nil
    return v
  end
  local u, v = self:uniform(), self:uniform()
  local r = math.sqrt(-2 * math.log(u))
  self.spare = r * math.sin(2 * math.pi * v)
  return r * math.cos(2 * math.pi * v)
end
M.rng = rng

-- The data directory: $APICAL_DATA, else data/ (scripts/get-data.sh fills it).
function M.data_dir()
  return os.getenv("APICAL_DATA") or "data"
end

local function exists(path)
  local f = io.open(path, "rb")
  if f then f:close() return true end
  return false
end

local function find_idx(dir, base)
  for _, p in ipairs { dir .. "/" .. base, dir .. "/" .. base .. ".gz" } do
    if exists(p) then return p end
  end
  return nil
end

-- The reference trainer standardises MNIST pixels with the dataset's usual statistics,
-- (x / 255 - 0.1307) / 0.3081, for classification and the autoencoder alike (inputs and hence
-- targets), and feeds Fashion-MNIST as x / 255.
M.MNIST_MEAN, M.MNIST_STD = 0.1307, 0.3081

-- normalize: nil or false (pixels / 255) or { mean, std }.
local function check_normalize(name, v)
  if v == nil or v == false then return nil end
  if type(v) ~= "table" or type(v[1]) ~= "number" or type(v[2]) ~= "number" or not (v[2] > 0) then
    error(string.format("%s: normalize = %s must be false or { mean, std } with std > 0", name,
      type(v) == "table" and string.format("{ %s, %s }", tostring(v[1]), tostring(v[2])) or tostring(v)), 0)
  end
  return v
end

local function idx_task(name, dir, n_train, autoencoder, normalize)
  local files = {}
  for _, b in ipairs { "train-images-idx3-ubyte", "train-labels-idx1-ubyte", "t10k-images-idx3-ubyte",
    "t10k-labels-idx1-ubyte" } do
    local p = find_idx(dir, b)
    if not p then
      error(string.format("%s: %s not found in %s; run scripts/get-data.sh (or set APICAL_DATA)", name, b, dir), 0)
    end
    files[#files + 1] = p
  end
  local train_all = apical.dataset.idx(files[1], files[2], 10)
  local test = apical.dataset.idx(files[3], files[4], 10)
  normalize = check_normalize(name, normalize)
  if normalize then
    train_all = train_all:standardize(normalize[1], normalize[2])
    test = test:standardize(normalize[1], normalize[2])
  end
  -- the reference's split: the first 55,000 images train, the last 5,000 validate; a smaller
  -- n_train keeps the same validation set and trains on the first n_train images
  local train, valid = train_all:split(math.max(n_train, 55000))
  if n_train < 55000 then train = train:subset(1, n_train) end
  if autoencoder then
    -- targets are the inputs themselves
    local function ae(ds) return apical.dataset.arrays { inputs = ds:inputs(), targets = ds:inputs() } end
    return { train = ae(train), valid = ae(valid), test = ae(test), loss = "mse", n_in = 784, n_out = 784, name = name,
      image = { 28, 28 }, normalize = normalize }
  end
  return { train = train, valid = valid, test = test, loss = "ce", n_in = 784, n_out = 10, name = name,
    normalize = normalize }
end

function M.mnist(o)
  o = o or {}
  local norm = o.normalize
  if norm == nil then norm = { M.MNIST_MEAN, M.MNIST_STD } end
  return idx_task("mnist", o.dir or (M.data_dir() .. "/mnist"), o.n_train or 55000, false, norm)
end

function M.fashion_mnist(o)
  o = o or {}
  return idx_task("fashion-mnist", o.dir or (M.data_dir() .. "/fashion-mnist"), o.n_train or 55000, false, o.normalize)
end

function M.mnist_autoencoder(o)
  o = o or {}
  local norm = o.normalize
  if norm == nil then norm = { M.MNIST_MEAN, M.MNIST_STD } end
  return idx_task("mnist-autoencoder", o.dir or (M.data_dir() .. "/mnist"), o.n_train or 55000, true, norm)
end

-- Student-teacher regression: inputs x ~ N(0, 1) (seeded), targets the output of a random
-- teacher network (tanh hidden layers, linear output) bigger than the student.
-- The least value of each count of task_opts (integers): errors read as the option was given.
local st_counts = { n_in = 1, n_out = 1, n_train = 1, n_valid = 1, n_test = 0, seed = 0 }

function M.student_teacher(dfc, o)
  o = o or {}
  for k, least in pairs(st_counts) do
    local v = o[k]
    if v ~= nil and not (type(v) == "number" and v >= least and v % 1 == 0 and v < 2 ^ 31) then
      error(string.format("task_opts.%s = %s must be an integer >= %d", k, tostring(v), least), 0)
    end
  end
  for i, h in ipairs(o.teacher_hidden or {}) do
    if not (type(h) == "number" and h >= 1 and h % 1 == 0) then
      error(string.format("task_opts.teacher_hidden[%d] = %s must be a positive integer", i, tostring(h)), 0)
    end
  end
  local n_in, n_out = o.n_in or 15, o.n_out or 5
  local hidden = o.teacher_hidden or { 20, 20 }
  local n_train, n_valid, n_test = o.n_train or 5000, o.n_valid or 1000, o.n_test or 1000
  local seed = o.seed or 42
  local n = n_train + n_valid + n_test
  local sizes = { n_in }
  for _, h in ipairs(hidden) do sizes[#sizes + 1] = h end
  sizes[#sizes + 1] = n_out
  local teacher = dfc.network { sizes = sizes, batch = n, seed = seed + 7919, init = "xavier_normal" }
  -- the teacher's biases: small, seeded
  local rng = rng(seed)
  for i = 1, teacher.L do
    local b = teacher.W[i]:bias()
    for k = 1, #b do b[k] = 0.1 * rng:normal() end
    teacher.W[i]:set_bias(b)
  end
  local X = apical.zeros { n, n_in }
  for k = 1, #X do X[k] = rng:normal() end
  local Y = apical.zeros { n, n_out }
  dfc.forward { model = teacher.model, x = X, out = Y }
  local all = apical.dataset.arrays { inputs = X, targets = Y }
  local train, rest = all:split(n_train)
  local valid, test = rest:split(n_valid)
  return { train = train, valid = valid, test = test, loss = "mse", n_in = n_in, n_out = n_out,
    name = "student-teacher", teacher = teacher }
end

-- ---- a user's own data ------------------------------------------------------------------------

-- The options each task takes in task_opts (any other key is an error: train.lua).
M.options = {
  student_teacher = { "n_in", "n_out", "teacher_hidden", "n_train", "n_valid", "n_test", "seed" },
  mnist = { "dir", "n_train", "normalize" },
  fashion_mnist = { "dir", "n_train", "normalize" },
  mnist_autoencoder = { "dir", "n_train", "normalize" },
  dataset = { "loss", "valid", "valid_split", "test", "name" },
}

-- True for an apical dataset (apical.dataset.arrays, apical.dataset.idx, ds:split, ...).
function M.is_dataset(v)
  local mt = getmetatable(v)
  return type(v) == "userdata" and type(mt) == "table" and mt.__name == "apical.Dataset"
end

local function has_labels(ds)
  return ds:size() > 0 and select(3, ds:sample(1)) ~= nil
end

-- The task of a user's dataset `ds` (task = ds in dfc.train), with task_opts `o`:
--   loss        "mse" (regression) or "ce" (softmax cross-entropy on the labels); default "ce"
--               when the dataset has labels, else "mse"
--   valid       a dataset to validate on (the same input and target sizes), or
--   valid_split the last samples of ds validate: a fraction in (0, 1) or a count >= 1
--               (default 0.1 when valid is not given)
--   test        an optional test dataset (without it, test_loss and test_error are NaN)
--   name        the task's name in the run directory's name and the summary (default "dataset")
-- Errors name the option (the caller raises them at the user's line). Returns the task and
-- the summary of it that the run directory records (numbers and strings only).
function M.from_dataset(ds, o, batch)
  local function bad(fmt, ...) error("task_opts." .. string.format(fmt, ...), 0) end
  local n_in, n_out = ds:input_dim(), ds:target_dim()
  local labelled = has_labels(ds)
  local loss = o.loss
  if loss == nil then loss = labelled and "ce" or "mse" end
  if loss ~= "mse" and loss ~= "ce" then
    bad("loss = %s must be \"mse\" (regression) or \"ce\" (cross-entropy on labels)", tostring(loss))
  end
  if loss == "ce" and not labelled then
    bad("loss = \"ce\" needs a dataset with labels (apical.dataset.arrays { inputs =, labels = } " ..
      "or apical.dataset.idx); this one has targets only")
  end
  local function check_ds(key, d)
    if not M.is_dataset(d) then bad("%s must be an apical dataset, got %s", key, type(d)) end
    if d:input_dim() ~= n_in or d:target_dim() ~= n_out then
      bad("%s has %d inputs and %d targets per sample; the training set has %d and %d", key,
        d:input_dim(), d:target_dim(), n_in, n_out)
    end
    if loss == "ce" and d:size() > 0 and not has_labels(d) then
      bad("%s has no labels; loss = \"ce\" needs them", key)
    end
  end
  local train, valid = ds, nil
  local summary = { loss = loss, inputs = n_in, targets = n_out, name = o.name or "dataset" }
  if o.valid ~= nil and o.valid_split ~= nil then
    bad("valid and valid_split both given: validate on the given set or on a split of the " ..
      "training set, not both")
  end
  if o.valid ~= nil then
    check_ds("valid", o.valid)
    valid = o.valid
  else
    local v = o.valid_split
    if v == nil then v = 0.1 end
    local n = ds:size()
    local count
    if type(v) == "number" and v > 0 and v < 1 then
      count = math.floor(v * n + 0.5)
    elseif math.type(v) == "integer" and v >= 1 or (type(v) == "number" and v >= 1 and v % 1 == 0) then
      count = math.tointeger(v)
    else
      bad("valid_split = %s must be a fraction in (0, 1) or a count of samples >= 1", tostring(v))
    end
    if count < 1 or count >= n then
      bad("valid_split = %s leaves %d of %d samples to validate; it must leave at least one " ..
        "to validate and one to train", tostring(v), count, n)
    end
    train, valid = ds:split(n - count)
    summary.valid_split = v
  end
  if o.test ~= nil then check_ds("test", o.test) end
  if train:size() < batch then
    error(string.format("task: %d training samples, fewer than batch = %d (one minibatch)",
      train:size(), batch), 0)
  end
  if o.name ~= nil and type(o.name) ~= "string" then bad("name must be a string, got %s", type(o.name)) end
  summary.n_train, summary.n_valid, summary.n_test = train:size(), valid:size(), o.test and o.test:size() or 0
  return { train = train, valid = valid, test = o.test, loss = loss, n_in = n_in, n_out = n_out,
    name = summary.name }, summary
end

return M
