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
function M.student_teacher(dfc, o)
  o = o or {}
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

return M
