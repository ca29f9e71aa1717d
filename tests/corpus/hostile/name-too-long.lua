rule (("x"):rep(200)) { when = deadlock { }, act = signal { "SIGTERM" } }
-- expect: rejected: name-too-long.lua:1: a rule name is at most 127 bytes
