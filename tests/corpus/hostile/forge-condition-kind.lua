local c = deadlock { }
c.kind = "bogus"
rule "f" { when = c, act = signal { "SIGTERM" } }
-- expect: rejected: forge-condition-kind.lua:2: conditions and actions are read-only
