rule "f" { when = function(c) local s = c.comm for i = 1, 40 do s = s .. s end end, act = signal { "SIGTERM" } }
-- expect: disabled: when-concat-memory.lua: memory limit exceeded
