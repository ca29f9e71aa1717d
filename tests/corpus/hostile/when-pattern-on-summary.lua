rule "f" { when = function(c) return c.comm:match((".-"):rep(12) .. "x") end, act = signal { "SIGTERM" } }
-- expect: disabled: when-pattern-on-summary.lua:[0-9]+: pattern of 12 repetitions is too costly
