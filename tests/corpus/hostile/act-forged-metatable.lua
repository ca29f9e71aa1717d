rule "f" { when = deadlock { }, act = function(c) return setmetatable({}, getmetatable(signal { "SIGTERM" })) end }
-- expect: disabled: act-forged-metatable.lua:[0-9]+: bad argument #2 to 'setmetatable'
