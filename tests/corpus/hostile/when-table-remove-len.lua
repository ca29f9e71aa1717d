rule "f" { when = function(c) table.remove(setmetatable({}, { __len = function() return 1e15 end }), 1) end, act = signal { "SIGTERM" } }
-- expect: disabled: when-table-remove-len.lua:[0-9]+: table.insert and table.remove take no table with __len
