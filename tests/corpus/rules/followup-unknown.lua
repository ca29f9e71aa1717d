-- expect: followup-unknown.lua:2: rule .x.: signal: unknown signal 'SIGKIL' in followup$
rule "x" { when = deadlock { }, act = signal { "SIGQUIT", followup = "SIGKIL" } }
