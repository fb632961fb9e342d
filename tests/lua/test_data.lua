-- test_data.lua — datasets: IDX files (written here), arrays, splits, subsets, samples and the
-- minibatch iterator (shuffling by seed and epoch, short last batches, drop_last).
local apical = require "apical"
package.path = (arg[0]:match("^(.*)/") or ".") .. "/?.lua;" .. package.path
local check = require "check"

-- an IDX file: two zero bytes, type code, ndim, big-endian dims, big-endian data
local function write_idx(path, type_code, dims, values)
    local f = assert(io.open(path, "wb"))
    f:write(string.pack(">I2BB", 0, type_code, #dims))
    for _, d in ipairs(dims) do f:write(string.pack(">I4", d)) end
    for _, v in ipairs(values) do f:write(string.pack("B", v)) end
    f:close()
end

local N = 10
local images, labels = check.tmpname("-images.idx"), check.tmpname("-labels.idx")
local pixels, labs = {}, {}
for i = 0, N - 1 do
    for p = 1, 4 do pixels[#pixels + 1] = (i * 10 + p) % 256 end
    labs[#labs + 1] = i % 3
end
write_idx(images, 0x08, { N, 2, 2 }, pixels)
write_idx(labels, 0x08, { N }, labs)

local ds = apical.dataset.idx(images, labels)
check.eq(ds:size(), N)
check.eq(#ds, N)
check.eq(ds:input_dim(), 4)
check.eq(ds:target_dim(), 3, "classes = largest label + 1")
check.truthy(tostring(ds):find("10 samples", 1, true), "tostring")
local x, y, label = ds:sample(2)
check.shape(x, { 4 })
check.near(x[1], 11 / 255, 1e-15, "pixels scaled to [0, 1]")
check.eq(label, 1)
check.eq(y[2], 1, "one-hot")
check.eq(apical.dataset.idx(images, labels, 5):target_dim(), 5, "explicit classes")

-- splits and subsets are views
local train, valid = ds:split(8)
check.eq(train:size(), 8)
check.eq(valid:size(), 2)
local _, _, l9 = valid:sample(1)
check.eq(l9, 8 % 3)
local sub = ds:subset(3, 4)
check.eq(sub:size(), 4)
local _, _, l3 = sub:sample(1)
check.eq(l3, 2)

-- batches: every sample once per epoch, a zero-padded short last batch
local seen, batches = {}, 0
for X, Y, L, count in ds:batches { batch = 4 } do
    batches = batches + 1
    check.shape(X, { 4, 4 })
    check.shape(Y, { 4, 3 })
    check.eq(#L, count)
    for r = 1, count do seen[#seen + 1] = L[r] end
    if batches == 3 then
        check.eq(count, 2, "short last batch")
        check.eq(X:at(4, 1), 0, "padding")
    end
end
check.eq(batches, 3)
check.eq(#seen, N)
local dropped = 0
for _, _, _, count in ds:batches { batch = 4, drop_last = true } do dropped = dropped + count end
check.eq(dropped, 8, "drop_last")

-- shuffling depends on (seed, epoch) only
local function order(seed, epoch)
    local o = {}
    for X in ds:batches { batch = 3, shuffle = true, seed = seed, epoch = epoch } do
        for r = 1, 3 do o[#o + 1] = X:at(r, 1) end
    end
    return table.concat(o, ",")
end
check.eq(order(1, 0), order(1, 0), "same seed and epoch")
check.truthy(order(1, 0) ~= order(1, 1) or order(1, 0) ~= order(2, 0), "shuffled differently")

-- datasets from arrays
local da = apical.dataset.arrays { inputs = { { 1, 2 }, { 3, 4 }, { 5, 6 } }, labels = { 0, 1, 1 } }
check.eq(da:size(), 3)
check.eq(da:target_dim(), 2)
local dr = apical.dataset.arrays { inputs = apical.zeros { 3, 2 }, targets = { { 1 }, { 2 }, { 3 } } }
local _, yr, lr = dr:sample(3)
check.eq(yr[1], 3)
check.eq(lr, nil)
for _, _, L in dr:batches { batch = 2 } do check.eq(L, nil, "no labels") end

-- standardised as loaded: bit for bit ds:standardize's values, labels and targets unchanged
do
    local z = apical.dataset.idx(images, labels, nil, { standardize = { 0.1307, 0.3081 } })
    local ref = ds:standardize(0.1307, 0.3081)
    check.eq(z:size(), N)
    local same = true
    for i = 1, N do
        local xz, yz, lz = z:sample(i)
        local xr, yr2, lr2 = ref:sample(i)
        for k = 1, 4 do same = same and xz[k] == xr[k] end
        for k = 1, 3 do same = same and yz[k] == yr2[k] end
        same = same and lz == lr2
    end
    check.truthy(same, "standardize at load equals ds:standardize bitwise")
    check.near(z:sample(2)[1], (11 / 255 - 0.1307) / 0.3081, 1e-15, "hand value")
    check.eq(apical.dataset.idx(images, labels, 3, {}):sample(2)[1], ds:sample(2)[1], "no option: as loaded")
    check.fails(function() apical.dataset.idx(images, labels, nil, { standardize = { 0, 0 } }) end,
        "std = 0 must be finite and > 0")
    check.fails(function() apical.dataset.idx(images, labels, nil, { standardize = { 0 / 0, 1 } }) end,
        "mean = ")
    check.fails(function() apical.dataset.idx(images, labels, nil, { standardize = 0.5 }) end,
        "standardize = 0.5: expected { mean, std }")
    check.fails(function() apical.dataset.idx(images, labels, nil, { normalise = { 0, 1 } }) end,
        "normalise")
    check.fails(function() apical.dataset.idx(images, labels, nil, "z") end, "options: expected a table")
end

-- errors
check.fails(function() apical.dataset.idx("/nonexistent-images", labels) end, "/nonexistent-images")
check.fails(function() apical.dataset.idx(images, labels, 2) end, "outside 0..1")
-- one stray label of 1e8 among 3 samples is refused instead of a one-hot target of 1e8 columns
-- (2.4 GB); labels up to max(samples, 1000) - 1 are inferred; explicit classes are taken as given
do
    local img3, lab3 = check.tmpname("-img3.idx"), check.tmpname("-lab3.idx")
    write_idx(img3, 0x08, { 3, 1 }, { 1, 2, 3 })
    local f = assert(io.open(lab3, "wb"))
    f:write(string.pack(">I2BB>I4>i4>i4>i4", 0, 0x0C, 1, 3, 0, 100000000, 2))
    f:close()
    check.fails(function() apical.dataset.idx(img3, lab3) end,
        "label 100000000 (sample 2) would make 100000001 classes for 3 samples")
    f = assert(io.open(lab3, "wb"))
    f:write(string.pack(">I2BB>I4>i4>i4>i4", 0, 0x0C, 1, 3, 0, 999, 2))
    f:close()
    check.eq(apical.dataset.idx(img3, lab3):target_dim(), 1000, "sparse labels are not renumbered")
    os.remove(img3)
    os.remove(lab3)
end
check.fails(function() ds:split(11) end, "split: 11 is outside 0..10")
check.fails(function() ds:subset(0, 2) end, "subset(0, 2): the dataset has samples 1..10")
check.fails(function() ds:sample(11) end, "sample 11: the dataset has samples 1..10")
check.fails(function() ds:batches { size = 4 } end, 'batches: unknown option "size"')
check.fails(function() ds:batches {} end, "option batch (the number of samples per batch) is required")
check.fails(function() ds:batches { batch = 0 } end, "batch must be a positive integer")
check.fails(function() apical.dataset.arrays { inputs = { { 1 } } } end, "give targets")
check.fails(function() apical.dataset.arrays { inputs = { { 1 } }, labels = { -1 } } end, "label 1 is not an integer >= 0")
check.fails(function() apical.dataset.arrays { inputs = { { 0 / 0 } }, labels = { 0 } } end, "is not finite")
check.fails(function() apical.dataset.arrays { inputs = { { 1 } }, targets = { { 1 } }, extra = 1 } end, "unknown field extra")

check.done("test_data")
