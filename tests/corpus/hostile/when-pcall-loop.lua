rule "f" { when = function(c) while true do pcall(function() while true do end end) end end, act = signal { "SIGTERM" } }
-- expect: disabled: when-pcall-loop.lua:[0-9]+: instruction budget exceeded
