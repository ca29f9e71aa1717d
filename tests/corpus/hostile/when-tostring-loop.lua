rule "f" { when = function(c) return tostring(setmetatable({}, { __tostring = function() while true do end end })) end, act = signal { "SIGTERM" } }
-- expect: disabled: when-tostring-loop.lua:[0-9]+: instruction budget exceeded
