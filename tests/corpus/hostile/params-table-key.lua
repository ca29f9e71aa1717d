rule "f" { when = deadlock { }, act = signal { "SIGTERM", [{}] = 1 } }
-- expect: rejected: params-table-key.lua:1: parameters are named or numbered, not keyed by a table
