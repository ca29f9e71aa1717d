rule "f" { when = function(c) error(setmetatable({}, { __tostring = function() while true do end end })) end, act = signal { "SIGTERM" } }
-- expect: disabled: when-error-table.lua: \(error object is a table value\)
