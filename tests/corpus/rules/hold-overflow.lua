-- expect: hold-overflow.lua:2: rule .x.: hold: duration '213503d' is longer than 365d$
rule "x" { when = deadlock { }, act = signal { "SIGKILL" }, hold = "213503d" }
