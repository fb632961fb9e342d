-- apical's own writers are checked too
local apical = require "apical"
apical.zeros { 2 }:save_npy("/tmp/apical_sandbox.npy") -- error: sandbox: save_npy "/tmp/apical_sandbox.npy" (/tmp/apical_sandbox.npy): outside
