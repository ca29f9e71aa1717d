local a = signal { "SIGTERM" }
rule "f" { when = deadlock { }, act = function(c) a.name = "x" return a end }
-- expect: disabled: act-mutates-action.lua:[0-9]+: conditions and actions are read-only
