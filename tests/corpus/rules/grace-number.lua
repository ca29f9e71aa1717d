-- expect: grace-number.lua:2: rule .x.: signal: grace must be a duration like "5s", not number$
rule "x" { when = deadlock { }, act = signal { "SIGQUIT", followup = "SIGKILL", grace = 5 } }
