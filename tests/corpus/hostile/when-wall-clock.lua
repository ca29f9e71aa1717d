local s = ("x"):rep(3 * 1024 * 1024)
rule "f" { when = function(c) for i = 1, 1e9 do utf8.len(s) end end, act = signal { "SIGTERM" } }
-- expect: disabled: when-wall-clock.lua:[0-9]+: ran past its wall-clock bound of 50 ms
