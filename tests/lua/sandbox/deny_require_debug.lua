-- require "debug" is refused under --sandbox
local d = require "debug" -- error: sandbox: require "debug": not available under --sandbox
