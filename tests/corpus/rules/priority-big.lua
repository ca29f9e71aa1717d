-- expect: priority-big.lua:2: rule .x.: priority must be a whole number from -1000 to 1000
rule "x" { when = deadlock { }, act = signal { "SIGKILL" }, priority = 5000 }
