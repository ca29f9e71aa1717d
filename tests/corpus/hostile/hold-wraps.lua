-- since + hold just under 2^64 ns once wrapped, and the rule acted at once
rule "f" { when = deadlock { }, hold = "213503d", act = signal { "SIGTERM" } }
-- expect: rejected: hold-wraps.lua:2: rule 'f': hold: duration '213503d' is longer than 365d
