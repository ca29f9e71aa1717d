-- expect: when-rate.lua:2: rule .x.: retransmits \{ rate = 5MB/s \}: not a valid threshold \(e.g. "200/s"\)
rule "x" { when = retransmits { rate = "5MB/s" }, act = signal { "SIGTERM" } }
