rule "f" { when = function(c) table.move({}, 1, 1e15, 2) end, act = signal { "SIGTERM" } }
-- expect: disabled: when-table-move.lua:[0-9]+: table.move: more than 4194304 elements
