-- expect: hold-number.lua:2: rule .x.: hold must be a duration like "2s", not number
rule "x" { when = deadlock { }, act = signal { "SIGKILL" }, hold = 2 }
