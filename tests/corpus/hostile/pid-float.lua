rule "f" { when = deadlock { }, where = { pid = 4242.5 }, act = signal { "SIGTERM" } }
-- expect: rejected: pid-float.lua:1: rule 'f': where.pid must be a whole number
