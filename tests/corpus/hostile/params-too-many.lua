local p = { "SIGTERM" }
for i = 2, 100000 do p[i] = i end
rule "f" { when = deadlock { }, act = signal(p) }
-- expect: rejected: params-too-many.lua:3: more than 256 parameters
