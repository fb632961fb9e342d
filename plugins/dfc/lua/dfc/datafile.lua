-- apical.plugins.dfc.datafile — reads the Lua-literal files of a run directory (config.lua,
-- checkpoint/state.lua) as DATA: nothing in them is executed. The accepted subset is what
-- rundir.serialize writes:
--   file   := comment* "return" value
--   value  := table | string | number | "true" | "false"
--   table  := "{" [ field { "," field } [","] ] "}"
--   field  := "[" (string | number) "]" "=" value
--   number := a decimal or hexadecimal numeral with an optional sign, or "1/0", "-1/0", "0/0"
--             (infinities and NaN, as serialize writes them)
--   string := a double- or single-quoted Lua string with Lua's escapes (as %q writes them)
-- Comments are "--" to the end of a line. Errors name the file and the line.
local M = {}

local escapes = { a = "\a", b = "\b", f = "\f", n = "\n", r = "\r", t = "\t", v = "\v",
  ["\\"] = "\\", ['"'] = '"', ["'"] = "'", ["\n"] = "\n" }

local P = {}
P.__index = P

function P:fail(msg, at)
  local line = 1
  for _ in self.s:sub(1, (at or self.i) - 1):gmatch("\n") do line = line + 1 end
  local near = self.s:sub(at or self.i, (at or self.i) + 15):gsub("\n.*", "")
  error(string.format("%s:%d: %s%s", self.name, line, msg,
    near ~= "" and string.format(" near '%s'", near) or " at the end of the file"), 0)
end

-- Skips white space and comments.
function P:skip()
  while true do
    local _, e = self.s:find("^%s+", self.i)
    if e then self.i = e + 1 end
    if self.s:sub(self.i, self.i + 1) == "--" then
      local nl = self.s:find("\n", self.i, true)
      self.i = nl and nl + 1 or #self.s + 1
    else
      return
    end
  end
end

function P:accept(tok)
  self:skip()
  if self.s:sub(self.i, self.i + #tok - 1) == tok then
    self.i = self.i + #tok
    return true
  end
  return false
end

function P:expect(tok, what)
  if not self:accept(tok) then self:fail("expected " .. (what or ("'" .. tok .. "'"))) end
end

function P:string()
  local q = self.s:sub(self.i, self.i)
  local start, i, out = self.i, self.i + 1, {}
  while true do
    local c = self.s:sub(i, i)
    if c == "" or (c == "\n") then self:fail("unfinished string", start) end
    if c == q then break end
    if c == "\\" then
      local d = self.s:sub(i + 1, i + 1)
      if escapes[d] then
        out[#out + 1], i = escapes[d], i + 2
      elseif d:match("%d") then
        local digits = self.s:match("^%d%d?%d?", i + 1)
        local v = tonumber(digits)
        if v > 255 then self:fail("decimal escape too large", i) end
        out[#out + 1], i = string.char(v), i + 1 + #digits
      elseif d == "x" then
        local hex = self.s:match("^%x%x", i + 2)
        if not hex then self:fail("bad hexadecimal escape", i) end
        out[#out + 1], i = string.char(tonumber(hex, 16)), i + 4
      elseif d == "z" then
        local _, e = self.s:find("^%s*", i + 2)
        i = e + 1
      else
        self:fail("invalid escape sequence", i)
      end
    else
      out[#out + 1], i = c, i + 1
    end
  end
  self.i = i + 1
  return table.concat(out)
end

function P:number()
  local s, i = self.s, self.i
  for lit, v in pairs { ["-1/0"] = -math.huge, ["1/0"] = math.huge, ["0/0"] = 0 / 0 } do
    if s:sub(i, i + #lit - 1) == lit and not s:sub(i + #lit, i + #lit):match("[%w%.]") then
      self.i = i + #lit
      return v
    end
  end
  local text = s:match("^%-?0[xX][%x%.]+[pP]?[%+%-]?%d*", i) or s:match("^%-?%d*%.?%d*[eE]?[%+%-]?%d*", i)
  local v = text and text ~= "" and text ~= "-" and tonumber(text)
  if not v or s:sub(i + #text, i + #text):match("[%w%.]") then self:fail("malformed number") end
  self.i = i + #text
  return v
end

function P:value(depth)
  self:skip()
  local c = self.s:sub(self.i, self.i)
  if c == "{" then return self:table(depth + 1) end
  if c == '"' or c == "'" then return self:string() end
  if c:match("[%d%-%.]") then return self:number() end
  local word = self.s:match("^[%a_][%w_]*", self.i)
  if word == "true" or word == "false" then
    self.i = self.i + #word
    return word == "true"
  end
  if c == "" then self:fail("expected a value") end
  self:fail("expected a value (a table, string, number, true or false)")
end

function P:table(depth)
  if depth > 64 then self:fail("tables nested too deeply") end
  local open = self.i
  self.i = self.i + 1
  local t = {}
  while not self:accept("}") do
    local at = self.i
    self:expect("[", "'[' (a field is [key] = value) or '}'")
    self:skip()
    local c = self.s:sub(self.i, self.i)
    local k
    if c == '"' or c == "'" then k = self:string() else k = self:number() end
    if k ~= k then self:fail("a NaN key", at) end
    self:expect("]")
    self:expect("=")
    if t[k] ~= nil then self:fail(string.format("key %s given twice", tostring(k)), at) end
    t[k] = self:value(depth)
    if not self:accept(",") then
      self:skip()
      if self.s:sub(self.i, self.i) ~= "}" then
        if self.i > #self.s then self:fail("unfinished table (opened here)", open) end
        self:fail("expected ',' or '}'")
      end
    end
  end
  return t
end

-- The value `text` (the contents of file `name`, used in messages) holds.
function M.parse(text, name)
  local p = setmetatable({ s = text, i = 1, name = name or "?" }, P)
  p:skip()
  if p.i > #text then p:fail("empty file: expected 'return' and a value", p.i) end
  local w = text:match("^return%f[^%w_]", p.i)
  if not w then p:fail("expected 'return'") end
  p.i = p.i + #w
  local v = p:value(0)
  p:skip()
  if p.i <= #text then p:fail("unexpected text after the value") end
  return v
end

-- The value file `path` holds; errors name the file (and the line).
function M.read(path)
  local f, err = io.open(path, "rb")
  if not f then error("cannot read " .. tostring(err), 0) end
  local text = f:read("a")
  f:close()
  if not text then error("cannot read " .. path, 0) end
  return M.parse(text, path)
end

return M
