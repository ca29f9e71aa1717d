rule "f" { when = function(c) rawset(c, "evidence", nil) c.pid = nil while true do end end, act = signal { "SIGTERM" } }
-- expect: disabled: when-condition-rawset.lua:[0-9]+: instruction budget exceeded
