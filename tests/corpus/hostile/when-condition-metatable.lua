rule "f" { when = function(c) local mt = getmetatable(c) return mt.__index(42, "evidence") end, act = signal { "SIGTERM" } }
-- expect: disabled: when-condition-metatable.lua:[0-9]+: attempt to call a nil value \(field '__index'\)
