-- expect: escalate-no-verify.lua:2: rule .x.: escalate needs verify
rule "x" { when = deadlock { }, act = signal { "SIGTERM" }, escalate = signal { "SIGKILL" } }
