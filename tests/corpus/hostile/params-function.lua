rule "f" { when = deadlock { }, act = signal { "SIGTERM", followup = function() end } }
-- expect: rejected: params-function.lua:1: a parameter is a string, number, boolean or table, not a function
