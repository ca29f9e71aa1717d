-- expect: when-threshold.lua:2: rule .x.: leak \{ rate = 8MB \}: not a valid threshold \(e.g. "8MiB/s"\)
rule "x" { when = leak { rate = "8MB" }, act = signal { "SIGKILL" } }
