local fake = setmetatable({}, getmetatable(signal { "SIGTERM" }))
rule "f" { when = deadlock { }, act = fake }
-- expect: rejected: forge-metatable-of-action.lua:1: bad argument #2 to 'setmetatable' \(nil or table expected, got string\)
