local a, b = ("x"):rep(3 * 1024 * 1024), ("x"):rep(3 * 1024 * 1024)
rule "f" { when = function(c) for i = 1, 1e9 do local _ = a < b end end, act = signal { "SIGTERM" } }
-- expect: disabled: when-wall-clock-compare.lua:[0-9]+: (ran past its wall-clock bound of 50 ms|instruction budget exceeded)
