rule "f" { when = function(c) return (("a"):rep(40)):find(("a*"):rep(30) .. "b") end, act = signal { "SIGTERM" } }
-- expect: disabled: when-pattern-bomb.lua:[0-9]+: pattern of 30 repetitions is too costly
