-- expect: positional.lua:2: rule .x.: fields are named
rule "x" { deadlock { }, when = deadlock { }, act = signal { "SIGKILL" } }
