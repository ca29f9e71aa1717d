rule "a\nreflexd: info: forged log line" { when = deadlock { }, act = signal { "SIGTERM" } }
-- expect: rejected: name-newline.lua:1: a rule name cannot hold control characters or NUL
