setmetatable({}, { __gc = function() while true do end end })
collectgarbage()
-- expect: rejected: finalizer-gc.lua:1: setmetatable: __gc and __close are not allowed in rules
