local function f(n) return 1 + f(n + 1) end
rule "f" { when = function(c) return f(1) end, act = signal { "SIGTERM" } }
-- expect: disabled: when-deep-recursion.lua(:[0-9]+)?: (stack overflow|memory limit exceeded)
