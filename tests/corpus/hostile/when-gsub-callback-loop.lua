rule "f" { when = function(c) return c.comm:gsub(".", function() while true do end end) end, act = signal { "SIGTERM" } }
-- expect: disabled: when-gsub-callback-loop.lua:[0-9]+: instruction budget exceeded
