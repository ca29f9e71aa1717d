-- expect: signal-param.lua:2: rule .x.: signal: unknown parameter .delay. \(known: followup, grace\)
rule "x" { when = deadlock { }, act = signal { "SIGKILL", delay = "1s" } }
