-- expect: cooldown-overflow.lua:2: rule .x.: cooldown: duration '9223372036s' is longer than 365d$
rule "x" { when = deadlock { }, act = signal { "SIGKILL" }, cooldown = "9223372036s" }
