rule "f" { when = function(c) rule "g" { when = deadlock { }, act = signal { "SIGTERM" } } return true end, act = signal { "SIGTERM" } }
-- expect: disabled: when-rule-inside.lua:1: rule runs only while its file loads
