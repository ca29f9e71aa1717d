-- expect: escalate-long.lua:2: rule .x.: escalate takes 1 to 3 actions
rule "x" { when = deadlock { }, act = signal { "SIGTERM" }, verify = { within = "1s" }, escalate = { signal { "SIGKILL" }, signal { "SIGKILL" }, signal { "SIGKILL" }, signal { "SIGKILL" } } }
