rule "a\0b" { when = deadlock { }, act = signal { "SIGTERM" } }
-- expect: rejected: name-nul.lua:1: a rule name cannot hold control characters or NUL
