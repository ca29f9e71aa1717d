rule "f" { when = deadlock { threads = setmetatable({}, { __tostring = function() while true do end end }) }, act = signal { "SIGTERM" } }
-- expect: rejected: forge-threshold-tostring.lua:1: rule 'f': deadlock \{ threads = table \}: not a valid threshold
