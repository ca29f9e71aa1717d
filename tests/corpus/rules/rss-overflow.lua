-- expect: rss-overflow.lua:2: rule .x.: memory \{ rss = 20000000TiB \}: too large a threshold, 2\^63 or more
rule "x" { when = memory { rss = "20000000TiB" }, act = signal { "SIGKILL" }, in_kernel = true }
