-- 2^64 bytes and more converted to the in-kernel threshold as 0 on x86
rule "f" { when = memory { rss = 2^64 }, in_kernel = true, act = signal { "SIGKILL" } }
-- expect: rejected: rss-threshold-wraps.lua:2: rule 'f': memory \{ rss = [0-9.e+]+ \}: too large a threshold
