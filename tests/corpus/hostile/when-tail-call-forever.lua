local function f() return f() end
rule "f" { when = function(c) return f() end, act = signal { "SIGTERM" } }
-- expect: disabled: when-tail-call-forever.lua:[0-9]+: instruction budget exceeded
