-- apical.plot — pictures with gnuplot: line plots from CSV files, the standard pictures of a
-- training run directory, and the `apical plot` command. Every PNG is written next to the
-- CSV data it shows (a temporary file, then a rename), so the numbers stay with the picture.
local M = {}

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

-- No string a user gave (a directory, a file or run name, a column) reaches gnuplot's parser
-- in a form it could act on: the data are copied into the script as numbers (datablocks), the
-- picture is written to a temporary file of a fixed shape and then copied next to its CSV, and
-- titles are single-quoted strings, in which gnuplot substitutes neither `command` nor @macro.
-- Line breaks (which would end the string and the command) are shown as spaces.
local function gp_string(s)
  return "'" .. tostring(s):gsub("[%c]", " "):gsub("'", "''") .. "'"
end

-- The picture size "W,H" (pixels) and a line style, checked: they are written into the script.
local function size_of(size, default)
  size = size or default
  if type(size) ~= "string" or not size:match("^%d+,%d+$") then
    error(string.format("plot: size must be \"WIDTH,HEIGHT\" in pixels, got %s", tostring(size)), 0)
  end
  return size
end

local STYLES = { lines = true, linespoints = true, points = true, dots = true, steps = true,
  impulses = true }
-- a style: one of STYLES, then optionally dash type, point type and point size as numbers
-- ("lines dt 2", "points pt 7 ps 0.5")
local function style_of(style)
  style = style or "linespoints"
  local base, rest = tostring(style):match("^(%a+)(.*)$")
  if type(style) == "string" and base and STYLES[base] then
    rest = rest:gsub(" dt %d+", "", 1):gsub(" pt %d+", "", 1):gsub(" ps %d+%.?%d*", "", 1)
    if rest == "" then return style end
  end
  error(string.format("plot: style %q is not one of lines, linespoints, points, dots, steps, impulses " ..
    "(optionally with dt N, pt N, ps X)", tostring(style)), 0)
end

