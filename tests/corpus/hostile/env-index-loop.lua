setmetatable(_ENV, { __index = function() while true do end end })
rule "f" { when = deadlock { }, act = signal { "SIGTERM" } }
-- expect: rejected: env-index-loop.lua:[0-9]+: instruction budget exceeded
