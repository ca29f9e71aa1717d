rule "f" { when = function(c) local t = {} for i = 1, 1e9 do t[i] = { i } end end, act = signal { "SIGTERM" } }
-- expect: disabled: when-memory-bomb.lua: memory limit exceeded
