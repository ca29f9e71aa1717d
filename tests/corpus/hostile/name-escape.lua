rule "\27[2Jgone" { when = deadlock { }, act = signal { "SIGTERM" } }
-- expect: rejected: name-escape.lua:1: a rule name cannot hold control characters or NUL
