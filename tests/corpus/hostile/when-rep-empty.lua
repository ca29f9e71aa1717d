rule "f" { when = function(c) return string.rep("", 1e15) end, act = signal { "SIGTERM" } }
-- expect: disabled: when-rep-empty.lua:[0-9]+: string.rep: memory limit exceeded
