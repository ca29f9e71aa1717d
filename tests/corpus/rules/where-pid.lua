-- expect: where-pid.lua:2: rule .x.: where.pid must be a positive integer
rule "x" { when = deadlock { }, where = { pid = -1 }, act = signal { "SIGKILL" } }
