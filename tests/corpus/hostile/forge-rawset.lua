local a = signal { "SIGTERM" }
rawset(a, "name", "x")
rule "f" { when = deadlock { }, act = a }
-- expect: rejected: forge-rawset.lua:2: bad argument #1 to 'rawset' \(table expected, got reflex.action\)