-- The fields of one CSV line, empty ones included.
local function fields(line)
  local out = {}
  for v in (line .. ","):gmatch("([^,]*),") do out[#out + 1] = v end
  return out
end

local function finite(x)
  return x ~= nil and x == x and math.abs(x) < math.huge
end

-- A datablock holding columns `x` and `y` (1-based indices) of a CSV file as numbers; a field
-- that is not a finite number becomes NaN (a gap in the line). Returns the text and whether
-- any y value is finite.
local function datablock(name, csv, x, y)
  local rows, any, first = { name .. " << EOD" }, false, true
  for line in io.lines(csv) do
    if not first then
      local f = fields(line)
      local xv, yv = tonumber(f[x]), tonumber(f[y])
      any = any or (finite(xv) and finite(yv))
      rows[#rows + 1] = string.format("%s %s", finite(xv) and string.format("%.17g", xv) or "NaN",
        finite(yv) and string.format("%.17g", yv) or "NaN")
    end
    first = false
  end
  rows[#rows + 1] = "EOD"
  return table.concat(rows, "\n"), any
end

local function read_all(path)
  local f = io.open(path, "rb")
  if not f then return nil end
  local s = f:read("a")
  f:close()
  return s
end

-- Runs a gnuplot script (the `set terminal` line, then the body): gnuplot writes a private
-- temporary file (os.tmpname), whose bytes are then written to a temporary file next to `out` and renamed.
local function gnuplot(terminal, body, out)
  local tmp = os.tmpname()
  if not tmp:match("^[%w/_.-]+$") then
    os.remove(tmp)
    error("plot: unexpected temporary file name " .. tmp, 0)
  end
  local script = terminal .. "\nset output " .. gp_string(tmp) .. "\n" .. body
  -- the command is a constant: nothing in it comes from the user
  local gp = io.popen("gnuplot 2>&1 > /dev/null", "w")
  if not gp then
    os.remove(tmp)
    error("plot: cannot start gnuplot (install gnuplot-nox)", 0)
  end
  gp:write(script)
  local ok, _, code = gp:close()
  local png = read_all(tmp)
  os.remove(tmp)
  if not ok or not png or #png == 0 then
    if code == 127 then error("plot: gnuplot is not installed (install gnuplot-nox)", 0) end
    error(string.format("plot: gnuplot failed drawing %s (exit %s)", out, tostring(code)), 0)
  end
  local part = out .. ".tmp.png"
  local f, err = io.open(part, "wb")
  if not f then error("plot: cannot write " .. part .. ": " .. tostring(err), 0) end
  f:write(png)
  if not f:close() then
    os.remove(part)
    error("plot: cannot write " .. part, 0)
  end
  local moved, merr = os.rename(part, out)
  if not moved then
    os.remove(part)
    error("plot: cannot rename " .. part .. " to " .. out .. ": " .. tostring(merr), 0)
  end
  return out
end

-- Whether column `name` of a CSV file holds at least one finite number.
function M.has_data(csv, name)
  local k = M.columns(csv)[name]
  if not k then return false end
  local first = true
  for line in io.lines(csv) do
    if not first and finite(tonumber(fields(line)[k])) then return true end
    first = false
  end
  return false
end

-- The gnuplot `plot` clauses of a list of series, each drawing a datablock appended to `blocks`;
-- the second result says whether any series has a finite value.
local function plot_clauses(series, blocks)
  local parts, any = {}, false
  for _, s in ipairs(series) do
    local cols = M.columns(s.file)
    local x, y = cols[s.x], cols[s.y]
    if not x then error(string.format("plot: %s has no column %q", s.file, s.x), 0) end
    if not y then error(string.format("plot: %s has no column %q", s.file, s.y), 0) end
    local name = "$d" .. (#blocks + 1)
    local text, finite_y = datablock(name, s.file, x, y)
    blocks[#blocks + 1] = text
    any = any or finite_y
    parts[#parts + 1] = string.format("%s using 1:2 with %s lw 2 title %s", name, style_of(s.style),
      gp_string(s.title or s.y))
  end
  return parts, any
end

local function no_finite_values(series)
  local names = {}
  for _, s in ipairs(series) do names[#names + 1] = s.y end
  return string.format("plot: %s has no finite values in column%s %s (did the training diverge?)",
    series[1].file, #names > 1 and "s" or "", table.concat(names, ", "))
end

-- Draws one PNG: o.out, o.title, o.xlabel, o.ylabel, o.logy, o.size ("900,560"), and
-- o.series = { { file = csv, x = column name, y = column name, title = , style = "lines" } }.
function M.lines(o)
  assert(type(o.out) == "string", "plot.lines: out (a .png path) is required")
  assert(type(o.series) == "table" and #o.series > 0, "plot.lines: series is required")
  local blocks = {}
  local parts, any = plot_clauses(o.series, blocks)
  if not any then error(no_finite_values(o.series), 0) end
  local body = table.concat({
    table.concat(blocks, "\n"),
    "set datafile missing 'NaN'",
    #o.series > 3 and "set key outside right top" or "set key inside top right",
    "set grid",
    o.title and ("set title " .. gp_string(o.title)) or "",
    o.xlabel and ("set xlabel " .. gp_string(o.xlabel)) or "",
    o.ylabel and ("set ylabel " .. gp_string(o.ylabel)) or "",
    o.logy and "set logscale y" or "",
    "plot " .. table.concat(parts, ", \\\n     "),
  }, "\n") .. "\n"
  return gnuplot(string.format("set terminal pngcairo size %s enhanced font 'sans,11'", size_of(o.size, "900,560")),
    body, o.out)
end

-- Several line plots in one PNG (gnuplot's multiplot): o.out, o.title, o.layout ({ rows,
-- columns }), o.size, o.panels = { { title =, xlabel =, ylabel =, logy =, series = (as for
-- M.lines) }, ... }. Every panel shares one legend placement (inside, top right).
function M.panels(o)
  assert(type(o.out) == "string", "plot.panels: out (a .png path) is required")
  assert(type(o.panels) == "table" and #o.panels > 0, "plot.panels: panels is required")
  local rows, cols = o.layout and o.layout[1] or #o.panels, o.layout and o.layout[2] or 1
  if math.type(rows) ~= "integer" or math.type(cols) ~= "integer" or rows < 1 or cols < 1 then
    error("plot: layout must be { rows, columns } of positive integers", 0)
  end
  local blocks, lines = {}, {
    string.format("set multiplot layout %d,%d%s", rows, cols, o.title and (" title " .. gp_string(o.title)) or ""),
    "set grid", "set key inside top right font ',8'",
  }
  for _, pnl in ipairs(o.panels) do
    lines[#lines + 1] = "set title " .. gp_string(pnl.title or "")
    lines[#lines + 1] = "set xlabel " .. gp_string(pnl.xlabel or "")
    lines[#lines + 1] = "set ylabel " .. gp_string(pnl.ylabel or "")
    lines[#lines + 1] = pnl.logy and "set logscale y" or "unset logscale y"
    -- series without a finite value are left out; a panel left empty says so
    local series = {}
    for _, sr in ipairs(pnl.series) do
      if M.has_data(sr.file, sr.y) then series[#series + 1] = sr end
    end
    if #series > 0 then
      lines[#lines + 1] = "plot " .. table.concat((plot_clauses(series, blocks)), ", \\\n     ")
    else
      lines[#lines + 1] = "set label 1 'no data' at graph 0.5, 0.5 center"
      lines[#lines + 1] = "plot [0:1] [0:1] NaN notitle"
      lines[#lines + 1] = "unset label 1"
    end
  end
  lines[#lines + 1] = "unset multiplot"
  local body = table.concat(blocks, "\n") .. "\nset datafile missing 'NaN'\n" .. table.concat(lines, "\n") .. "\n"
  return gnuplot(string.format("set terminal pngcairo size %s enhanced font 'sans,10'",
    size_of(o.size, string.format("%d,%d", cols * 520, rows * 380))), body, o.out)
end

-- Panels for the CSV files that plugins' trainers write into run directories, registered by the
-- plugins' Lua halves (the DFC plugin: measures.csv, plugins/dfc/lua/dfc/measures.lua):
-- file name -> { x = column, layout = { rows, columns }, panels = { { column, title }, ... } }.
local panel_files, panel_order = {}, {}

-- register_panels("measures.csv", spec): a run directory's file of that name is drawn as
-- <name>.png (one panel per entry, titled "A: ...", "B: ...", one series per run), and several
-- run directories that all have it as compare-<name>.png.
function M.register_panels(file, spec)
  assert(type(file) == "string" and file:match("^[%w_%-]+%.csv$"), "plot.register_panels: a CSV file name")
  assert(type(spec) == "table" and type(spec.panels) == "table" and #spec.panels > 0 and
    type(spec.x) == "string", "plot.register_panels: spec = { x =, layout =, panels = }")
  if not panel_files[file] then panel_order[#panel_order + 1] = file end
  panel_files[file] = spec
end

-- The apical plot command runs without a model file, so no plugin is loaded: it loads the
-- plugins in the search path once (their Lua halves register their panels). One that fails to
-- load is skipped: its files are then not drawn.
local plugins_loaded = false
local function load_plugins()
  if plugins_loaded then return end
  plugins_loaded = true
  local ok, core = pcall(require, "apical.core")
  if not ok or not core.plugin_names then return end
  local apical = require "apical"
  for _, name in ipairs(core.plugin_names()) do pcall(apical.plugin, name) end
end

-- The registered panel files present in every one of `dirs`.
local function panel_files_in(dirs)
  local found = {}
  for _, file in ipairs(panel_order) do
    local all = true
    for _, d in ipairs(dirs) do all = all and exists(d .. "/" .. file) end
    if all then found[#found + 1] = file end
  end
  return found
end

-- The panels of registered file `file` for `runs` = { { dir =, title = }, ... }.
function M.file_panels(file, runs, out, title)
  local spec = assert(panel_files[file], "plot.file_panels: no panels registered for " .. file)
  local panels = {}
  for k, sp in ipairs(spec.panels) do
    local series = {}
    for _, r in ipairs(runs) do
      series[#series + 1] = { file = r.dir .. "/" .. file, x = spec.x, y = sp[1], title = r.title,
        style = "lines" }
    end
    panels[k] = { title = string.char(64 + k) .. ": " .. sp[2], xlabel = spec.x, series = series }
  end
  return M.panels { out = out, title = title, layout = spec.layout, panels = panels }
end

-- The panels of dfc.train's measures.csv (kept for scripts that called it before the panels
-- moved into the plugin): needs the DFC plugin loaded, which registers them.
function M.measures(runs, out, title)
  return M.file_panels("measures.csv", runs, out, title)
end

-- A headerless numeric CSV matrix drawn as a grey-scale image (row 1 at the top): o.file,
-- o.out, o.title, o.size, o.cbrange ({ lo, hi }: the grey scale; values outside are clipped).
function M.image(o)
  assert(type(o.out) == "string", "plot.image: out (a .png path) is required")
  if not exists(o.file) then error("plot: cannot read " .. tostring(o.file), 0) end
  -- the matrix as a datablock of numbers (a field that is not a number shows as NaN)
  local rows = { "$m << EOD" }
  for line in io.lines(o.file) do
    local f = fields(line)
    for k, v in ipairs(f) do
      local x = tonumber(v)
      f[k] = finite(x) and string.format("%.17g", x) or "NaN"
    end
    rows[#rows + 1] = table.concat(f, " ")
  end
  rows[#rows + 1] = "EOD"
  local body = table.concat({
    table.concat(rows, "\n"),
    "set palette grey",
    o.cbrange and string.format("set cbrange [%.17g:%.17g]", o.cbrange[1], o.cbrange[2]) or "",
    "unset colorbox", "unset xtics", "unset ytics", "unset border",
    "set yrange [] reverse",
    "set size ratio -1",
    o.title and ("set title " .. gp_string(o.title)) or "",
    "plot $m matrix with image notitle",
  }, "\n") .. "\n"
  return gnuplot(string.format("set terminal pngcairo size %s enhanced font 'sans,11'", size_of(o.size, "900,280")),
    body, o.out)
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
  for _, file in ipairs(panel_files_in { dir }) do
    local base = file:gsub("%.csv$", "")
    out[#out + 1] = M.file_panels(file, { { dir = dir, title = name } }, dir .. "/" .. base .. ".png",
      name .. ": " .. base)
  end
  if exists(dir .. "/reconstructions.csv") then
    -- the grey scale of the inputs (the top half) for both rows
    local rows = {}
    for line in io.lines(dir .. "/reconstructions.csv") do rows[#rows + 1] = line end
    local lo, hi = math.huge, -math.huge
    for k = 1, #rows // 2 do
      for v in rows[k]:gmatch("[^,]+") do
        local x = tonumber(v)
        if x then lo, hi = math.min(lo, x), math.max(hi, x) end
      end
    end
    out[#out + 1] = M.image { file = dir .. "/reconstructions.csv", out = dir .. "/reconstructions.png",
      title = name .. ": test inputs (top), reconstructions (bottom)",
      cbrange = hi > lo and { lo, hi } or nil }
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
  local runs = {}
  for _, d in ipairs(dirs) do runs[#runs + 1] = { dir = d, title = run_name(d) } end
  for _, file in ipairs(panel_files_in(dirs)) do
    local base = file:gsub("%.csv$", "")
    written[#written + 1] = M.file_panels(file, runs, out_dir .. "/compare-" .. base .. ".png", base)
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
      if not out then require("apical.errors").usage("plot: --out needs a directory") end
      i = i + 2
    elseif args[i]:sub(1, 1) == "-" then
      require("apical.errors").usage(string.format("plot: unknown option %s (apical plot --help " ..
        "for the options)", args[i]))
    else
      dirs[#dirs + 1] = args[i]
      i = i + 1
    end
  end
  if #dirs == 0 then
    -- a usage error: the apical program exits with 2, as for its other usage errors
    require("apical.errors").usage("plot: usage: apical plot RUN_DIR [RUN_DIR ...] [--out DIR]")
  end
  -- the plugins that describe the files of their run directories (none is loaded yet)
  load_plugins()
  for _, d in ipairs(dirs) do
    for _, f in ipairs(M.run_dir(d)) do print(f) end
  end
  if #dirs > 1 then
    out = out or "."
    for _, f in ipairs(M.compare(dirs, out)) do print(f) end
  end
end

return M
