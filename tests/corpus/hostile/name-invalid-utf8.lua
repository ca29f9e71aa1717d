rule "\xff\xfe" { when = deadlock { }, act = signal { "SIGTERM" } }
-- expect: rejected: name-invalid-utf8.lua:1: a rule name must be valid UTF-8
