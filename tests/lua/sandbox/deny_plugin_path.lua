-- a plugin is loaded by name only, never from a file path
local apical = require "apical"
local p = apical.plugin "/tmp/apical_evil.so" -- error: sandbox: plugin "/tmp/apical_evil.so": plugins are loaded only by name
