-- expect: signal-empty.lua:2: rule .x.: signal: which signal\?
rule "x" { when = deadlock { }, act = signal { } }
