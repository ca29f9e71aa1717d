local p = { "SIGTERM" }
p.x = p
rule "f" { when = deadlock { }, act = signal(p) }
-- expect: rejected: params-cycle.lua:3: parameters nested more than 4 deep
