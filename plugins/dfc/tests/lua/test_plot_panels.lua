-- test_plot_panels.lua — the pictures of dfc.train's measures.csv come from the plugin: the
-- generic apical.plot knows no measure by name until the DFC plugin's Lua half registers its
-- panels (plugins/dfc/lua/dfc/measures.lua, the six of the paper's Fig. 3); then a run
-- directory with a measures.csv gets measures.png, and several get compare-measures.png.
local plot = require "apical.plot"

local n_ok = 0
local function check(cond, msg)
  if not cond then error(msg, 2) end
  n_ok = n_ok + 1
end

-- before the plugin is loaded: no panels for measures.csv
local ok, err = pcall(plot.file_panels, "measures.csv", {}, "x.png", "t")
check(not ok and tostring(err):find("no panels registered for measures.csv", 1, true),
  "apical.plot alone draws no measures: " .. tostring(err))

local apical = require "apical"
local measures = require "apical.plugins.dfc.measures"
apical.plugin "dfc"

check(type(measures.PANELS) == "table" and #measures.PANELS.panels == 6, "six panels")

local dir = os.tmpname()
os.remove(dir)
assert(os.execute("mkdir -p '" .. dir .. "/a' '" .. dir .. "/b'"))
local function write(path, text)
  local f = assert(io.open(path, "w"))
  f:write(text)
  f:close()
end
local header = "epoch,train_loss,valid_loss,valid_error,test_loss,test_error\n"
local mheader = { "iteration" }
for _, p in ipairs(measures.PANELS.panels) do mheader[#mheader + 1] = p[1] end
for _, run in ipairs { "a", "b" } do
  write(dir .. "/" .. run .. "/log.csv", header .. "0,1.0,1.0,0,1.1,0\n1,0.2,0.25,0,0.26,0\n")
  local rows = { table.concat(mheader, ",") }
  for it = 1, 3 do
    local r = { it }
    for k = 2, #mheader do r[k] = string.format("%g", 0.1 * it + k) end
    rows[#rows + 1] = table.concat(r, ",")
  end
  write(dir .. "/" .. run .. "/measures.csv", table.concat(rows, "\n") .. "\n")
end

local function is_png(path)
  local f = io.open(path, "rb")
  if not f then return false end
  local sig = f:read(8)
  f:close()
  return sig == "\137PNG\r\n\26\n"
end

local a = plot.run_dir(dir .. "/a")
check(#a == 2 and a[2] == dir .. "/a/measures.png" and is_png(a[2]), "run_dir: measures.png")
local c = plot.compare({ dir .. "/a", dir .. "/b" }, dir)
check(c[#c] == dir .. "/compare-measures.png" and is_png(c[#c]), "compare: compare-measures.png")
os.execute("rm -rf '" .. dir .. "'")
print(string.format("%d passed, 0 failed", n_ok))
