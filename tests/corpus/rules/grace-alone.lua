-- expect: grace-alone.lua:2: rule .x.: signal: grace without followup
rule "x" { when = deadlock { }, act = signal { "SIGTERM", grace = "1s" } }
