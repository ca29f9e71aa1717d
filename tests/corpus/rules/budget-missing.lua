-- expect: budget-missing.lua:2: rule .x.: budget needs both max and per
rule "x" { when = deadlock { }, act = signal { "SIGKILL" }, budget = { max = 3 } }
