rule "f" { when = function(c) table.sort({ 3, 2, 1 }, function() while true do end end) end, act = signal { "SIGTERM" } }
-- expect: disabled: when-sort-comparator-loop.lua:[0-9]+: instruction budget exceeded
