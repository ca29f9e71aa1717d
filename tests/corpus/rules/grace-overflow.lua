-- expect: grace-overflow.lua:2: rule .x.: signal: grace: duration '18446744073s' is longer than 365d$
rule "x" { when = deadlock { }, act = signal { "SIGTERM", followup = "SIGKILL", grace = "18446744073s" } }
