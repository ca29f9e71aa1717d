rule "f" { when = function(c) setmetatable({}, { __gc = function() while true do end end }) end, act = signal { "SIGTERM" } }
-- expect: disabled: when-setmetatable-gc.lua:[0-9]+: setmetatable: __gc and __close are not allowed
