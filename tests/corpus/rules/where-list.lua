-- expect: where-list.lua:2: rule .x.: where.comm\[2\] must be a string
rule "x" { when = deadlock { }, where = { comm = { "a", 5 } }, act = signal { "SIGKILL" } }
