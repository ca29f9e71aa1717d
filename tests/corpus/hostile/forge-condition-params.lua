local c = deadlock { }
c.params = nil
rule "f" { when = c, act = signal { "SIGTERM" } }
-- expect: rejected: forge-condition-params.lua:2: conditions and actions are read-only
