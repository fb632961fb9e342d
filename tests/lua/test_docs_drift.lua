-- test_docs_drift.lua — facts the documentation states that the code decides: the plugin ABI
-- apical.abi reports is the one docs/lua-api.md gives; the equations the tests cite are a page
-- of the repository (docs/equations.md), not a document outside it; every source file
-- docs/design.md names (in backquotes) exists, so the architecture page follows renames.
local apical = require "apical"
package.path = (arg[0]:match("^(.*)/") or ".") .. "/?.lua;" .. package.path
local check = require "check"
local root = (arg[0]:match("^(.*)/") or ".") .. "/../.."

local function read(path)
    local f = assert(io.open(root .. "/" .. path, "rb"))
    local s = f:read("a")
    f:close()
    return s
end

local api = read("docs/lua-api.md")
local abi = api:match("| `apical.abi` | the plugin ABI, `\"([%d.]+)\"`")
check.eq(abi, apical.abi, "the ABI docs/lua-api.md gives")
check.truthy(read("docs/equations.md"):find("Algorithm 1", 1, true), "docs/equations.md states Algorithm 1")
for _, f in ipairs { "plugins/dfc/tests/test_dfc_algorithm1.c", "plugins/dfc/tests/test_dfc_sleep.c", "docs/dfc.md" } do
    local s = read(f)
    check.truthy(not s:find("/work/shared", 1, true) and not s:find("shared documents", 1, true), f .. " cites a page outside the repository")
end
check.truthy(not read("docs/dfc.md"):find("GSL's mt19937", 1, true), "docs/dfc.md: the sleep phase's noise is not GSL's")

-- docs/design.md: a bare file name is looked for in the directories the page walks through
local dirs = { "", "engine/src/", "engine/include/", "engine/include/apical/", "lua/", "lua/apical/",
    "cli/", "plugins/dfc/", "plugins/dfc/lua/dfc/", "plugins/dfc/tests/", "tests/unit/", "tests/lua/" }
local function exists(path)
    for _, d in ipairs(dirs) do
        local f = io.open(root .. "/" .. d .. path, "rb")
        if f then
            f:close()
            return true
        end
    end
    return false
end
local written = { ["config.lua"] = true } -- what a run writes, not a source file
local named = 0
for path in read("docs/design.md"):gmatch("`([%w_/%.%-]+%.[chlm][ud]?a?)`") do
    if not written[path] and (path:match("%.c$") or path:match("%.h$") or path:match("%.lua$") or path:match("%.md$")) then
        named = named + 1
        check.truthy(exists(path), "docs/design.md names " .. path .. ", which is not in the tree")
    end
end
check.truthy(named >= 40, "docs/design.md names " .. named .. " files")
check.done("test_docs_drift")
