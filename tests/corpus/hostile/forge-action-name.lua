local a = signal { "SIGTERM" }
a.name = "x"
rule "f" { when = deadlock { }, act = a }
-- expect: rejected: forge-action-name.lua:2: conditions and actions are read-only
