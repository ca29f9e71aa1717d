rule "f" { when = deadlock { }, where = { pid = 4294971538 }, act = signal { "SIGTERM" } }
-- expect: rejected: pid-out-of-range.lua:1: rule 'f': where.pid must be a whole number from 1 to 4194304
