-- expect: signal-number.lua:2: rule .x.: signal: the signal must be a signal name like "SIGKILL", not number
rule "x" { when = deadlock { }, act = signal { 9 } }
