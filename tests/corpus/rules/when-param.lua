-- expect: when-param.lua:2: rule .x.: deadlock: unknown parameter .cycle. \(known: threads\)
rule "x" { when = deadlock { cycle = 3 }, act = signal { "SIGKILL" } }
