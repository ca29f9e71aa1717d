rule "f" { when = signal { "SIGKILL" }, act = signal { "SIGTERM" } }
-- expect: rejected: forge-action-as-condition.lua:1: rule 'f': when must be a condition like deadlock
