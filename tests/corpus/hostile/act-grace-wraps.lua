-- a grace just under 2^64 ns once wrapped the followup's deadline (now + grace) into the past
rule "f" { when = deadlock { }, act = function(c) return signal { "SIGTERM", followup = "SIGKILL", grace = "18446744073s" } end }
-- expect: disabled: act-grace-wraps.lua: signal: grace: duration '18446744073s' is longer than 365d
