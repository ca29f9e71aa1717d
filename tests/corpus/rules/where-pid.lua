-- expect: where-pid.lua:2: rule .x.: where.pid must be a whole number from 1 to 4194304
rule "x" { when = deadlock { }, where = { pid = -1 }, act = signal { "SIGKILL" } }
