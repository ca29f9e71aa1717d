-- expect: breaker-field.lua:2: rule .x.: unknown field .reset. in breaker \(known: failures, per\)
rule "x" { when = deadlock { }, act = signal { "SIGKILL" }, breaker = { reset = "1h" } }
