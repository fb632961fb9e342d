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
  -- standardised as they are loaded (no second copy of the 376 MB of training images)
  normalize = check_normalize(name, normalize)
  local opts = normalize and { standardize = { normalize[1], normalize[2] } } or nil
  local train_all = apical.dataset.idx(files[1], files[2], 10, opts)
  local test = apical.dataset.idx(files[3], files[4], 10, opts)
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

-- Student-teacher regression: a seeded random teacher network bigger than the student, the
-- targets its outputs. Two variants (o.variant):
--   "reference" (the default): the PyTorch reference's task of Fig. 3 — inputs uniform in
--     [-1, 1]^15, a 15-1000-1000-1000-1000-5 teacher with ReLU hidden layers and a linear output,
--     xavier_normal weights with gain 3 and zero biases; the targets have a variance of about 72
--     (each ReLU layer multiplies the variance by about gain^2 / 2), so the MSE of a fresh
--     student starts near 72;
--   "small": the earlier, cheaper task — inputs N(0, 1), a 15-20-20-5 tanh teacher with gain 1 and
--     small biases N(0, 0.1^2) (a fresh student's MSE about 0.5); used by the tests and the quick
--     examples.
-- Options (each overrides the variant's value): n_in, n_out, teacher_hidden (list), teacher_activation
-- ("relu", "tanh", ...), gain, bias_std (0: zero biases), input ("uniform": U[-1, 1]; "normal":
-- N(0, 1)), n_train, n_valid, n_test (the split, in this order of the generated samples: 5000 /
-- 1000 / 1000), seed (42; the trainer passes its own seed).
local ST_VARIANTS = {
  reference = { teacher_hidden = { 1000, 1000, 1000, 1000 }, teacher_activation = "relu", gain = 3,
    bias_std = 0, input = "uniform" },
  small = { teacher_hidden = { 20, 20 }, teacher_activation = "tanh", gain = 1, bias_std = 0.1,
    input = "normal" },
}
-- the least value of each count
local ST_LEAST = { n_in = 1, n_out = 1, n_train = 1, n_valid = 1, n_test = 0, seed = 0 }
local ST_OPTS = { variant = true, n_in = true, n_out = true, teacher_hidden = true,
  teacher_activation = true, gain = true, bias_std = true, input = true, n_train = true,
  n_valid = true, n_test = true, seed = true }
M.student_teacher_variants = ST_VARIANTS

local function st_options(o)
  local what = "dfc.tasks.student_teacher"
  for k in pairs(o) do
    if not ST_OPTS[k] then
      local names = {}
      for n in pairs(ST_OPTS) do names[#names + 1] = n end
      table.sort(names)
      error(string.format("%s: unknown option %q (options: %s)", what, tostring(k), table.concat(names, ", ")), 0)
    end
  end
  local variant = o.variant or "reference"
  local v = ST_VARIANTS[variant]
  if not v then
    error(string.format("%s: variant = %q, must be \"reference\" or \"small\"", what, tostring(variant)), 0)
  end
  local c = { variant = variant, n_in = 15, n_out = 5, n_train = 5000, n_valid = 1000, n_test = 1000, seed = 42 }
  for k, x in pairs(v) do c[k] = x end
  for k, x in pairs(o) do c[k] = x end
  -- the counts: integers with a least value each (errors read as the option was given)
  for _, k in ipairs { "n_in", "n_out", "n_train", "n_valid", "n_test", "seed" } do
    local x, least = c[k], ST_LEAST[k]
    if not (type(x) == "number" and x % 1 == 0 and x >= least and x < 2 ^ 31) then
      error(string.format("task_opts.%s = %s must be an integer >= %d", k, tostring(x), least), 0)
    end
  end
  if type(c.teacher_hidden) == "table" then
    for i, h in ipairs(c.teacher_hidden) do
      if not (type(h) == "number" and h >= 1 and h % 1 == 0) then
        error(string.format("task_opts.teacher_hidden[%d] = %s must be a positive integer", i, tostring(h)), 0)
      end
    end
  end
  if type(c.gain) ~= "number" or not (c.gain > 0) then
    error(string.format("%s: gain = %s, must be a number > 0", what, tostring(c.gain)), 0)
  end
  if type(c.bias_std) ~= "number" or not (c.bias_std >= 0) then
    error(string.format("%s: bias_std = %s, must be a number >= 0", what, tostring(c.bias_std)), 0)
  end
  if c.input ~= "uniform" and c.input ~= "normal" then
    error(string.format("%s: input = %s, must be \"uniform\" or \"normal\"", what, tostring(c.input)), 0)
  end
  if type(c.teacher_hidden) ~= "table" then
    error(string.format("%s: teacher_hidden must be a list of layer sizes", what), 0)
  end
  return c
end

-- The teacher's outputs for X, TEACHER_CHUNK rows at a time (the forward pass's buffers of a
-- 1000-wide teacher stay small).
local TEACHER_CHUNK = 500
local function teacher_outputs(dfc, teacher, X, n_out)
  local n = X.shape[1]
  local Y = apical.zeros { n, n_out }
  local first = 1
  while first <= n do
    local cnt = math.min(TEACHER_CHUNK, n - first + 1)
    local out = apical.zeros { cnt, n_out }
    dfc.forward { model = teacher.model, x = X:rows(first, cnt), out = out }
    for k = 1, #out do Y[(first - 1) * n_out + k] = out[k] end
    first = first + cnt
  end
  return Y
end

function M.student_teacher(dfc, o)
  local c = st_options(o or {})
  local n = c.n_train + c.n_valid + c.n_test
  local sizes = { c.n_in }
  for _, h in ipairs(c.teacher_hidden) do sizes[#sizes + 1] = h end
  sizes[#sizes + 1] = c.n_out
  local teacher = dfc.network { sizes = sizes, batch = 1, seed = c.seed + 7919, init = "xavier_normal",
    activation = c.teacher_activation, output_activation = "linear" }
  local rng = rng(c.seed)
  for i = 1, teacher.L do
    if c.gain ~= 1 then
      local w = teacher.W[i]:weights()
      for k = 1, #w do w[k] = c.gain * w[k] end
      teacher.W[i]:set_weights(w)
    end
    local b = teacher.W[i]:bias()
    for k = 1, #b do b[k] = c.bias_std > 0 and c.bias_std * rng:normal() or 0 end
    teacher.W[i]:set_bias(b)
  end
  local X = apical.zeros { n, c.n_in }
  if c.input == "uniform" then
    for k = 1, #X do X[k] = 2 * rng:uniform() - 1 end
  else
    for k = 1, #X do X[k] = rng:normal() end
  end
  local Y = teacher_outputs(dfc, teacher, X, c.n_out)
  local all = apical.dataset.arrays { inputs = X, targets = Y }
  local train, rest = all:split(c.n_train)
  local valid, test = rest:split(c.n_valid)
  return { train = train, valid = valid, test = test, loss = "mse", n_in = c.n_in, n_out = c.n_out,
    name = "student-teacher", teacher = teacher, variant = c.variant, options = c }
end

-- ---- a user's own data ------------------------------------------------------------------------

-- The options each task takes in task_opts (any other key is an error: train.lua).
M.options = {
  student_teacher = { "variant", "n_in", "n_out", "teacher_hidden", "teacher_activation", "gain",
    "bias_std", "input", "n_train", "n_valid", "n_test", "seed" },
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
