-- apical.plot — pictures with gnuplot: line plots from CSV files, the standard pictures of a
-- training run directory, and the `apical plot` command. Every PNG is written next to the
-- CSV data it shows (a temporary file, then a rename), so the numbers stay with the picture.
local M = {}

local function shell_quote(s)
  return "'" .. tostring(s):gsub("'", "'\\''") .. "'"
end

local function exists(path)
  local f = io.open(path, "rb")
  if f then f:close() return true end
  return false
end

-- The columns of a CSV file's header: name -> 1-based index.
function M.columns(csv)
  local f, err = io.open(csv, "r")
  if not f then error("plot: cannot read " .. csv .. ": " .. tostring(err), 0) end
  local header = f:read("l") or ""
  f:close()
  local cols, k = {}, 0
  for name in header:gmatch("[^,]+") do
    k = k + 1
    cols[name] = k
  end
  return cols
end

local function gp_string(s)
  return '"' .. tostring(s):gsub("\\", "\\\\"):gsub('"', '\\"') .. '"'
end

-- Draws one PNG: o.out, o.title, o.xlabel, o.ylabel, o.logy, o.size ("900,560"), and
-- o.series = { { file = csv, x = column name, y = column name, title = , style = "lines" } }.
function M.lines(o)
  assert(type(o.out) == "string", "plot.lines: out (a .png path) is required")
  assert(type(o.series) == "table" and #o.series > 0, "plot.lines: series is required")
  local parts = {}
  for _, s in ipairs(o.series) do
    local cols = M.columns(s.file)
    local x, y = cols[s.x], cols[s.y]
    if not x then error(string.format("plot: %s has no column %q", s.file, s.x), 0) end
    if not y then error(string.format("plot: %s has no column %q", s.file, s.y), 0) end
    parts[#parts + 1] = string.format("%s using %d:%d with %s lw 2 title %s", gp_string(s.file), x, y,
      s.style or "linespoints", gp_string(s.title or s.y))
  end
  local tmp = o.out .. ".tmp.png"
  local script = table.concat({
    string.format("set terminal pngcairo size %s enhanced font 'sans,11'", o.size or "900,560"),
    "set output " .. gp_string(tmp),
    "set datafile separator ','",
    #o.series > 3 and "set key outside right top" or "set key inside top right",
    "set grid",
    o.title and ("set title " .. gp_string(o.title)) or "",
    o.xlabel and ("set xlabel " .. gp_string(o.xlabel)) or "",
    o.ylabel and ("set ylabel " .. gp_string(o.ylabel)) or "",
    o.logy and "set logscale y" or "",
    "plot " .. table.concat(parts, ", \\\n     "),
  }, "\n") .. "\n"
  local gp = io.popen("gnuplot 2>&1 > /dev/null", "w")
  if not gp then error("plot: cannot start gnuplot (install gnuplot-nox)", 0) end
  gp:write(script)
  local ok, _, code = gp:close()
  if not ok or not exists(tmp) then
    os.remove(tmp)
    error(string.format("plot: gnuplot failed drawing %s (exit %s); is gnuplot-nox installed?", o.out,
      tostring(code)), 0)
  end
  assert(os.rename(tmp, o.out))
  return o.out
end

local function run_name(dir)
  return (dir:gsub("/+$", ""):match("([^/]+)$"))
end

-- The standard pictures of one run directory (log.csv): loss.png (train, valid and test loss
-- per epoch, log scale) and, for classification, error.png. Returns the files written.
function M.run_dir(dir)
  local csv = dir .. "/log.csv"
  if not exists(csv) then error("plot: " .. dir .. " has no log.csv (is it a run directory?)", 0) end
  local name = run_name(dir)
  local out = {}
  out[#out + 1] = M.lines { out = dir .. "/loss.png", title = name .. ": loss", xlabel = "epoch",
    ylabel = "loss", logy = true, series = {
      { file = csv, x = "epoch", y = "train_loss", title = "train" },
      { file = csv, x = "epoch", y = "valid_loss", title = "valid" },
      { file = csv, x = "epoch", y = "test_loss", title = "test" } } }
  -- classification runs log an error rate (regression runs log 0)
  local f = assert(io.open(csv))
  f:read("l")
  local first, fields = f:read("l") or "", {}
  f:close()
  for v in first:gmatch("[^,]+") do fields[#fields + 1] = v end
  local cols = M.columns(csv)
  local ve = cols.valid_error and tonumber(fields[cols.valid_error])
  if ve and ve > 0 then
    out[#out + 1] = M.lines { out = dir .. "/error.png", title = name .. ": error", xlabel = "epoch",
      ylabel = "error (fraction)", logy = true, series = {
        { file = csv, x = "epoch", y = "valid_error", title = "valid" },
        { file = csv, x = "epoch", y = "test_error", title = "test" } } }
  end
  return out
end

-- Several runs on one plot per measure, written into out_dir.
function M.compare(dirs, out_dir)
  local written = {}
  for _, measure in ipairs { "train_loss", "test_loss", "test_error" } do
    local series = {}
    for _, d in ipairs(dirs) do
      local csv = d .. "/log.csv"
      if not exists(csv) then error("plot: " .. d .. " has no log.csv", 0) end
      series[#series + 1] = { file = csv, x = "epoch", y = measure, title = run_name(d) }
    end
    written[#written + 1] = M.lines { out = out_dir .. "/compare-" .. measure .. ".png",
      title = measure:gsub("_", " "), xlabel = "epoch", ylabel = measure:gsub("_", " "),
      logy = measure ~= "test_error", series = series }
  end
  return written
end

-- apical plot RUN_DIR [RUN_DIR ...] [--out DIR]
function M.main(...)
  local args, dirs, out = { ... }, {}, nil
  local i = 1
  while i <= #args do
    if args[i] == "--out" then
      out = args[i + 1]
      if not out then error("plot: --out needs a directory", 0) end
      i = i + 2
    else
      dirs[#dirs + 1] = args[i]
      i = i + 1
    end
  end
  if #dirs == 0 then
    error("plot: usage: apical plot RUN_DIR [RUN_DIR ...] [--out DIR]", 0)
  end
  for _, d in ipairs(dirs) do
    for _, f in ipairs(M.run_dir(d)) do print(f) end
  end
  if #dirs > 1 then
    out = out or "."
    for _, f in ipairs(M.compare(dirs, out)) do print(f) end
  end
end

return M
