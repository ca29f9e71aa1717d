rule "f" { when = deadlock { }, act = function(c) return signal { "SIGNOPE" } end }
-- expect: disabled: act-bad-signal.lua: signal: unknown signal 'SIGNOPE'
