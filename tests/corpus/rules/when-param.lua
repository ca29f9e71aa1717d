-- expect: when-param.lua:2: rule .x.: deadlock: unknown parameter .threads.
rule "x" { when = deadlock { threads = 3 }, act = signal { "SIGKILL" } }
